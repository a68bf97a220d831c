"""Two real instances on loopback federating over HTTP: follow, post, like, comment, remix,
delete, unfollow, a subscription to the other's signed opt-out list, a report forwarded as a
``Flag`` (and one refused by a domain block), and a dead peer coming back.

Each instance is ``fedisora init`` + ``fedisora serve`` in its own process with its own
SQLite database, on a free port, with FEDISORA_INSECURE_HTTP=1 (plain http and loopback
addresses allowed): ``a`` on 127.0.0.1, ``b`` on 127.0.0.2, two hosts (a domain block covers
a host, whatever the port, and an instance cannot block its own). Users act through
``_peer.py`` (the real services, in a separate process) and the Mastodon API; everything
between the instances goes over HTTP, signed and verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedinstances import (
    Instance,
    api_headers,
    form_csrf,
    serve,
    stop,
    two_instances,
    wait_for,
    web_session,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance, Path]]:
    with two_instances(tmp_path, b_host="127.0.0.2") as (a, b):
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
    # Stored on both sides under the Follow's own id.
    row = {"follower": b_admin, "target": a_admin, "state": "accepted", "uri": followed["follow"]}
    assert row in a_state["follows"]

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

    _optout_list_across(a, b)
    _report_across(a, b, remix_uri)


OPTOUTS = "/api/fedisora/v1/optouts"
RENDERS = "/api/fedisora/v1/renders"


def _optout_list_across(a: Instance, b: Instance) -> None:
    """b's admin approves a rights holder's opt-out; a's admin subscribes to b's signed list
    (plain http: both instances run with FEDISORA_INSECURE_HTTP, which the subscribe form
    passes on) and fetches it now from the admin page: in review mode the diff waits there
    and a prompt naming the term still passes; applied, a's prompt policy refuses it, naming
    the rule. Switched to auto, b's next approval applies at a's next fetch. (a's
    ``optout_lists`` chore, due at once after this first subscription, runs alongside
    within the second: it leaves a list an admin fetched a moment ago, and an admin's fetch
    that overlaps another reports what it found all the same.)"""
    on_a = api_headers(a, "read write")
    with (
        httpx.Client(base_url=b.base, timeout=30) as http_b,
        httpx.Client(base_url=a.base, timeout=30) as http_a,
        web_session(a) as admin_a,
        web_session(b) as admin_b,
    ):

        def opt_out(who: str, term: str) -> None:
            """A rights holder asks b (no account needed); b's admin approves it."""
            asked = http_b.post(
                OPTOUTS,
                json={
                    "who": who,
                    "kind": "protected_work",
                    "terms": [term],
                    "evidence": "we own the character",
                    "contact": "legal@glimmerfox.example",
                },
            )
            assert asked.status_code == 202, asked.text
            page = admin_b.get("/admin/optouts")
            assert page.status_code == 200 and who in page.text, page.text[-2000:]
            approved = admin_b.post(
                f"/admin/optouts/{asked.json()['id']}/approve", data={"csrf": form_csrf(page.text)}
            )
            assert approved.status_code == 303, approved.text[-2000:]

        def render(prompt: str) -> httpx.Response:
            return http_a.post(RENDERS, data={"prompt": prompt, "seconds": "1"}, headers=on_a)

        def fetch_now(sub: str) -> str:
            page = admin_a.get("/admin/optouts")
            done = admin_a.post(
                f"/admin/optouts/lists/{sub}/fetch", data={"csrf": form_csrf(page.text)}
            )
            assert done.status_code == 200, done.text[-2000:]
            return done.text

        opt_out("Glimmerfox Studios", "Captain Glimmerfox")
        published = http_b.get(f"{OPTOUTS}/list")
        assert published.status_code == 200, published.text
        listed = published.json()
        assert listed["version"] == 1 and listed["proof"]["type"] == "DataIntegrityProof"
        assert [e["terms"] for e in listed["entries"]] == [["Captain Glimmerfox"]]
        issuer = listed["issuer"]
        assert issuer.startswith(f"{b.base}/")

        # a's admin subscribes for review; plain http is allowed on this loopback pair only
        page = admin_a.get("/admin/optouts")
        list_url = f"{b.base}{OPTOUTS}/list"
        subscribed = admin_a.post(
            "/admin/optouts/lists",
            data={"csrf": form_csrf(page.text), "url": list_url, "mode": "review"},
        )
        assert subscribed.status_code == 303, subscribed.text[-2000:]
        sub = subscribed.headers["location"].rsplit("#list-", 1)[1]

        # fetched now: verified with b's instance actor's key; the diff waits for review
        diff = fetch_now(sub)
        assert "Fetched: a new version waits for review below." in diff, diff[-3000:]
        assert "Version 1 (issued" in diff and f"issuer {issuer}" in diff
        assert "Added: <strong>Glimmerfox Studios</strong>" in diff and "Captain Glimmerfox" in diff
        queued = render("captain glimmerfox surfing a wave at dusk")
        assert queued.status_code == 202, queued.text  # not applied yet
        cancelled = http_a.post(f"{RENDERS}/{queued.json()['id']}/cancel", headers=on_a)
        assert cancelled.status_code == 200, cancelled.text

        page = admin_a.get("/admin/optouts")
        applied = admin_a.post(
            f"/admin/optouts/lists/{sub}/apply", data={"csrf": form_csrf(page.text)}
        )
        assert applied.status_code == 303, applied.text[-2000:]
        page = admin_a.get("/admin/optouts")
        assert "version 1 applied" in page.text and f"from {list_url}" in page.text
        refused = render("captain glimmerfox surfing a wave at dusk")
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == (
            "This prompt names a protected character or work "
            "(rule: opted out by Glimmerfox Studios: “Captain Glimmerfox”)"
        )

        # auto mode: b's next approval is applied at a's next fetch, with no review
        switched = admin_a.post(
            f"/admin/optouts/lists/{sub}/mode",
            data={"csrf": form_csrf(page.text), "mode": "auto"},
        )
        assert switched.status_code == 303, switched.text[-2000:]
        opt_out("Pebblewick Ltd", "Sir Pebblewick")
        assert "Fetched: the new version is applied." in fetch_now(sub)
        refused = render("sir pebblewick bakes bread")
        assert refused.status_code == 422, refused.text
        assert "opted out by Pebblewick Ltd" in refused.json()["error"]
        assert "Fetched: no newer version." in fetch_now(sub)


FLAGS_TIMEOUT = 120  # CI is loaded: a delivery, then the inbox's turn on the other side


def _flags(state: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [x for x in state[key] if x["type"] == "Flag"]


def _report_across(a: Instance, b: Instance, remix_uri: str) -> None:
    """a's admin reports b's admin's remix through the Mastodon API: forwarded, it reaches b
    as a ``Flag`` from a's instance actor, which b's admin sees and resolves; kept at a, it
    goes nowhere; once b blocks a with ``reject_reports``, a forwarded one is ignored."""
    on_a = api_headers(a, "read write:reports admin:read:reports")
    on_b = api_headers(b, "admin:read:reports admin:write:reports admin:write:domain_blocks")
    with (
        httpx.Client(base_url=a.base, timeout=30) as http_a,
        httpx.Client(base_url=b.base, timeout=30) as http_b,
    ):
        found = http_a.get("/api/v1/accounts/lookup", params={"acct": f"admin@{b.domain}"})
        assert found.status_code == 200, found.text
        target = found.json()["id"]
        clips = http_a.get(f"/api/v1/accounts/{target}/statuses", headers=on_a)
        assert clips.status_code == 200, clips.text
        [remix_id] = [st["id"] for st in clips.json() if st["uri"] == remix_uri]

        def report(forward: bool, comment: str, category: str = "spam") -> dict[str, Any]:
            r = http_a.post(
                "/api/v1/reports",
                data={
                    "account_id": target,
                    "status_ids[]": [remix_id],
                    "category": category,
                    "comment": comment,
                    "forward": "true" if forward else "false",
                },
                headers=on_a,
            )
            assert r.status_code == 200, r.text
            filed: dict[str, Any] = r.json()
            assert filed["forwarded"] is forward and filed["comment"] == comment
            assert filed["category"] == category and filed["status_ids"] == [remix_id]
            return filed

        report(True, "the same remix posted again and again")
        report(False, "for our moderators only", "other")

        # b hears of the forwarded one alone, from a's instance actor (the reporter is not
        # named), about its admin and the remix, with the comment.
        wait_for(
            b,
            lambda s: [i["state"] for i in _flags(s, "inbox")] == ["processed"],
            "the Flag",
            FLAGS_TIMEOUT,
        )
        listed = http_b.get("/api/v1/admin/reports", headers=on_b)
        assert listed.status_code == 200, listed.text
        [received] = listed.json()
        assert received["comment"] == "the same remix posted again and again"
        assert received["target_account"]["username"] == "admin"
        assert received["target_account"]["domain"] is None  # b's own admin
        assert [st["uri"] for st in received["statuses"]] == [remix_uri]
        # a's instance actor, named after its domain (FEP-d556, as Mastodon's).
        reporter = received["account"]
        assert (reporter["username"], reporter["domain"]) == (a.domain, a.domain)
        finger = http_a.get(
            "/.well-known/webfinger", params={"resource": f"acct:{a.domain}@{a.domain}"}
        )
        assert finger.status_code == 200, finger.text
        [instance_actor] = [x["href"] for x in finger.json()["links"] if x["rel"] == "self"]
        assert reporter["account"]["uri"] == instance_actor
        assert received["action_taken"] is False and received["forwarded"] is False
        # a sent one Flag, signed by its instance actor (b verified it), and kept the other.
        a_state = wait_for(
            a,
            lambda s: [d["state"] for d in _flags(s, "deliveries")] == ["delivered"],
            "the Flag to be recorded as delivered",
            FLAGS_TIMEOUT,
        )
        [flag] = _flags(a_state, "deliveries")
        assert flag["id"].startswith(f"{instance_actor}#flags/")
        kept = http_a.get("/api/v1/admin/reports", headers=on_a)
        assert [r["forwarded"] for r in kept.json()] == [False, True], kept.text

        # b's admin resolves it.
        done = http_b.post(f"/api/v1/admin/reports/{received['id']}/resolve", headers=on_b)
        assert done.status_code == 200 and done.json()["action_taken"] is True, done.text
        assert http_b.get("/api/v1/admin/reports", headers=on_b).json() == []

        # b blocks a's domain for reports only: a later forwarded report is ignored there.
        block = http_b.post(
            "/api/v1/admin/domain_blocks",
            data={"domain": a.domain, "severity": "noop", "reject_reports": "true"},
            headers=on_b,
        )
        assert block.status_code == 200, block.text
        assert block.json()["domain"] == "127.0.0.1" and block.json()["reject_reports"] is True
        report(True, "again")
        b_state = wait_for(
            b,
            lambda s: [i["state"] for i in _flags(s, "inbox")] == ["processed", "ignored"],
            "the second Flag",
            FLAGS_TIMEOUT,
        )
        ignored = _flags(b_state, "inbox")[1]["error"]
        assert "reports from 127.0.0.1" in ignored and "rejected" in ignored, ignored
        every = http_b.get(
            "/api/v1/admin/reports", params={"resolved": "true", "unresolved": "true"}, headers=on_b
        )
        assert [r["id"] for r in every.json()] == [received["id"]], every.text


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
