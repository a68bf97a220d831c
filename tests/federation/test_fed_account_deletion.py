"""Deleted and suspended accounts, across two real instances on loopback: ``fedisora
deleteuser`` on one sends the single ``Delete`` of the actor, and the other removes the
account's clips and the follows both ways; suspending and unsuspending through the admin API
sends the actor's ``Update``, and the other hides and shows the account, keeping its own
moderator's suspension apart.

Each instance is ``fedisora init`` + ``fedisora serve`` with its own SQLite database on a free
127.0.0.1 port (see fedinstances.py); users act through ``_peer.py`` and the CLI, and all that
passes between the instances goes over HTTP, signed and verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


AP = {"accept": "application/activity+json"}


def _admin(instance: Instance) -> dict[str, str]:
    """Headers with a token of the instance's admin (made by ``fedisora init``) for
    Mastodon's admin API, through the real OAuth endpoints."""
    scopes = "admin:read admin:write"
    with httpx.Client(base_url=instance.base) as http:
        app = http.post(
            "/api/v1/apps",
            data={
                "client_name": "moderation",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": scopes,
            },
        ).json()
        r = http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "username": "admin",
                "password": PASSWORD,
                "scope": scopes,
            },
        )
        assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_suspension_federates_and_is_undone(instances: tuple[Instance, Instance]) -> None:
    a, b = instances
    _cli(a, "createuser", "bob", "--email", "bob@example.com", "--password", PASSWORD)
    bob = f"{a.base}/users/bob"
    b.act("follow", "admin", f"bob@{a.domain}")
    wait_for(b, lambda s: [f["state"] for f in s["follows"]] == ["accepted"], "the follow")
    clip_uri = a.act("post", "bob", "here today")["uri"]
    wait_for(b, lambda s: any(c["uri"] == clip_uri for c in s["clips"]), "bob's clip")
    a_admin, b_admin = _admin(a), _admin(b)

    with httpx.Client(base_url=a.base) as on_a, httpx.Client(base_url=b.base) as on_b:
        bob_on_a = on_a.get("/api/v1/accounts/lookup", params={"acct": "bob"}).json()["id"]
        found = on_b.get("/api/v1/accounts/lookup", params={"acct": f"bob@{a.domain}"})
        bob_on_b = found.json()["id"]

        def moderate(
            http: httpx.Client, account_id: str, headers: dict[str, str], act: str
        ) -> None:
            path = f"/api/v1/admin/accounts/{account_id}"
            if act == "suspend":
                r = http.post(f"{path}/action", data={"type": "suspend"}, headers=headers)
            else:
                r = http.post(f"{path}/unsuspend", headers=headers)
                assert r.json()["suspended"] is False, r.text
            assert r.status_code == 200, r.text

        def on_b_bob(s: dict[str, Any]) -> dict[str, bool]:
            return dict(s["accounts"][bob])

        def shown_on_b() -> bool:
            r = on_b.get(f"/api/v1/accounts/{bob_on_b}/statuses")
            assert r.status_code in (200, 404), r.text
            return r.status_code == 200 and [st["uri"] for st in r.json()] == [clip_uri]

        assert shown_on_b()

        # a suspends bob: b hears the actor's Update saying ``suspended`` and hides him.
        moderate(on_a, bob_on_a, a_admin, "suspend")
        wait_for(b, lambda s: on_b_bob(s)["origin_suspended"], "bob suspended by his server")
        assert not shown_on_b() and not on_b_bob(b.act("state"))["suspended"]
        actor = on_a.get("/users/bob", headers=AP)
        assert actor.status_code == 200 and actor.json()["suspended"] is True
        finger = on_a.get("/.well-known/webfinger", params={"resource": f"acct:bob@{a.domain}"})
        assert finger.status_code == 200  # so that peers can still fetch (and refresh) him

        # a unsuspends him: the full actor again, and b shows him (and his clip) again.
        moderate(on_a, bob_on_a, a_admin, "unsuspend")
        wait_for(b, lambda s: not on_b_bob(s)["origin_suspended"], "bob unsuspended")
        assert shown_on_b()

        # Suspended by his server again, and by b's moderator too.
        moderate(on_a, bob_on_a, a_admin, "suspend")
        wait_for(b, lambda s: on_b_bob(s)["origin_suspended"], "bob suspended again")
        moderate(on_b, bob_on_b, b_admin, "suspend")
        # His server lifts its suspension: b keeps its moderator's (the Update is refused at
        # b's door, or taken on a cached key and ignored).
        moderate(on_a, bob_on_a, a_admin, "unsuspend")
        wait_for(
            a,
            lambda s: all(d["state"] != "pending" for d in s["deliveries"]),
            "the Update to be delivered or refused",
        )
        wait_for(b, lambda s: all(i["state"] != "received" for i in s["inbox"]), "b's inbox")
        assert on_b_bob(b.act("state"))["suspended"] and not shown_on_b()

        # b's moderator lifts theirs: bob is refetched from a, where he is not suspended.
        moderate(on_b, bob_on_b, b_admin, "unsuspend")
        assert on_b_bob(b.act("state")) == {"suspended": False, "origin_suspended": False}
        assert shown_on_b()
    # Nothing of b's moderation went to a: b sent only the follow.
    assert [d["type"] for d in b.act("state")["deliveries"]] == ["Follow"]
