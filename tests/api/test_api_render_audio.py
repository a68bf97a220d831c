"""``audio`` on the render API: on by default where the model renders sound, a 422 naming it
where the model is silent, and what ``/api/v2/instance`` says the model can do."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account
from signed_settings import signed_settings

from fedisora.app import create_app
from fedisora.config import Settings
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.provenance import InstanceCredentials, generate_instance_ca

DOMAIN = "fedisora.test"
RENDERS = "/api/fedisora/v1/renders"


@pytest.fixture(scope="module")
def ca() -> InstanceCredentials:
    return generate_instance_ca(DOMAIN)


@pytest.fixture(scope="module")
def tiny_ltx2() -> Any:
    from render.pipeline import load_pipeline

    return load_pipeline("tiny-ltx2", device="cpu")


@pytest.fixture
def silent(tmp_path: Path, ca: InstanceCredentials, db: str) -> Settings:
    made: Settings = signed_settings(tmp_path, ca, db, DOMAIN)
    return made  # the default model, "tiny"


def _client(settings: Settings) -> httpx.AsyncClient:
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    return httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}")


@pytest.fixture
async def client(silent: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(silent) as c:
        yield c


@pytest.fixture
async def sound_client(silent: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(dataclasses.replace(silent, render_model="tiny-ltx2")) as c:
        yield c


async def test_a_silent_model_refuses_sound(client: httpx.AsyncClient) -> None:
    alice = await login(client, await local_account("alice"))
    caps = (await client.get("/api/v2/instance")).json()["configuration"]["fedisora_renders"]
    assert caps["family"] == "tiny" and caps["audio"] is False and caps["cameos"] is True

    r = await client.post(
        RENDERS, json={"prompt": "a bell", "seconds": 1, "audio": True}, headers=alice.headers
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error.startswith("audio: model family tiny renders no sound"), error

    r = await client.post(
        RENDERS, data={"prompt": "a bell", "seconds": "1", "audio": "loud"}, headers=alice.headers
    )
    assert r.status_code == 422 and r.json()["error"].startswith("audio: must be true or false")

    r = await client.post(RENDERS, json={"prompt": "a bell", "seconds": 1}, headers=alice.headers)
    assert r.status_code == 202, r.text
    assert r.json()["audio"] is False  # silent by default here
    r = await client.post(
        RENDERS, json={"prompt": "a bell", "seconds": 1, "audio": False}, headers=alice.headers
    )
    assert r.status_code == 202 and r.json()["audio"] is False


async def test_a_model_with_sound_renders_it_by_default(sound_client: httpx.AsyncClient) -> None:
    client = sound_client
    alice = await login(client, await local_account("alice"))
    caps = (await client.get("/api/v2/instance")).json()["configuration"]["fedisora_renders"]
    assert caps == {
        "family": "tiny-ltx2",
        "max_seconds": pytest.approx(10.0),
        "aspects": ["9:16", "1:1", "16:9"],
        "max_prompt_characters": 2000,
        "cameos": False,
        "audio": True,
    }

    r = await client.post(RENDERS, json={"prompt": "surf", "seconds": 1}, headers=alice.headers)
    assert r.status_code == 202, r.text
    assert r.json()["audio"] is True
    r = await client.post(
        RENDERS, data={"prompt": "surf", "seconds": "1", "audio": "false"}, headers=alice.headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["audio"] is False
    mine = await client.get(RENDERS, headers=alice.headers)
    assert [j["audio"] for j in mine.json()] == [False, True]


async def test_the_finished_clip_says_it_has_sound(
    silent: Settings, sound_client: httpx.AsyncClient, tiny_ltx2: Any
) -> None:
    from render.queue import build_render_machine

    settings = dataclasses.replace(silent, render_model="tiny-ltx2")

    async def load(_settings: Any) -> Any:
        return tiny_ltx2

    engine = Engine(
        [build_render_machine(settings, load=load)],
        lease=timedelta(seconds=60),
        context={"settings": settings},
    )
    client = sound_client
    alice = await login(client, await local_account("alice"))
    for audio in (True, False):
        r = await client.post(
            RENDERS, json={"prompt": "rain", "seconds": 0.4, "audio": audio}, headers=alice.headers
        )
        assert r.status_code == 202, r.text
    await InProcessRunner(engine, queues=("render",), concurrency=1).drain(120)
    done = (await client.get(RENDERS, headers=alice.headers)).json()
    assert [j["state"] for j in done] == ["ready", "ready"], [j["error"] for j in done]
    assert [j["media_attachment"]["meta"]["fedisora"]["audio"] for j in done] == [False, True]
