"""Two real instances on loopback: a lookup that finds nothing here asks the peers whose
fingerprints this instance holds, and says which peer named the clip.

A posts clip Y before B follows it (B never receives Y), then clip X after (B receives X
with its fingerprint). On B: a copy of X is named by B itself; a copy of Y is not known to
B, so B asks A (the instance its fingerprints came from) with the copy's fingerprint, and
A's answer comes back marked ``via`` A; a clip neither knows is unknown; with A down, B
answers that it does not know, within the peer timeout. A's side: a peer's question is
answered from A's clips only, and a malformed one is a 422.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchlookup import encode, synthetic_clip, transform_file
from fedinstances import Instance, stop, two_instances, wait_for

from fedisora.api.provenance import LOOKUP_PATH
from fedisora.federation.peer_lookup import PEER_TIMEOUT

pytestmark = pytest.mark.slow


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    with two_instances(tmp_path) as (a, b):
        yield a, b


def _video(tmp: Path, name: str, seed: int) -> Path:
    frames, fps = synthetic_clip(seed)
    return encode(frames, tmp / f"{name}.mp4", fps)


def _lookup(instance: Instance, path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        r = httpx.post(f"{instance.base}{LOOKUP_PATH}", files={"file": ("copy.mp4", f)}, timeout=60)
    assert r.status_code == 200, r.text
    matches: list[dict[str, Any]] = r.json()["matches"]
    return matches


def test_a_miss_asks_the_peer_the_fingerprints_came_from(
    instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    a, b = instances
    y = a.act("post_video", "admin", str(_video(tmp_path, "y", 301)), "before the follow")
    b.act("follow", "admin", f"admin@{a.domain}")
    wait_for(b, lambda s: any(f["state"] == "accepted" for f in s["follows"]), "the Accept")
    x_file = _video(tmp_path, "x", 302)
    x = a.act("post_video", "admin", str(x_file), "after the follow")
    wait_for(
        b,
        lambda s: any(c["uri"] == x["uri"] for c in s["clips"]),
        "clip X on B",
    )
    deadline = time.monotonic() + 30
    while {"uri": x["uri"], "origin": "remote"} not in b.act("fingerprints")["fingerprints"]:
        assert time.monotonic() < deadline, "X's fingerprint never reached B"
        time.sleep(0.5)
    assert y["uri"] not in {f["uri"] for f in b.act("fingerprints")["fingerprints"]}

    # A copy of X: B knows it itself (no peer asked: via is null).
    (found,) = _lookup(b, transform_file(x_file, tmp_path / "x-copy.mp4", "resize"))
    assert (found["uri"], found["via"]) == (x["uri"], None)
    assert found["status_id"] is not None and found["instance"] == a.domain

    # A copy of Y: unknown to B, which asks A; A's answer is marked as A's.
    y_copy = transform_file(tmp_path / "y.mp4", tmp_path / "y-copy.mp4", "mirror")
    (named,) = _lookup(b, y_copy)
    assert named["uri"] == y["uri"] and named["via"] == a.domain
    assert named["status_id"] is None  # B has no such status
    assert named["instance"] == a.domain and named["author"] == f"admin@{a.domain}"
    assert named["provenance"] == "trusted"  # as A checked it: made there
    assert named["score"] >= 0.35
    # A answers its own lookup of the same copy locally, with its own status id.
    (at_a,) = _lookup(a, y_copy)
    assert (at_a["uri"], at_a["via"], at_a["status_id"]) == (y["uri"], None, y["id"])

    # A clip neither instance knows: unknown, after asking.
    assert _lookup(b, _video(tmp_path, "z", 303)) == []

    # A's endpoint answers a peer's question from its own clips and refuses nonsense.
    bad = httpx.post(
        f"{a.base}{LOOKUP_PATH}",
        json={"fingerprint": {"type": "VideoQueryFingerprint", "frameRate": 8}},
        timeout=30,
    )
    assert bad.status_code == 422 and bad.json()["error"].startswith("fingerprint: ")

    # With A down, B answers that it does not know, within the peer timeout.
    stop(a)
    started = time.monotonic()
    assert _lookup(b, y_copy) == []
    assert time.monotonic() - started < PEER_TIMEOUT + 20  # decoding and hashing included
