"""An unmodified Mastodon.py uploads media to a running instance, and a render made through
fedisora's own endpoints (waited for on its server-sent event stream) is posted with it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mastodon
import numpy as np
import pytest
from instance import Instance, running_instance
from PIL import Image

PASSWORD = "a long password 1"


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("mastodonpy-media")) as inst:
        yield inst


def _still() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((96, 64)).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def _unsigned_video(tmp_path: Path) -> bytes:
    from render.encode import encode_mp4

    frames = np.zeros((9, 64, 48, 3), np.uint8)
    frames[..., 0] = (np.arange(9)[:, None, None] * 25) % 256
    path = tmp_path / "camera-roll.mp4"
    encode_mp4(frames, path, fps=8)
    return path.read_bytes()


def _wait_for_render(instance: Instance, token: str, render_id: str) -> list[dict[str, Any]]:
    """Follow the render's event stream until its ``end`` event; return all events."""
    events: list[dict[str, Any]] = []
    url = f"{instance.url}/api/fedisora/v1/renders/{render_id}/events"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(180.0)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                events.append({"event": kind, **json.loads(line.removeprefix("data: "))})
                if kind == "end":
                    break
    return events


def test_mastodonpy_media_and_render_to_post(instance: Instance, tmp_path: Path) -> None:
    cid, secret = mastodon.Mastodon.create_app(
        "media", api_base_url=instance.url, scopes=["read", "write"]
    )
    signup = mastodon.Mastodon(api_base_url=instance.url, client_id=cid, client_secret=secret)
    token = signup.create_account(
        "dana", PASSWORD, "dana@example.com", agreement=True, scopes=["read", "write"]
    )
    dana = mastodon.Mastodon(api_base_url=instance.url, access_token=token, request_timeout=60)

    # An image is an input still for image-to-video.
    still = dana.media_post(_still(), mime_type="image/jpeg", description="dunes", focus=(0, 0.5))
    assert still.type == "image" and still.description == "dunes"
    assert still.meta.original.width == 96 and still.meta.focus == {"x": 0.0, "y": 0.5}
    fetched = httpx.get(still.url, timeout=30)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
    updated = dana.media_update(still.id, description="dunes at dusk")
    assert updated.description == "dunes at dusk"

    # A video from anywhere but a fedisora render queue breaks the AI-only rule.
    with pytest.raises(mastodon.MastodonAPIError) as refused:
        dana.media_post(_unsigned_video(tmp_path), mime_type="video/mp4")
    assert refused.value.args[1] == 422
    assert "AI-only rule" in str(refused.value) and "no C2PA" in str(refused.value)

    # Render from the still through fedisora's own endpoint, wait on its event stream...
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        f"{instance.url}/api/fedisora/v1/renders",
        json={"prompt": "the dunes drift", "seconds": 1, "aspect": "16:9", "media_id": still.id},
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 202, r.text
    render_id = r.json()["id"]
    events = _wait_for_render(instance, token, render_id)
    assert events[-1] == {"event": "end", "id": render_id, "state": "ready"}, events
    assert events[0]["event"] == "progress" and events[-2]["percent"] == 100
    percents = [e["percent"] for e in events if e["event"] == "progress"]
    assert percents == sorted(percents)
    r = httpx.get(f"{instance.url}/api/fedisora/v1/renders/{render_id}", headers=auth, timeout=30)
    render = r.json()
    assert render["state"] == "ready" and render["kind"] == "image"
    video = render["media_attachment"]
    assert (
        video["type"] == "video"
        and video["meta"]["original"]["width"] > video["meta"]["original"]["height"]
    )

    # ... and post it with Mastodon.py like any attachment.
    status = dana.status_post("the dunes drift #dunes", media_ids=[video["id"]])
    (attachment,) = status.media_attachments
    assert attachment.type == "video" and str(attachment.id) == video["id"]
    assert attachment.meta.fedisora.provenance == "trusted"
    clip = httpx.get(attachment.url, headers={"Range": "bytes=0-7"}, timeout=30)
    assert clip.status_code == 206 and clip.content[4:8] == b"ftyp"
    assert dana.timeline_home()[0].id == status.id
    assert dana.media(video["id"]).type == "video"
    r = httpx.get(f"{instance.url}/api/fedisora/v1/renders/{render_id}", headers=auth, timeout=30)
    assert r.json()["status_id"] == str(status.id)
