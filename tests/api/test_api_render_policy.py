"""The prompt policy on ``POST /api/fedisora/v1/renders``: a prompt, a remixed clip, an input
still's description or a cameo's restrictions naming a protected entry is refused with a 422
naming the rule, and nothing is queued."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from apihelpers import login
from factories import local_account, rendered_video
from likenesses import verified_likeness
from PIL import Image

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import RenderJob
from fedisora.services import audit, prompt_policy
from fedisora.services.likeness import update_policy

DOMAIN = "fedisora.test"
RENDERS = "/api/fedisora/v1/renders"
SWIFT = "This prompt names a protected public figure (rule: public figures: “Taylor Swift”)"


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        yield c


def still() -> bytes:
    x = np.linspace(0, 255, 64, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(x[None, :], x[::-1, None], x[None, :] // 2), axis=-1)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(out, format="PNG")
    return out.getvalue()


async def test_a_protected_name_is_refused_with_its_rule(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await prompt_policy.add_term(audit.CLI, "public_figure", "Taylor Swift")
    await prompt_policy.add_term(audit.CLI, "protected_work", "Mickey Mouse")
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))

    for prompt in ("Taylor Swift on stage", "t4yl0r-$w1ft singing", "Тейлор Свифт dancing"):
        r = await client.post(RENDERS, json={"prompt": prompt}, headers=alice.headers)
        assert r.status_code == 422, r.text
        assert r.json() == {"error": SWIFT}
    r = await client.post(RENDERS, json={"prompt": "M1ckey  M0use waves"}, headers=alice.headers)
    assert r.status_code == 422
    assert r.json()["error"] == (
        "This prompt names a protected character or work "
        "(rule: protected characters and works: “Mickey Mouse”)"
    )
    # An innocent prompt that resembles a name passes; naming one in the negative prompt asks
    # the model to keep them out, and passes too.
    r = await client.post(
        RENDERS,
        json={
            "prompt": "a swift taylor-made suit",
            "negative_prompt": "Taylor Swift",
            "seconds": 1,
        },
        headers=alice.headers,
    )
    assert r.status_code == 202, r.text

    # A remix of a clip whose caption names one.
    media = await rendered_video(alice.account)
    posted = await client.post(
        "/api/v1/statuses",
        data={"media_ids[]": str(media.pk), "status": "my Mickey-Mouse fan art"},
        headers=alice.headers,
    )
    assert posted.status_code == 200, posted.text
    r = await client.post(
        RENDERS,
        json={"prompt": "make it rain", "remix_of_id": posted.json()["id"]},
        headers=bob.headers,
    )
    assert r.status_code == 422
    assert r.json()["error"].startswith("The clip to remix names a protected character or work")

    # An input still whose description names one.
    up = await client.post(
        "/api/v2/media",
        files={"file": ("s.png", still(), "image/png")},
        data={"description": "a photo of Taylor Swift"},
        headers=bob.headers,
    )
    assert up.status_code in (200, 202), up.text
    r = await client.post(
        RENDERS, json={"prompt": "animate this", "media_id": up.json()["id"]}, headers=bob.headers
    )
    assert r.status_code == 422
    assert r.json()["error"] == (
        "The description of the still image names a protected public figure "
        "(rule: public figures: “Taylor Swift”)"
    )

    # A cameo whose owner's restriction text names one.
    await verified_likeness(alice.account, settings, audience="everyone")
    await update_policy(alice.account, restrictions="only in the style of Mickey Mouse")
    r = await client.post(
        RENDERS,
        json={"prompt": "with alice", "cameo_ids": [str(alice.account.pk)]},
        headers=bob.headers,
    )
    assert r.status_code == 422
    assert r.json()["error"].startswith(
        "The restriction text of @alice's likeness names a protected character or work"
    )
    assert await RenderJob.all().count() == 1  # only the innocent one


async def test_removing_a_term_lets_the_prompt_through(client: httpx.AsyncClient) -> None:
    row = await prompt_policy.add_term(audit.CLI, "public_figure", "Taylor Swift")
    alice = await login(client, await local_account("alice"))
    fields = {"prompt": "Taylor Swift on stage", "seconds": 1}
    r = await client.post(RENDERS, json=fields, headers=alice.headers)
    assert r.status_code == 422
    await prompt_policy.remove_term(audit.CLI, row.pk)
    r = await client.post(RENDERS, json=fields, headers=alice.headers)
    assert r.status_code == 202, r.text
