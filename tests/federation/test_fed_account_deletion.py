"""A deleted account, across two real instances on loopback: ``fedisora deleteuser`` on one
sends the single ``Delete`` of the actor, and the other removes the account's clips and the
follows both ways.

Each instance is ``fedisora init`` + ``fedisora serve`` with its own SQLite database on a free
127.0.0.1 port (see fedinstances.py); users act through ``_peer.py`` and the CLI, and all that
passes between the instances goes over HTTP, signed and verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fedinstances import Instance, two_instances, wait_for
from instance import fedisora

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    with two_instances(tmp_path) as pair:
        yield pair


def _cli(instance: Instance, *args: str) -> str:
    out = fedisora(list(args), instance.env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_deleted_account_disappears_from_its_followers_instance(
    instances: tuple[Instance, Instance],
) -> None:
    a, b = instances
    _cli(a, "createuser", "bob", "--email", "bob@example.com", "--password", PASSWORD)
    bob = f"{a.base}/users/bob"
    b_admin = f"{b.base}/users/admin"

    # b's admin follows bob, and bob follows b's admin: b knows bob both ways.
    b.act("follow", "admin", f"bob@{a.domain}")
    a.act("follow", "bob", f"admin@{b.domain}")
    both = sorted([(b_admin, bob, "accepted"), (bob, b_admin, "accepted")])
    wait_for(
        b,
        lambda s: sorted((f["follower"], f["target"], f["state"]) for f in s["follows"]) == both,
        "both follows",
    )
    clip_uri = a.act("post", "bob", "here today")["uri"]
    wait_for(b, lambda s: any(c["uri"] == clip_uri for c in s["clips"]), "bob's clip")
    with httpx.Client(base_url=b.base) as http:
        found = http.get("/api/v1/accounts/lookup", params={"acct": f"bob@{a.domain}"})
        assert found.status_code == 200 and found.json()["url"]

    out = _cli(a, "deleteuser", "bob", "--yes")
    assert "deleted @bob: 1 clips" in out
    assert "the Delete goes to 1 remote inboxes" in out  # b's shared inbox, once

    # b hears of it: bob's clip and both follows are gone there, and bob is no longer known.
    b_state = wait_for(
        b,
        lambda s: s["follows"] == [] and all(c["uri"] != clip_uri for c in s["clips"]),
        "the Delete of bob",
    )
    assert [i["state"] for i in b_state["inbox"] if i["type"] == "Delete"] == ["processed"]
    with httpx.Client(base_url=b.base) as http:
        found = http.get("/api/v1/accounts/lookup", params={"acct": f"bob@{a.domain}"})
        assert found.status_code == 404
    a_state = wait_for(
        a,
        lambda s: [d["state"] for d in s["deliveries"] if d["type"] == "Delete"] == ["delivered"],
        "the Delete to be recorded as delivered",
    )
    # The clip went with the actor: no Delete of the clip itself was sent.
    assert [d["type"] for d in a_state["deliveries"]].count("Delete") == 1
    assert a_state["follows"] == []

    # On a, bob's actor and WebFinger answer 410 Gone, and the name cannot be taken again.
    with httpx.Client(base_url=a.base) as http:
        actor = http.get("/users/bob", headers={"accept": "application/activity+json"})
        assert actor.status_code == 410 and actor.json()["type"] == "Tombstone"
        finger = http.get("/.well-known/webfinger", params={"resource": f"acct:bob@{a.domain}"})
        assert finger.status_code == 410
    taken = ["createuser", "bob", "--email", "bob2@example.com", "--password", PASSWORD]
    again = fedisora(taken, a.env)
    assert again.returncode == 1 and "username 'bob' is taken" in again.stderr
