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

from fedisora.federation.provenance_check import FETCH_FAILED

pytestmark = pytest.mark.slow

_POST_LATEST_RENDER = """
import asyncio, json, sys
from fedisora import federation
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

_POST_UNPOSTED_RENDER = """
import asyncio, json, sys
from fedisora import federation
from fedisora import urls
from fedisora.config import load_settings
from fedisora.db import close_db, init_db
from fedisora.models import Account, Clip, MediaFile
from fedisora.services import posts

async def main(caption, which):
    settings = load_settings()
    urls.configure(settings)
    await init_db(settings)
    federation.install(None)
    try:
        admin = await Account.get(username="admin", domain=None)
        posted = await Clip.filter(media_id__not_isnull=True).values_list("media_id", flat=True)
        media = await MediaFile.filter(
            account_id=admin.pk, kind="video", file__not_isnull=True
        ).exclude(id__in=list(posted)).order_by("id" if which == "oldest" else "-id").first()
        clip = await posts.post_clip(admin, media, caption=caption)
        print(json.dumps({"uri": clip.uri, "file": media.file}))
    finally:
        await federation.uninstall()
        await close_db()

asyncio.run(main(sys.argv[1], sys.argv[2]))
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
    # Played from B's media proxy (a viewer never contacts A), the very file A serves.
    assert attachment["remote_url"] == clip["url"]
    assert attachment["url"].startswith(f"{b.base}/media_proxy/")
    proxied = httpx.get(attachment["url"], timeout=30)
    assert proxied.status_code == 200
    assert proxied.content == httpx.get(clip["url"], timeout=30).content
    ranged = httpx.get(attachment["url"], headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == proxied.content[:100]
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
    assert clip["provenance"]["reason"] == FETCH_FAILED  # why (HTTP 404) is in B's log only


def test_a_clip_signed_before_the_root_was_replaced_stays_verified(
    instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    """A replaces its provenance root as an admin would (``fedisora init
    --new-provenance-root``, while it keeps serving). B had A's old root cached: a clip under
    the new root makes B fetch A's roots again, and a clip rendered under the old root but
    posted afterwards is still verified, by B and by A itself."""
    a, b = instances
    b.act("follow", "admin", f"admin@{a.domain}")
    wait_for(b, lambda s: [f["state"] for f in s["follows"]] == ["accepted"], "the Accept")

    def render(prompt: str) -> None:
        done = fedisora(["render", prompt, "--seconds", "1"], a.env, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    def post_and_check(caption: str, which: str) -> dict[str, Any]:
        """Post A's *which* (oldest or newest) unposted render; B's label of it."""
        posted = _python(a, _POST_UNPOSTED_RENDER, caption, which)
        clips = _wait_remote(
            b,
            # Done: the check is queued with the clip, and labels it only when it has run.
            lambda cs: any(
                c["uri"] == posted["uri"] and c["checks"] and "pending" not in c["checks"]
                for c in cs
            ),
            f"the check of {caption!r}",
        )
        [clip] = [c for c in clips if c["uri"] == posted["uri"]]
        prov: dict[str, Any] = clip["provenance"]
        assert prov["state"] == "verified", prov
        assert prov["reason"] == f"rendered and signed by {a.domain}"
        return {**posted, "provenance": prov}

    render("a lighthouse in a storm")
    post_and_check("a lighthouse in a storm", "oldest")  # B caches A's first root
    render("a heron on a pier")  # signed under the first root, posted after the replacement

    root_url = f"{a.base}/.well-known/fedisora/provenance-root.pem"
    old_root = httpx.get(root_url, timeout=10).text
    replaced = fedisora(["init", "--new-provenance-root"], a.env)
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert "provenance signing certificate: replaced; 1 retired root(s)" in replaced.stdout
    new_root = (tmp_path / "a" / "provenance" / "root.pem").read_text()
    assert new_root != old_root
    # A publishes the new root first, then the old one (also with ?all=1), never a key.
    for url in (root_url, f"{root_url}?all=1"):
        published = httpx.get(url, timeout=10)
        assert published.status_code == 200
        assert published.text == new_root + old_root
        assert "PRIVATE KEY" not in published.text

    render("a kite over a hill")
    new = post_and_check("a kite over a hill", "newest")  # B's cached root is not this one
    old = post_and_check("a heron on a pier", "oldest")  # B now has what A published
    assert old["provenance"]["signer"] == new["provenance"]["signer"]  # same name, new root

    # A verifies its own clips, old and new, locally.
    for clip in (old, new):
        verified = fedisora(["verify", str(tmp_path / "a" / "media" / clip["file"])], a.env)
        assert verified.returncode == 0, verified.stdout + verified.stderr[-3000:]
        assert "validation: Trusted (signed by a trusted instance root; 2 trusted roots)" in (
            verified.stdout
        )
