"""A render model that cannot be loaded is told to users as a fixed message, never with the
paths and file contents the loader's error names (those go to the log, for admins): at
``POST /api/fedisora/v1/renders`` (503) and in a queued render's error once the worker finds
it out (the render entity its owner reads)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import RenderJob
from fedisora.work import Engine
from render.errors import ModelLoadError
from render.queue import build_render_machine
from render.service import submit_render

SECRET = "/srv/secret-models/wan-2.1"
RENDERS = "/api/fedisora/v1/renders"


@pytest.fixture
def settings(tmp_path: Path, db: str) -> Settings:
    model = Path(SECRET.replace("/srv", str(tmp_path)))
    model.mkdir(parents=True)
    (model / "model_index.json").write_text('{"_class_name": "PrivatePipeline", "x": "' + SECRET)
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
            "FEDISORA_RENDER_MODEL": str(model),
        }
    )


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as c:
        yield c


async def test_a_render_request_answers_a_fixed_503(
    http: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    me = await login(http, await local_account("ann"))
    with caplog.at_level(logging.ERROR, logger="fedisora.render"):
        r = await http.post(RENDERS, data={"prompt": "a paper boat"}, headers=me.headers)
    assert r.status_code == 503
    assert r.json() == {"error": ModelLoadError.PUBLIC}
    assert "secret-models" not in r.text and "model_index" not in r.text
    assert str(settings.render_model) in caplog.text  # the detail is logged, for admins
    assert await RenderJob.all().count() == 0


async def test_a_render_whose_model_fails_in_the_worker_tells_its_owner_a_fixed_reason(
    http: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Accepted while the model was there (the family named in the settings), it fails when
    the worker cannot load it."""
    me = await login(http, await local_account("ann"))
    with_family = replace(settings, render_family="wan")
    job = await submit_render(me.account, {"prompt": "a paper boat"}, settings=with_family)

    async def broken(_settings: Any) -> Any:
        raise ModelLoadError(f"the render model {SECRET} cannot be read: permission denied")

    engine = Engine([build_render_machine(with_family, load=broken)])
    with caplog.at_level(logging.ERROR, logger="fedisora.render"):
        while (await RenderJob.get(pk=job.pk)).state in ("queued", "rendering"):
            await engine.advance("render_jobs", job.pk)
    r = await http.get(f"{RENDERS}/{job.pk}", headers=me.headers)
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["error"]) == ("failed", ModelLoadError.PUBLIC)
    assert "secret-models" not in r.text
    assert SECRET in caplog.text
