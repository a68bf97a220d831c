"""POST /api/fedisora/v1/renders with cameo_ids on a model that cannot render cameos: 422.

The instance's model is a saved Wan text-to-video checkpoint (no VACE pipeline), or a family
without reference-to-video (tiny-cogvideox); the request is refused at once with the reason,
and nothing is queued. The same request without cameos is accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from apihelpers import login
from factories import local_account

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import RenderJob

DOMAIN = "fedisora.test"
RENDERS = "/api/fedisora/v1/renders"


@pytest.fixture(scope="module")
def wan_t2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from render.tiny import build_tiny_wan

    path = tmp_path_factory.mktemp("models") / "wan-t2v"
    build_tiny_wan().save_pretrained(path)
    return path


@pytest.fixture(params=["model", "family"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, db: str, wan_t2v: Path) -> Settings:
    loaded = load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        }
    )
    if request.param == "model":
        return replace(loaded, database_url=db, render_model=str(wan_t2v))
    return replace(loaded, database_url=db, render_family="tiny-cogvideox")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        yield c


async def test_cameo_refused_where_the_model_cannot_take_references(
    client: httpx.AsyncClient,
) -> None:
    bob = await login(client, await local_account("bob"))
    alice = await local_account("alice")
    fields = {"prompt": "alice waving", "seconds": 6, "aspect": "16:9"}
    r = await client.post(
        RENDERS, json={**fields, "cameo_ids": [str(alice.pk)]}, headers=bob.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("cameos: ")
    assert "cannot render cameos" in r.json()["error"]
    assert await RenderJob.all().count() == 0
    r = await client.post(RENDERS, json=fields, headers=bob.headers)
    assert r.status_code == 202, r.text
