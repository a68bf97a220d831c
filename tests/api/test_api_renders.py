"""fedisora's render endpoints: create, get, list, cancel, progress events, render -> post."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from apihelpers import Login, login
from factories import local_account
from PIL import Image
from signed_settings import signed_settings

from fedisora.app import create_app
from fedisora.config import Settings
from fedisora.models import Clip, MediaFile, RenderJob
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    InstanceCredentials,
    ValidationState,
    generate_instance_ca,
    verify_mp4,
)

DOMAIN = "fedisora.test"
RENDERS = "/api/fedisora/v1/renders"


@pytest.fixture(scope="module")
def tiny() -> Any:
    from render.pipeline import load_pipeline

    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="module")
def ca() -> InstanceCredentials:
    return generate_instance_ca(DOMAIN)


@pytest.fixture
def settings(tmp_path: Path, ca: InstanceCredentials, db: str) -> Settings:
    return signed_settings(tmp_path, ca, db, DOMAIN)


@pytest.fixture
def engine(settings: Settings, tiny: Any) -> Engine:
    from render.queue import build_render_machine

    async def load(_settings: Any) -> Any:
        return tiny

    return Engine(
        [build_render_machine(settings, load=load)],
        lease=timedelta(seconds=30),
        context={"settings": settings},
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        yield c


async def drain(engine: Engine) -> None:
    await InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.05).drain(90)


def still() -> bytes:
    x = np.linspace(0, 255, 96, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(x[None, :], x[::-1, None], x[None, :] // 2), axis=-1)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(out, format="PNG")
    return out.getvalue()


async def create(client: httpx.AsyncClient, who: Login, **fields: Any) -> httpx.Response:
    return await client.post(RENDERS, json=fields, headers=who.headers)


async def test_render_then_post_with_media_ids(
    client: httpx.AsyncClient, engine: Engine, settings: Settings
) -> None:
    alice = await login(client, await local_account("alice"))
    r = await create(client, alice, prompt="a red kite over dunes", seconds=1, seed=7)
    assert r.status_code == 202, r.text
    text_job = r.json()
    assert text_job["state"] == "queued" and text_job["queue_position"] == 1
    assert text_job["prompt"] == "a red kite over dunes" and text_job["seed"] == 7
    assert text_job["kind"] == "text" and text_job["aspect"] == "9:16"
    assert text_job["media_attachment"] is None and text_job["done"] is False

    # Image-to-video from an uploaded still (form parameters, "duration" alias).
    up = await client.post(
        "/api/v2/media", files={"file": ("s.png", still(), "image/png")}, headers=alice.headers
    )
    assert up.status_code == 200, up.text
    r = await client.post(
        RENDERS,
        data={"prompt": "the still comes alive", "duration": "1", "aspect": "1:1",
              "media_id": up.json()["id"]},
        headers=alice.headers,
    )  # fmt: skip
    assert r.status_code == 202, r.text
    image_job = r.json()
    assert image_job["kind"] == "image" and image_job["aspect"] == "1:1"
    assert image_job["queue_position"] == 2

    await drain(engine)

    r = await client.get(f"{RENDERS}/{text_job['id']}", headers=alice.headers)
    assert r.status_code == 200
    done = r.json()
    assert done["state"] == "ready", done["error"]
    assert done["percent"] == 100 and done["done"] is True and done["queue_position"] is None
    assert done["finished_at"] is None or isinstance(done["finished_at"], str)
    video = done["media_attachment"]
    assert video["type"] == "video" and video["id"] == done["media_id"]
    assert video["meta"]["fedisora"] == {
        "ai_generated": True,
        "provenance": "trusted",
        "audio": False,
    }
    row = await MediaFile.get(pk=int(video["id"]))
    check = verify_mp4(settings.media_root / str(row.file), [(await _root(settings))])
    assert check.state is ValidationState.TRUSTED
    assert check.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    image_done = (await client.get(f"{RENDERS}/{image_job['id']}", headers=alice.headers)).json()
    assert image_done["state"] == "ready", image_done["error"]
    image_row = await MediaFile.get(pk=int(image_done["media_id"]))
    assert image_row.provenance["digital_source_type"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert image_row.width == image_row.height

    # The finished render is posted like any attachment.
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "my kite #render", "media_ids[]": video["id"]},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    status = r.json()
    (attachment,) = status["media_attachments"]
    assert attachment["id"] == video["id"] and attachment["type"] == "video"
    assert attachment["url"] == video["url"]
    r = await client.get(f"{RENDERS}/{text_job['id']}", headers=alice.headers)
    # Posted through the render queue: cameo consent re-checked, the job is now published.
    assert r.json()["status_id"] == status["id"] and r.json()["state"] == "published"
    served = await client.get(video["url"].removeprefix(f"https://{DOMAIN}"))
    assert (
        served.status_code == 200
        and served.content == (settings.media_root / str(row.file)).read_bytes()
    )

    # The progress stream of a finished render: its last progress, then the end.
    r = await client.get(f"{RENDERS}/{text_job['id']}/events", headers=alice.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert [e for e, _ in events] == ["progress", "end"]
    assert events[0][1]["state"] == "published" and events[0][1]["percent"] == 100
    assert events[1][1] == {"id": text_job["id"], "state": "published"}


async def _root(settings: Settings) -> str:
    return (settings.data_dir / "provenance" / "root.pem").read_text()


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_remix_and_cameo_requests(
    client: httpx.AsyncClient, engine: Engine, settings: Settings
) -> None:
    from factories import rendered_video
    from likenesses import verified_likeness

    from fedisora.services.likeness import update_policy

    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    media = await rendered_video(alice.account)
    public = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(media.pk)}, headers=alice.headers
    )
    assert public.status_code == 200, public.text
    private_media = await rendered_video(alice.account)
    private = await client.post(
        "/api/v1/statuses",
        data={"media_ids[]": str(private_media.pk), "visibility": "private"},
        headers=alice.headers,
    )
    assert private.status_code == 200

    r = await create(client, bob, prompt="my take", remix_of_id=public.json()["id"], seconds=1)
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "remix" and r.json()["remix_of_id"] == public.json()["id"]
    r = await create(client, bob, prompt="x", remix_of_id=private.json()["id"])
    assert r.status_code == 404
    r = await create(client, bob, prompt="x", remix_of_id="123456789")
    assert r.status_code == 404

    # A cameo without consent is refused at request time, naming the reason.
    r = await create(client, bob, prompt="with alice", cameo_ids=[str(alice.account.pk)])
    assert r.status_code == 422 and "cameo refused" in r.json()["error"]
    assert "has not registered a likeness" in r.json()["error"]
    r = await create(client, bob, prompt="with nobody", cameo_ids=["987654321"])
    assert r.status_code == 422 and "cameos" in r.json()["error"]
    # With consent it is accepted; consent narrowed while it waits refuses it before rendering.
    await verified_likeness(alice.account, settings, audience="everyone")
    r = await create(client, bob, prompt="with alice", cameo_ids=[str(alice.account.pk)])
    assert r.status_code == 202 and r.json()["cameo_ids"] == [str(alice.account.pk)]
    cameo_id = r.json()["id"]
    await update_policy(alice.account, audience="me")
    await drain(engine)
    r = await client.get(f"{RENDERS}/{cameo_id}", headers=bob.headers)
    assert r.json()["state"] == "failed" and "cameo refused" in r.json()["error"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": "ok", "seconds": 60}, "seconds"),
        ({"prompt": "ok", "seconds": "soon"}, "seconds"),
        ({"prompt": "ok", "aspect": "4:3"}, "aspect"),
        ({"prompt": "ok", "seed": -1}, "seed"),
        ({"prompt": "ok", "seed": 2**40}, "seed"),
        ({"prompt": "ok", "media_id": "424242"}, "media 424242"),
        ({"prompt": "ok", "seconds": [1, 2]}, "seconds"),
        ({"prompt": {"a": 1}}, "prompt"),
        ({"prompt": "ok", "seed": 1.5}, "seed"),
        ({"prompt": "ok", "seed": True}, "seed"),
        ({"prompt": "ok", "seconds": "nan"}, "seconds"),
        ({"prompt": "ok", "seconds": 1e308}, "seconds"),
        ({"prompt": "ok", "aspect": 5}, "aspect"),
        ({"prompt": "ok", "negative_prompt": "\u0007bell"}, "negative_prompt"),
        ({"prompt": "ok", "cameo_ids": "abc"}, "cameo"),
    ],
)
async def test_bad_requests_name_the_limit(
    client: httpx.AsyncClient, fields: dict[str, Any], message: str
) -> None:
    alice = await login(client, await local_account("alice"))
    r = await create(client, alice, **fields)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert await RenderJob.all().count() == 0


async def test_input_media_must_be_an_own_image(client: httpx.AsyncClient) -> None:
    from factories import rendered_video

    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    up = await client.post(
        "/api/v2/media", files={"file": ("s.png", still(), "image/png")}, headers=alice.headers
    )
    r = await create(client, bob, prompt="steal", media_id=up.json()["id"])
    assert r.status_code == 422 and "not yours" in r.json()["error"]
    video = await rendered_video(alice.account)
    r = await create(client, alice, prompt="again", media_id=str(video.pk))
    assert r.status_code == 422 and "must name an image" in r.json()["error"]
    assert await RenderJob.all().count() == 0


async def test_cancel_list_quota_and_privacy(client: httpx.AsyncClient) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    ids = []
    for n in range(3):
        r = await create(client, alice, prompt=f"clip {n}", seconds=1)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    r = await create(client, alice, prompt="one too many")
    assert r.status_code == 429 and "concurrent_jobs" in r.json()["error"]

    r = await client.get(RENDERS, params={"limit": 2}, headers=alice.headers)
    assert r.status_code == 200
    assert [j["id"] for j in r.json()] == ids[::-1][:2]
    next_url = r.links["next"]["url"]
    assert next_url.startswith(f"https://{DOMAIN}{RENDERS}?") and "max_id" in next_url
    r = await client.get(next_url, headers=alice.headers)
    assert [j["id"] for j in r.json()] == [ids[0]]
    r = await client.get(RENDERS, headers=bob.headers)
    assert r.status_code == 200 and r.json() == []

    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/events")):
        r = await client.request(method, f"{RENDERS}/{ids[0]}{path}", headers=bob.headers)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}, (method, path)

    r = await client.post(f"{RENDERS}/{ids[0]}/cancel", headers=alice.headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert r.json()["done"] is True and r.json()["error"] == "cancelled by its owner"
    r = await client.delete(f"{RENDERS}/{ids[1]}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await client.delete(f"{RENDERS}/{ids[1]}", headers=alice.headers)
    assert r.status_code == 409 and "already cancelled" in r.json()["error"]
    # A slot is free again.
    r = await create(client, alice, prompt="now it fits", seconds=1)
    assert r.status_code == 202
    assert r.json()["queue_position"] == 2  # behind the one still queued


async def test_auth_and_scopes(client: httpx.AsyncClient) -> None:
    account = await local_account("alice")
    r = await client.post(RENDERS, json={"prompt": "x"})
    assert r.status_code == 401
    assert (await client.get(RENDERS)).status_code == 401
    assert (await client.get(f"{RENDERS}/1/events")).status_code == 401
    reader = await login(client, account, scope="read")
    r = await create(client, reader, prompt="x")
    assert r.status_code == 403
    assert (await client.get(RENDERS, headers=reader.headers)).status_code == 200
    for scope in ("write:statuses", "write:media"):
        writer = await login(client, account, scope=scope)
        r = await create(client, writer, prompt=f"with {scope}", seconds=1)
        assert r.status_code == 202, r.text
        r = await client.get(f"{RENDERS}/{r.json()['id']}", headers=writer.headers)
        assert r.status_code == 403  # reading needs a read scope
    assert await Clip.all().count() == 0


async def test_idempotency_key_queues_one_render(client: httpx.AsyncClient) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    headers = {**alice.headers, "Idempotency-Key": "kite-1"}
    first = await client.post(RENDERS, json={"prompt": "a kite", "seconds": 1}, headers=headers)
    assert first.status_code == 202, first.text
    again = await client.post(RENDERS, json={"prompt": "a kite", "seconds": 1}, headers=headers)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    # Keys are per account, and another key is another render.
    other = {**bob.headers, "Idempotency-Key": "kite-1"}
    r = await client.post(RENDERS, json={"prompt": "a kite", "seconds": 1}, headers=other)
    assert r.status_code == 202 and r.json()["id"] != first.json()["id"]
    headers["Idempotency-Key"] = "kite-2"
    r = await client.post(RENDERS, json={"prompt": "a kite", "seconds": 1}, headers=headers)
    assert r.status_code == 202 and r.json()["id"] != first.json()["id"]
    assert await RenderJob.filter(account_id=alice.account.pk).count() == 2
    # A render key is no status key: posting with it does not answer the render.
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "hi", "media_ids[]": "1"},
        headers={**alice.headers, "Idempotency-Key": "kite-1"},
    )
    assert r.status_code == 422
