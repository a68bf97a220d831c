"""Two real instances on loopback federating over HTTP: follow, post, like, comment, remix,
delete, unfollow, and a dead peer coming back.

Each instance is ``fedisora init`` + ``fedisora serve`` in its own process with its own
SQLite database, on a free 127.0.0.1 port, with FEDISORA_INSECURE_HTTP=1 (plain http and
loopback addresses allowed). Users act through ``_peer.py`` (the real services, in a
separate process); everything between the instances goes over HTTP, signed and verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fedinstances import Instance, serve, stop, two_instances, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance, Path]]:
    with two_instances(tmp_path) as (a, b):
        yield a, b, tmp_path


def test_follow_post_like_comment_remix_delete_unfollow(
    instances: tuple[Instance, Instance, Path],
) -> None:
    a, b, _ = instances
    a_admin = f"{a.base}/users/admin"
    b_admin = f"{b.base}/users/admin"

    # b follows a (resolved by WebFinger); a auto-accepts and b learns of it.
    followed = b.act("follow", "admin", f"admin@{a.domain}")
    assert followed["target"] == a_admin
    wait_for(
        b,
        lambda s: any(
            f["follower"] == b_admin and f["target"] == a_admin and f["state"] == "accepted"
            for f in s["follows"]
        ),
        "the Accept",
    )
    a_state = a.act("state")
    assert {"follower": b_admin, "target": a_admin, "state": "accepted"} in a_state["follows"]

    # a posts; the clip reaches b as a remote clip.
    clip_uri = a.act("post", "admin", "sunset over the bay #waves")["uri"]
    assert clip_uri.startswith(f"{a.base}/users/admin/clips/")
    b_state = wait_for(b, lambda s: any(c["uri"] == clip_uri for c in s["clips"]), "the Create")
    [remote_clip] = [c for c in b_state["clips"] if c["uri"] == clip_uri]
    assert remote_clip["local"] is False
    assert remote_clip["caption"] == "sunset over the bay #waves"

    # b likes and comments; a counts both.
    b.act("like", "admin", clip_uri)
    b.act("comment", "admin", clip_uri, "gorgeous")
    a_state = wait_for(
        a,
        lambda s: any(
            c["uri"] == clip_uri and c["likes"] == 1 and c["comments"] == 1 for c in s["clips"]
        ),
        "the Like and the comment",
    )
    assert all(d["state"] == "delivered" for d in a_state["deliveries"]), a_state["deliveries"]
    assert all(i["state"] == "processed" for i in a_state["inbox"]), a_state["inbox"]
    b_state = b.act("state")
    assert all(d["state"] == "delivered" for d in b_state["deliveries"]), b_state["deliveries"]
    assert {d["type"] for d in b_state["deliveries"]} == {"Follow", "Like", "Create"}

    # b remixes a's clip: the Create reaches a (the source's author) with an FEP-044f quote.
    # a's own answer to b's QuoteRequest approves it, whichever of the two came first (the
    # Create first: the answer approves the stored remix; the request first: b's Update with
    # the stamp does); only then does it count among the clip's remixes.
    remix_uri = b.act("remix", "admin", clip_uri, "my take")["uri"]
    a_state = wait_for(
        a,
        lambda s: any(c["uri"] == remix_uri and c["quote_state"] == "accepted" for c in s["clips"]),
        "the remix, approved",
    )
    [remix] = [c for c in a_state["clips"] if c["uri"] == remix_uri]
    assert remix["remix_of"] == clip_uri and remix["local"] is False
    assert [c["remixes"] for c in a_state["clips"] if c["uri"] == clip_uri] == [1]
    # b also asked a for approval (QuoteRequest); a's Accept carries a stamp that b fetched,
    # checked and stored on its remix.
    b_state = wait_for(
        b,
        lambda s: any(c["uri"] == remix_uri and c["stamp"] for c in s["clips"]),
        "the QuoteAuthorization stamp",
    )
    [stamped] = [c for c in b_state["clips"] if c["uri"] == remix_uri]
    assert stamped["stamp"].startswith(f"{clip_uri}/quote_authorizations/")
    assert any(i["type"] == "Accept" and i["state"] == "processed" for i in b_state["inbox"])

    # a deletes the clip: b's copy goes, and so does the stamp of b's remix (a revokes it).
    a.act("delete", "admin", clip_uri)
    wait_for(b, lambda s: all(c["uri"] != clip_uri for c in s["clips"]), "the Delete")
    wait_for(
        b,
        lambda s: all(c["stamp"] is None for c in s["clips"] if c["uri"] == remix_uri),
        "the revocation of the stamp",
    )
    b.act("unfollow", "admin", a_admin)
    wait_for(a, lambda s: s["follows"] == [], "the Undo(Follow)")


def test_dead_peer_coming_back(instances: tuple[Instance, Instance, Path]) -> None:
    """A delivery to a peer that is down waits (backoff) and arrives once it is back."""
    a, b, tmp = instances
    b.act("follow", "admin", f"admin@{a.domain}")
    wait_for(b, lambda s: [f["state"] for f in s["follows"]] == ["accepted"], "the Accept")

    stop(b)
    clip_uri = a.act("post", "admin", "while you were away")["uri"]
    state = wait_for(
        a,
        lambda s: any(d["type"] == "Create" and d["error"] for d in s["deliveries"]),
        "a failed attempt",
    )
    [create] = [d for d in state["deliveries"] if d["type"] == "Create"]
    assert create["state"] == "pending"  # retried later, not dropped

    serve(b, tmp)
    # The first retry is 30 s after the failure; the runner polls every second.
    wait_for(b, lambda s: any(c["uri"] == clip_uri for c in s["clips"]), "the retry", 90)
    wait_for(
        a,
        lambda s: all(d["state"] == "delivered" for d in s["deliveries"]),
        "the delivery to be recorded",
    )
