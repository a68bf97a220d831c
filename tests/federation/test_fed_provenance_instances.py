"""Two real instances on loopback: B receives a clip A rendered and checks its provenance.

A renders a real clip through its own render queue (``fedisora render``, the tiny model,
C2PA-signed under A's root) and posts it; B, following A, gets the Create, and B's own
server process (its in-process runner) downloads the video from A's URL, fetches A's
published root and labels the clip ``verified``. A clip whose file A cannot serve ends
``unverified``. Both instances are ``fedisora init`` + ``fedisora serve`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedinstances import ROOT, Instance, two_instances, wait_for
from instance import fedisora

pytestmark = pytest.mark.slow

_POST_LATEST_RENDER = """
import asyncio, json, sys
from activitypub import federation
from fedisora import urls
from fedisora.config import load_settings
from fedisora.db import close_db, init_db
from fedisora.models import Account, MediaFile
from fedisora.services import posts

async def main(caption):
    settings = load_settings()
    urls.configure(settings)
    await init_db(settings)
    federation.install(None)
    try:
        admin = await Account.get(username="admin", domain=None)
        media = await MediaFile.filter(
            account_id=admin.pk, kind="video", file__not_isnull=True
        ).order_by("-id").first()
        clip = await posts.post_clip(admin, media, caption=caption)
        print(json.dumps({
            "uri": clip.uri, "file": media.file, "size": media.size,
            "manifest_digest": media.provenance["manifest_digest"],
        }))
    finally:
        await federation.uninstall()
        await close_db()

asyncio.run(main(sys.argv[1]))
"""

_REMOTE_CLIPS = """
import asyncio, json
from fedisora.config import load_settings
from fedisora.db import close_db, init_db
from fedisora.models import Clip, MediaFile, RemoteMediaCheck

async def main():
    await init_db(load_settings())
    out = []
    for clip in await Clip.filter(local=False, deleted_at=None):
        media = await MediaFile.get(pk=clip.media_id)
        checks = await RemoteMediaCheck.filter(media_id=media.pk).values_list("state", flat=True)
        out.append({"uri": clip.uri, "url": media.remote_url, "file": media.file,
                    "provenance": media.provenance, "checks": list(checks)})
    print(json.dumps(out))
    await close_db()

asyncio.run(main())
"""


def _python(instance: Instance, script: str, *args: str, timeout: float = 60) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=instance.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _wait_remote(
    instance: Instance, check: Callable[[list[dict[str, Any]]], bool], what: str
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    clips: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        clips = _python(instance, _REMOTE_CLIPS)
        if check(clips):
            return clips
        time.sleep(0.5)
    raise AssertionError(f"{instance.name}: timed out waiting for {what}; remote clips {clips}")


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    with two_instances(tmp_path) as pair:
        yield pair


def test_a_rendered_clip_is_verified_by_the_receiving_instance(
    instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    a, b = instances

    # A publishes its root (and only its root) and says where in its NodeInfo.
    root_url = f"{a.base}/.well-known/fedisora/provenance-root.pem"
    published = httpx.get(root_url, timeout=10)
    assert published.status_code == 200
    assert published.text == (tmp_path / "a" / "provenance" / "root.pem").read_text()
    assert "PRIVATE KEY" not in published.text
    nodeinfo = httpx.get(f"{a.base}/nodeinfo/2.1", timeout=10).json()
    assert nodeinfo["metadata"]["provenanceRoot"] == root_url

    b.act("follow", "admin", f"admin@{a.domain}")
    wait_for(b, lambda s: [f["state"] for f in s["follows"]] == ["accepted"], "the Accept")

    # A renders a real clip with its render queue and posts it.
    rendered = fedisora(["render", "a lighthouse in a storm", "--seconds", "1"], a.env, timeout=600)
    assert rendered.returncode == 0, rendered.stdout[-2000:] + rendered.stderr[-3000:]
    posted = _python(a, _POST_LATEST_RENDER, "a lighthouse in a storm")

    clips = _wait_remote(
        b,
        lambda cs: any(c["uri"] == posted["uri"] and c["checks"] == ["verified"] for c in cs),
        "the check of A's clip",
    )
    [clip] = [c for c in clips if c["uri"] == posted["uri"]]
    assert clip["file"] is None  # B shows it from A's URL and kept no copy
    assert clip["url"] == f"{a.base}/media/{posted['file']}"
    prov = clip["provenance"]
    assert prov["state"] == "verified", prov
    assert prov["reason"] == f"rendered and signed by {a.domain}"
    assert prov["manifest_digest"] == posted["manifest_digest"] == prov["file_manifest_digest"]
    assert prov["claim"]["instance"] == a.domain
    assert prov["claim"]["creator"] == f"{a.base}/users/admin"
    assert list((tmp_path / "b" / "tmp" / "remote-media").iterdir()) == []

    # B's Mastodon API shows the label on the status.
    timeline = httpx.get(f"{b.base}/api/v1/timelines/public", timeout=10).json()
    [status] = [s for s in timeline if s["uri"] == posted["uri"]]
    [attachment] = status["media_attachments"]
    assert attachment["url"] == clip["url"]
    assert attachment["meta"]["fedisora"]["provenance"] == "verified"
    assert attachment["meta"]["fedisora"]["provenance_reason"] == prov["reason"]

    # A clip whose file A cannot serve (the test's stand-in render has no file) is unverified.
    missing = a.act("post", "admin", "no file behind this one")["uri"]
    clips = _wait_remote(
        b,
        lambda cs: any(c["uri"] == missing and c["checks"] == ["unverified"] for c in cs),
        "the check of the clip without a file",
    )
    [clip] = [c for c in clips if c["uri"] == missing]
    assert clip["provenance"]["state"] == "unverified"
    assert "HTTP 404" in clip["provenance"]["reason"]
