"""Two real instances on loopback: cameos of a remote owner, the grant side (issue 14).

``a`` holds the owners' likenesses, ``b`` the grantee. b's ``CameoRequest`` is answered by
a's policy (the same code as a local request): a Reject naming the restrictions to accept,
an Accept carrying the signed grant at once, or later once the owner approves. b verifies
each grant by the owner's key from a's actor document and stores it; forged grants are
refused and audited. b's render worker check fetches the owner's stills from a, signed,
for one job; a serves them only for a valid grant of an account of b. Each use reaches
the owner at a as a ``LikenessUse``; forged notices are ignored. The instances are shared
by the module's tests (they build on one another, in order).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedinstances import ROOT, Instance, start, stop

# Its tests build on each other's state: the suite runs a module's tests in one test process,
# in order (``--dist loadscope`` in scripts/test).
pytestmark = pytest.mark.slow

PEER = Path(__file__).with_name("_likeness_peer.py")


def act(instance: Instance, *args: str) -> Any:
    """Run actions of ``_likeness_peer.py`` as a user of *instance* (several: ``"::"``)."""
    out = subprocess.run(
        [sys.executable, str(PEER), *args],
        env=instance.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"{instance.name} {args}: {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def stored(instance: Instance) -> dict[str, Any]:
    """What *instance* stored, read from its SQLite database (read-only)."""
    path = Path(instance.env["FEDISORA_DATA_DIR"]) / "fedisora.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        db.row_factory = sqlite3.Row

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in db.execute(sql).fetchall()]

        accounts = {r["id"]: r["uri"] for r in rows("SELECT id, uri FROM accounts")}

        def named(found: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
            for row in found:
                for column in columns:
                    row[column.removesuffix("_id")] = accounts.get(row.pop(column))
            return found

        return {
            "requests": named(
                rows(
                    "SELECT requester_id, owner_id, state, uri, grant_id FROM likeness_requests"
                    " ORDER BY id"
                ),
                "requester_id",
                "owner_id",
            ),
            "grants": named(
                rows(
                    "SELECT id, uri, owner_id, grantee_id, remote, scope, revoked_at, single_use,"
                    " job_id, json_extract(document, '$.maxUses') AS max_uses,"
                    " document IS NOT NULL AS signed FROM likeness_grants ORDER BY id"
                ),
                "owner_id",
                "grantee_id",
            ),
            "uses": named(
                rows(
                    "SELECT owner_id, user_id, kind, remote, uri, grant_id, reason, clip_uri"
                    " FROM likeness_uses ORDER BY id"
                ),
                "owner_id",
                "user_id",
            ),
            "checks": named(
                rows(
                    "SELECT requester_id, owner_id, stage, allowed, reason, grant_id"
                    " FROM consent_checks ORDER BY id"
                ),
                "requester_id",
                "owner_id",
            ),
            "notifications": named(
                rows("SELECT recipient_id AS to_id, type FROM notifications ORDER BY id"), "to_id"
            ),
            "inbox": rows(
                "SELECT json_extract(payload, '$.type') AS type, state, last_error AS error"
                " FROM inbox_items ORDER BY id"
            ),
            "cameo_checks": rows(
                "SELECT clip_uri, state, outcome, reason FROM cameo_checks ORDER BY id"
            ),
            "clips": rows("SELECT uri, local, deleted_at FROM clips ORDER BY id"),
        }


def wait(instance: Instance, check: Callable[[dict[str, Any]], bool], what: str) -> Any:
    # 90 s: a check that met a transient fetch error on a loaded machine is retried after
    # 30 s (the cameo checks' first retry); a deadline, not a speed check.
    deadline = time.monotonic() + 90
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = stored(instance)
        if check(found):
            return found
        time.sleep(0.2)
    # The rows that say why first (CI output keeps only the start of a long message).
    unfinished = {
        key: [r for r in rows if not (isinstance(r, dict) and r.get("state") == "delivered")]
        for key, rows in found.items()
        if key in ("checks", "inbox", "deliveries")
    }
    raise AssertionError(
        f"{instance.name}: timed out waiting for {what}; {unfinished}; state {found}"
    )


@pytest.fixture(scope="module")
def ab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Instance]]:
    tmp = tmp_path_factory.mktemp("likeness")
    with ThreadPoolExecutor(2) as pool:  # both start at once: half the wait
        futures = [pool.submit(start, name, tmp) for name in ("a", "b")]
    started = [f.result() for f in futures if f.exception() is None]
    try:
        if len(started) < 2:
            raise next(e for f in futures if (e := f.exception()) is not None)
        a, b = started
        act(
            a,
            *("owner", "erin", "everyone", "never in political content"),
            "::",
            *("owner", "admin", "approved"),
            "::",
            *("localgrant", "erin", "carol"),
        )
        act(b, "user", "bob")
        yield a, b
    finally:
        for instance in started:
            stop(instance)


def uri(instance: Instance, name: str) -> str:
    return f"{instance.base}/users/{name}"


def grants_for(state: dict[str, Any], owner: str, grantee: str) -> list[dict[str, Any]]:
    return [g for g in state["grants"] if g["owner"] == owner and g["grantee"] == grantee]


def test_the_owners_policy_answers_at_once(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    erin, bob = uri(a, "erin"), uri(b, "bob")
    # Restrictions not accepted: a's policy refuses, the Reject says why.
    # Through the client API: erin is not known at b yet (found by WebFinger).
    asked = act(b, "api-request", "bob", f"erin@{a.domain}")
    assert asked["status"] == 200 and asked["state"] == "pending", asked
    [sent] = stored(b)["requests"]
    assert sent["uri"].startswith(f"{b.base}/likeness/requests/") and sent["owner"] == erin
    state = wait(b, lambda s: s["requests"][-1]["state"] == "rejected", "the Reject at b")
    [refusal] = [c for c in state["checks"] if c["stage"] == "request"]
    assert not refusal["allowed"] and "never in political content" in refusal["reason"]
    assert not grants_for(state, erin, bob)

    # Accepted: audience everyone answers at once with the signed grant, verified and kept.
    act(b, "request", "bob", f"erin@{a.domain}", "accept")
    state = wait(b, lambda s: s["requests"][-1]["state"] == "approved", "the Accept at b")
    [grant] = grants_for(state, erin, bob)
    assert grant["remote"] and grant["signed"] and grant["uri"].startswith(f"{a.base}/likeness/")
    assert state["requests"][-1]["grant_id"] == grant["id"]
    assert any(c["stage"] == "grant" and c["allowed"] for c in state["checks"])
    a_state = stored(a)
    [given] = grants_for(a_state, erin, bob)
    assert (given["uri"], given["remote"]) == (grant["uri"], False)
    assert [r["state"] for r in a_state["requests"] if r["owner"] == erin] == ["approved"]


def test_a_request_waits_for_the_owner_who_approves_it(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    admin, bob = uri(a, "admin"), uri(b, "bob")
    act(b, "request", "bob", f"admin@{a.domain}")
    a_state = wait(
        a,
        lambda s: any(r["owner"] == admin and r["state"] == "pending" for r in s["requests"]),
        "the pending request at a",
    )
    assert {"to": admin, "type": "fedisora.likeness_request"} in a_state["notifications"]
    assert not grants_for(stored(b), admin, bob)
    assert act(a, "approve", "admin") == {"answered": ["approved"]}
    state = wait(b, lambda s: bool(grants_for(s, admin, bob)), "the grant at b")
    assert [r["state"] for r in state["requests"] if r["owner"] == admin] == ["approved"]


#: How each bad grant is made at a (signed by erin's real key unless said), and the reason
#: b gives for refusing it.
BAD_GRANTS = {
    "expired": "expired",  # expires before now
    "other": "someone-else",  # for another grantee
    "wrongkey": "bad proof",  # signed by another key, naming erin's
    "tampered": "bad proof",  # scope changed after signing
}


def test_bad_grants_are_refused_and_audited(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    erin, bob = uri(a, "erin"), uri(b, "bob")
    forge: list[str] = []
    for variant in BAD_GRANTS:
        forge += ["forge", "erin", bob, variant, "::"]
    forged = act(a, *forge[:-1])
    store: list[str] = []
    for doc in forged:
        store += ["store", "bob", erin, json.dumps(doc), "::"]
    results = act(b, *store[:-1])
    found = stored(b)
    for doc, result, reason in zip(forged, results, BAD_GRANTS.values(), strict=True):
        assert result["stored"] is False and reason in result["reason"], (doc["id"], result)
        assert doc["id"] not in {g["uri"] for g in found["grants"]}
        assert any(
            c["stage"] == "grant" and not c["allowed"] and reason in c["reason"]
            for c in found["checks"]
        )


def test_stills_are_fetched_for_one_job_and_each_use_is_told(
    ab: tuple[Instance, Instance],
) -> None:
    a, b = ab
    erin, bob = uri(a, "erin"), uri(b, "bob")
    [grant] = grants_for(stored(b), erin, bob)

    # A grant of erin's for a local account of a: no account of b's.
    [local] = [g["uri"] for g in stored(a)["grants"] if g["grantee"] == uri(a, "carol")]
    # The worker's check before rendering: consent, the stills from a, gone after the job;
    # to publish, the same (erin's policy grants scope publish); a's stills of the grant
    # for carol are not b's (403), those of bob's grant are (200).
    render, publish, other, mine = act(
        b,
        *("render", "bob", erin, "::"),
        *("render", "bob", erin, "publish", "::"),
        *("fetch", local, "::"),
        *("fetch", grant["uri"]),
    )
    assert render["allowed"], render
    assert (render["fetched"], render["left_after_job"]) == (2, False)
    assert render["refs"] == [grant["uri"]]
    b_state = stored(b)
    assert any(c["stage"] == "fetch" and c["allowed"] for c in b_state["checks"])
    a_state = wait(
        a,
        lambda s: any(u["kind"] == "draft" and u["remote"] for u in s["uses"]),
        "the draft's LikenessUse at a",
    )
    [use] = [u for u in a_state["uses"] if u["remote"]]
    assert (use["owner"], use["user"]) == (erin, bob)
    assert use["uri"].startswith(f"{b.base}/likeness/uses/")
    assert {"to": erin, "type": "fedisora.likeness_use"} in a_state["notifications"]
    fetches = [c for c in a_state["checks"] if c["stage"] == "fetch"]
    assert all(c["allowed"] for c in fetches if c["requester"] == bob)
    # (A refused signature may be sent again in the other scheme: one row per request.)
    wrong = [c for c in fetches if c["requester"] == uri(a, "carol")]
    assert wrong and all(
        not c["allowed"] and "not for an account of the signing instance" in c["reason"]
        for c in wrong
    )

    assert publish["allowed"], publish
    assert other["status"] == 403 and "error" in other["body"]
    assert mine["status"] == 200 and len(mine["body"]["orderedItems"]) == 2

    # Never served unsigned (401).
    unsigned = httpx.get(f"{grant['uri']}/references", timeout=10)
    assert unsigned.status_code == 401 and "error" in unsigned.json()
    one = httpx.get(f"{grant['uri']}/references/0", timeout=10)
    assert one.status_code == 401

    # Revoked at a: the stills are gone (410), and b's worker refuses the job (a refusal
    # the owner is told of, when it came from the fetch).
    act(a, "revoke", "erin", grant["uri"])
    gone, refused = act(b, *("fetch", grant["uri"], "::"), *("render", "bob", erin))
    assert gone["status"] == 410 and "error" in gone["body"]
    # Refused by the stills' 410, or before any fetch once the revocation itself (delivered
    # from a) has arrived.
    assert not refused["allowed"]
    assert "410" in refused["reason"] or "revoked" in refused["reason"], refused
    assert any(
        c["stage"] == "fetch" and not c["allowed"] and "revoked" in c["reason"]
        for c in stored(a)["checks"]
    )
    assert refused["fetched"] == 0
    wait(
        a,
        lambda s: any(u["kind"] == "refused" and u["remote"] for u in s["uses"]),
        "the refusal's LikenessUse at a",
    )


def test_forged_use_notices_are_ignored(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    erin, admin, bob = uri(a, "erin"), uri(a, "admin"), uri(b, "bob")
    b_state = stored(b)
    [admins_grant] = [g["uri"] for g in grants_for(b_state, admin, bob)]
    a_state = stored(a)
    before = len([u for u in a_state["uses"] if u["remote"]])
    received = len([i for i in a_state["inbox"] if i["type"] == "LikenessUse"])
    # Naming admin's grant as if it were erin's; and a grant that does not exist.
    send: list[str] = []
    for n, (owner, grant) in enumerate(
        [(erin, admins_grant), (erin, f"{a.base}/likeness/grants/999999")]
    ):
        notice = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{b.base}/likeness/uses/forged-{n}",
            "type": "LikenessUse",
            "actor": bob,
            "object": owner,
            "instrument": grant,
            "summary": "published",
        }
        send += ["send", "bob", owner, json.dumps(notice), "::"]
    act(b, *send[:-1])
    state = wait(
        a,
        lambda s: (
            len([i for i in s["inbox"] if i["type"] == "LikenessUse"]) >= received + 2
            and all(i["state"] != "received" for i in s["inbox"])
        ),
        "the forged notices at a",
    )
    assert len([u for u in state["uses"] if u["remote"]]) == before
    ignored = [i for i in state["inbox"] if i["type"] == "LikenessUse" and i["state"] == "ignored"]
    assert len(ignored) == 2
    assert all("no grant of this owner" in i["error"] for i in ignored)


def offer(grant: dict[str, Any], target: str, n: int) -> dict[str, Any]:
    """An Offer of *grant* (the shape the owner's server sends ahead of any request)."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{grant['attributedTo']}#forged-offer-{n}",
        "type": "Offer",
        "actor": grant["attributedTo"],
        "object": grant,
        "target": target,
        "to": [target],
    }


def test_a_grant_pushed_ahead_of_a_request_serves_one_use(ab: tuple[Instance, Instance]) -> None:
    """fran (a) approves every use of her likeness. Through the client API she grants dave
    (b) ahead of any request: a signs the grant (``maxUses: 1``) and sends it to b in an
    ``Offer``; b verifies and stores it as an answered request's grant. dave renders with it
    without asking: one job; a second job is refused at request time and by the worker, and
    fran hears of the refusal. dave's first clip with it is shown at a; a second clip
    presenting the same consent is refused there, the reason kept, and fran is told. Forged
    and misaddressed Offers are refused at b."""
    a, b = ab
    fran, dave = uri(a, "fran"), uri(b, "dave")
    act(b, "user", "dave")
    act(a, "owner", "fran", "approved", "-", "approval")
    pushed = act(a, "api-grant", "fran", f"dave@{b.domain}")
    assert pushed["status"] == 200, pushed
    state = wait(b, lambda s: bool(grants_for(s, fran, dave)), "the pushed grant at b")
    [held] = grants_for(state, fran, dave)
    assert held["remote"] and held["signed"] and held["single_use"] and held["max_uses"] == 1
    assert not [r for r in state["requests"] if r["requester"] == dave]  # never asked
    assert any(
        c["stage"] == "grant" and c["allowed"] and c["requester"] == dave for c in state["checks"]
    )
    [given] = grants_for(stored(a), fran, dave)
    assert (given["uri"], given["remote"], given["max_uses"]) == (held["uri"], False, 1)

    # One job: allowed at request time and by the worker (stills fetched from a).
    first = act(b, "render-request", "dave", fran)
    assert first["allowed"], first
    rendered = act(b, "render-job", "dave", fran, str(first["job"]))
    assert rendered["allowed"], rendered
    # A second job: refused at request time and by the worker (the grant serves job 1).
    second, worker = act(b, *("render-request", "dave", fran, "::"), *("render", "dave", fran))
    assert not second["allowed"] and "another use" in second["reason"], second
    assert second["job"] is None
    assert not worker["allowed"] and "another use" in worker["reason"], worker
    [bound] = grants_for(stored(b), fran, dave)
    assert bound["job_id"] == first["job"]
    wait(
        a,
        lambda s: any(
            u["owner"] == fran and u["kind"] == "refused" and u["remote"] for u in s["uses"]
        ),
        "the refusal told to fran at a",
    )

    # The first clip with it is shown at a; a second clip presenting it is refused there.
    one = act(b, "post-cameo", "dave", fran, "first")["uri"]
    wait(a, lambda s: any(c["uri"] == one for c in s["clips"]), "the first clip at a")
    two = act(b, "post-cameo", "dave", fran, "second")["uri"]
    found = wait(
        a,
        lambda s: any(c["clip_uri"] == two and c["state"] == "checked" for c in s["cameo_checks"]),
        "the second clip's check at a",
    )
    [verdict] = [c for c in found["cameo_checks"] if c["clip_uri"] == two]
    assert verdict["outcome"] == "refused" and "for one use" in verdict["reason"], verdict
    assert one in verdict["reason"]
    assert not any(c["uri"] == two for c in found["clips"])
    [told] = [u for u in found["uses"] if u["clip_uri"] == two]
    assert told["kind"] == "refused" and "for one use" in told["reason"]
    assert told["owner"] == fran and told["user"] == dave
    assert found["notifications"].count({"to": fran, "type": "fedisora.likeness_use"}) >= 2

    # Forged pushes: a grant signed by another key; one for an account b does not have;
    # an Offer whose target is not the grant's grantee; fran offering erin's grant.
    wrongkey, elsewhere = act(
        a, *("forge", "fran", dave, "wrongkey", "::"), *("forge", "fran", dave, "other")
    )
    erins = act(a, "forge", "erin", dave, "expired")
    bad = [
        offer(wrongkey, dave, 1),
        offer(elsewhere, elsewhere["interactingObject"], 2),
        offer(wrongkey, uri(b, "bob"), 3),
        {**offer(erins, dave, 4), "actor": fran},
    ]
    before = len([i for i in stored(b)["inbox"] if i["type"] == "Offer"])
    send: list[str] = []
    for activity in bad:
        send += ["send", "fran", dave, json.dumps(activity), "::"]
    act(a, *send[:-1])
    state = wait(
        b,
        lambda s: (
            len([i for i in s["inbox"] if i["type"] == "Offer" and i["state"] != "received"])
            >= before + len(bad)
        ),
        "the forged Offers at b",
    )
    refused = [i for i in state["inbox"] if i["type"] == "Offer" and i["state"] == "ignored"]
    reasons = " | ".join(i["error"] for i in refused)
    assert len(refused) == len(bad), reasons
    assert "bad proof" in reasons
    assert "not an account of this server" in reasons
    assert f"the Offer is for {uri(b, 'bob')}" in reasons
    assert f"{uri(a, 'erin')}#ed25519-key is not in the owner's actor document ({fran})" in reasons
    assert [g["uri"] for g in grants_for(state, fran, dave)] == [held["uri"]]
