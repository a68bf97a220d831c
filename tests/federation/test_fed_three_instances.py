"""Three real instances on loopback: a remix seen by a third party, verified and revoked.

a posts; b remixes a's clip (a approves it: FEP-044f QuoteRequest, Accept, stamp); c follows
b only, receives the remix, fetches a's clip and verifies the stamp from a itself. a deletes
its clip: a revokes b's stamp, b passes the revocation on to its followers (an Update of the
remix without the stamp) and c, rather than believe b, fetches the stamp again from a: gone,
so the quote is revoked. Each instance is ``fedisora init`` + ``fedisora serve`` in its own
process with its own SQLite database (see ``fedinstances.py``); users act through
``_peer.py``; everything between the instances goes over HTTP, signed and verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fedinstances import Instance, instances, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def abc(tmp_path: Path) -> Iterator[tuple[Instance, ...]]:
    with instances(tmp_path, "a", "b", "c") as started:
        yield started


def clip(state: dict[str, Any], uri: str) -> dict[str, Any] | None:
    return next((c for c in state["clips"] if c["uri"] == uri), None)


def follows(state: dict[str, Any], follower: str, target: str) -> bool:
    return any(
        f["follower"] == follower and f["target"] == target and f["state"] == "accepted"
        for f in state["follows"]
    )


def test_a_remix_verified_and_revoked_at_a_third_instance(abc: tuple[Instance, ...]) -> None:
    a, b, c = abc
    a_admin, b_admin, c_admin = (f"{i.base}/users/admin" for i in (a, b, c))

    # b and c follow a, c follows b.
    b.act("follow", "admin", f"admin@{a.domain}")
    c.act("follow", "admin", f"admin@{a.domain}")
    c.act("follow", "admin", f"admin@{b.domain}")
    wait_for(b, lambda s: follows(s, b_admin, a_admin), "b's follow of a")
    wait_for(
        c,
        lambda s: follows(s, c_admin, a_admin) and follows(s, c_admin, b_admin),
        "c's follows of a and b",
    )

    # a posts: the Create reaches b and c, one delivery per shared inbox.
    first = a.act("post", "admin", "dawn over the dunes")["uri"]
    for peer in (b, c):
        wait_for(peer, lambda s: clip(s, first) is not None, f"the Create at {peer.name}")
    state = a.act("state")
    creates = [d for d in state["deliveries"] if d["type"] == "Create"]
    assert sorted(d["inbox"] for d in creates) == sorted(f"{i.base}/inbox" for i in (b, c))
    assert len({d["id"] for d in creates}) == 1

    # c likes and comments on it: both reach a.
    c.act("like", "admin", first)
    c.act("comment", "admin", first, "lovely light")
    wait_for(
        a,
        lambda s: (
            (clip(s, first) or {}).get("likes") == 1 and (clip(s, first) or {}).get("comments") == 1
        ),
        "c's like and comment",
    )

    # c stops following a; a posts again: c does not get this one.
    c.act("unfollow", "admin", a_admin)
    wait_for(a, lambda s: not follows(s, c_admin, a_admin), "c's Undo(Follow) at a")
    source = a.act("post", "admin", "tide coming in")["uri"]
    wait_for(b, lambda s: clip(s, source) is not None, "the second Create at b")

    # b remixes it; a approves (its Accept carries a stamp b stores on its remix).
    remix = b.act("remix", "admin", source, "my take on the tide")["uri"]
    b_state = wait_for(b, lambda s: bool((clip(s, remix) or {}).get("stamp")), "a's stamp at b")
    stamp = clip(b_state, remix)["stamp"]  # type: ignore[index]
    assert stamp.startswith(f"{source}/quote_authorizations/")
    assert clip(b_state, remix)["quote_state"] == "accepted"  # type: ignore[index]

    # c (following b, not a) gets the remix, fetches a's clip and verifies the stamp at a.
    c_state = wait_for(
        c,
        lambda s: (clip(s, remix) or {}).get("quote_state") == "accepted",
        "the remix verified at c",
        timeout=60,
    )
    assert clip(c_state, remix)["stamp"] == stamp  # type: ignore[index]
    fetched = clip(c_state, source)
    assert fetched is not None and fetched["local"] is False  # fetched from a, stored remote
    assert fetched["remixes"] == 1
    verified = [q for q in c_state["quote_checks"] if q["outcome"] == "accepted"]
    assert [q["stamp"] for q in verified] == [stamp]
    quote = c.act("status", "admin", remix)["quote"]
    assert quote["state"] == "accepted" and quote["quoted_status"]["uri"] == source

    # a deletes its clip: b's stamp is revoked; c hears of it from b, and checks with a.
    a.act("delete", "admin", source)
    b_state = wait_for(
        b,
        lambda s: (clip(s, remix) or {}).get("quote_state") == "revoked",
        "the revocation at b",
    )
    assert clip(b_state, remix)["stamp"] is None  # type: ignore[index]
    c_state = wait_for(
        c,
        lambda s: (clip(s, remix) or {}).get("quote_state") in ("revoked", "deleted"),
        "the revocation at c",
        timeout=60,
    )
    assert clip(c_state, remix)["quote_state"] == "revoked"  # type: ignore[index]
    [rechecked] = [q for q in c_state["quote_checks"] if q["withdrawn"]]
    assert (rechecked["stamp"], rechecked["outcome"]) == (stamp, "revoked")
    assert "410" in rechecked["reason"] or "404" in rechecked["reason"]
    assert c.act("status", "admin", remix)["quote"] == {"state": "revoked", "quoted_status": None}

    # Nothing went wrong on the way: every delivery arrives, no inbox item failed.
    for instance in (a, b, c):
        state = wait_for(
            instance,
            lambda s: all(d["state"] == "delivered" for d in s["deliveries"]),
            f"{instance.name}'s deliveries",
        )
        assert all(i["state"] in ("processed", "ignored") for i in state["inbox"]), state["inbox"]
