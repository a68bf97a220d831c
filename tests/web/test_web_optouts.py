"""The opt-out registry end to end on the in-process app: the /optout form and
``POST /api/fedisora/v1/optouts`` (bad input refused with a message, rate-limited), review
at /admin/optouts (CSRF-checked, audited), an approval refusing prompts that name the rule,
the signed published list, and subscriptions to a peer's list (a mock transport serving a
signed list and its issuer's actor) in review and auto modes."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from chores import Clock, engine_for, run_chore
from cryptography.hazmat.primitives.asymmetric import ed25519
from factories import local_account
from optout_peer import ISSUER, LIST_URL, ListPeer, serving
from webhelpers import browser, form_csrf, logged_in

from activitypub.keys import public_key_from_multibase
from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.errors import Invalid
from fedisora.federation.context import get_federation
from fedisora.models import (
    Account,
    AuditEntry,
    OptOut,
    OptOutMode,
    OptOutState,
    OptOutSubscription,
    PolicyTerm,
)
from fedisora.policy import optout_list as ol
from fedisora.services import optouts, prompt_policy

API = "/api/fedisora/v1/optouts"


def _alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</(?:p|div)>', page, re.S)
    assert found is not None, page[:3000]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def _refusal(prompt: str) -> str:
    try:
        await prompt_policy.check_render(prompt=prompt)
    except Invalid as exc:
        return exc.message
    return ""


GOOD = {
    "who": "Jane Doe",
    "kind": "public_figure",
    "terms": "Jane Doe\nJD Star",
    "evidence": "https://jane.example/press (her agent's page)",
    "contact": "agent@jane.example",
}


async def test_requests_review_policy_and_the_signed_list(web: httpx.ASGITransport) -> None:
    boss = await local_account("boss", admin=True)
    async with browser(web) as visitor:
        page = await visitor.get("/optout")
        assert page.status_code == 200 and 'action="/optout"' in page.text
        csrf = form_csrf(page.text)
        r = await visitor.post("/optout", data={**GOOD, "contact": "", "csrf": csrf})
        assert r.status_code == 422
        assert _alert(r.text).startswith("A contact is required: an e-mail address or a URL")
        assert 'value="Jane Doe"' in r.text and "JD Star</textarea>" in r.text  # kept
        r = await visitor.post("/optout", data={**GOOD, "who": "J" * 201, "csrf": csrf})
        assert r.status_code == 422 and "at most 200" in _alert(r.text)
        r = await visitor.post("/optout", data={**GOOD, "contact": "call me", "csrf": csrf})
        assert r.status_code == 422 and "e-mail address or an http(s) URL" in _alert(r.text)
        r = await visitor.post("/optout", data={**GOOD, "csrf": "forged"})
        assert r.status_code == 403
        assert await OptOut.all().count() == 0
        r = await visitor.post("/optout", data={**GOOD, "csrf": csrf})
        assert r.status_code == 202 and "waits for review" in r.text

        # The API: JSON or a form, 422 {"error"} on bad input, 202 with the id and state.
        for body, message in [
            ({**GOOD, "contact": ""}, "a contact is required"),
            ({**GOOD, "kind": "villain"}, "kind must be one of"),
            ({**GOOD, "evidence": "e" * 5001}, "the evidence is 5001 characters long"),
            ({**GOOD, "terms": [f"Term q{c}" for c in "abcdefghjkmnoprstuvwx"]}, "at most 20"),
            ({**GOOD, "terms": ["Al"]}, "at least 3 letters"),
            ({**GOOD, "who": "W" * 500}, "who is longer than 400"),
            ({**GOOD, "terms": "x" * 201}, "at most 200"),
        ]:
            r = await visitor.post(API, json=body)
            assert r.status_code == 422, body
            assert message in r.json()["error"], r.json()
        r = await visitor.post(
            API,
            json={"who": "Comet Studios", "kind": "protected_work", "terms": ["Captain Comet"],
                  "contact": "https://comet.example/legal"},
        )  # fmt: skip
        assert r.status_code == 202 and r.json()["state"] == "pending"
        comet = await OptOut.get(pk=int(r.json()["id"]))
        assert comet.terms == ["Captain Comet"] and comet.source == "local"
        r = await visitor.post(API, data={"who": "Bo Rider", "contact": "bo@rider.example",
                                          "kind": "public_figure"})  # fmt: skip
        assert r.status_code == 202
        bo = await OptOut.get(pk=int(r.json()["id"]))
        assert bo.terms == ["Bo Rider"]  # the name, when no term is given
        assert (await visitor.get("/admin/optouts")).status_code == 401

    jane = await OptOut.get(who="Jane Doe")
    assert jane.terms == ["Jane Doe", "JD Star"] and jane.state == OptOutState.PENDING
    assert await _refusal("JD Star on a beach") == ""  # pending: not in the policy yet

    await local_account("bob")
    async with logged_in(web, "bob") as bob:
        assert (await bob.get("/admin/optouts")).status_code == 403

    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/optouts")
        assert page.status_code == 200
        assert '<a href="/admin/optouts">Opt-outs</a>' in page.text
        assert "Waiting for review (3)" in page.text and "agent@jane.example" in page.text
        csrf = form_csrf(page.text)
        r = await admin.post(f"/admin/optouts/{jane.pk}/approve", data={"csrf": "forged"})
        assert r.status_code == 403
        r = await admin.post(f"/admin/optouts/{bo.pk}/reject", data={"csrf": csrf, "reason": ""})
        assert r.status_code == 422 and "Give a reason" in _alert(r.text)
        r = await admin.post(
            f"/admin/optouts/{bo.pk}/reject", data={"csrf": csrf, "reason": "not a rights holder"}
        )
        assert r.status_code == 303
        r = await admin.post(f"/admin/optouts/{bo.pk}/approve", data={"csrf": csrf})
        assert r.status_code == 422 and "is rejected, not pending" in _alert(r.text)
        for row in (jane, comet):
            r = await admin.post(f"/admin/optouts/{row.pk}/approve", data={"csrf": csrf})
            assert r.status_code == 303
        r = await admin.post("/admin/optouts/999999/approve", data={"csrf": csrf})
        assert r.status_code == 404

        # Approved: the one matcher refuses the terms and names the rule.
        assert await _refusal("T.a y-lor and JD  St4r dancing") == (
            "This prompt names a protected public figure (rule: opted out by Jane Doe: “JD Star”)"
        )
        assert "opted out by Comet Studios: “Captain Comet”" in await _refusal(
            "captain comet flies"
        )
        assert await _refusal("a comet in the sky") == ""
        policy_page = (await admin.get("/admin/policy")).text
        assert '<strong>JD Star</strong> <span class="badge">optout</span>' in policy_page
        star = await PolicyTerm.get(term="JD Star")
        assert star.source == "optout" and star.source_ref == f"optout:{jane.pk}"
        assert f"/admin/policy/{star.pk}/remove" not in policy_page  # withdrawn here only
        r = await admin.post(f"/admin/policy/{star.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 422 and await PolicyTerm.filter(pk=star.pk).exists()

        # The published list: public fields only, signed by the instance actor.
        published = (await admin.get(f"{API}/list")).json()
        actor = await Account.get(uri="https://fedisora.test/actor")
        key = public_key_from_multibase(actor.ed25519_public_multibase or "")
        assert isinstance(key, ed25519.Ed25519PublicKey)
        listed = ol.verify_list(published, key, issuer=actor.uri, now=datetime.now(UTC))
        assert actor.uri == "https://fedisora.test/actor" and listed.version == 2
        assert [(e.who, e.kind, e.terms) for e in listed.entries] == [
            ("Jane Doe", "public_figure", ("Jane Doe", "JD Star")),
            ("Comet Studios", "protected_work", ("Captain Comet",)),
        ]
        assert "agent@" not in str(published) and "press" not in str(published)
        tampered = copy.deepcopy(published)
        tampered["entries"].pop()
        with pytest.raises(ol.BadSignature):
            ol.verify_list(tampered, key, issuer=actor.uri, now=datetime.now(UTC))

        r = await admin.post(
            f"/admin/optouts/{jane.pk}/remove", data={"csrf": csrf, "reason": "x" * 1001}
        )
        assert r.status_code == 422 and "at most 1000" in _alert(r.text)
        r = await admin.post(
            f"/admin/optouts/{jane.pk}/remove", data={"csrf": csrf, "reason": "asked to withdraw"}
        )
        assert r.status_code == 303
        assert await _refusal("JD Star on a beach") == ""
        republished = ol.parse_list((await admin.get(f"{API}/list")).json())
        assert republished.version == 3 and [e.who for e in republished.entries] == [
            "Comet Studios"
        ]
        assert (await OptOut.get(pk=jane.pk)).state == OptOutState.REJECTED

    entries = await AuditEntry.filter(action__startswith="optout.").order_by("id")
    assert [(e.actor_id, e.action, e.target_label, e.detail) for e in entries] == [
        (boss.pk, "optout.reject", "Bo Rider", "not a rights holder"),
        (boss.pk, "optout.approve", "Jane Doe", "Jane Doe; JD Star"),
        (boss.pk, "optout.approve", "Comet Studios", "Captain Comet"),
        (boss.pk, "optout.remove", "Jane Doe", "asked to withdraw"),
    ]


async def test_requests_are_rate_limited_per_address(db: str, tmp_path: Path) -> None:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
            "FEDISORA_RATE_LIMITS": "optout=2/1h",
        }
    )
    app = httpx.ASGITransport(app=create_app(settings, run_work=False, manage_db=False))
    async with browser(app) as visitor:
        csrf = form_csrf((await visitor.get("/optout")).text)
        assert (await visitor.post(API, json=GOOD)).status_code == 202
        assert (await visitor.post("/optout", data={**GOOD, "csrf": csrf})).status_code == 202
        r = await visitor.post(API, json=GOOD)
        assert r.status_code == 429 and "Retry-After" in r.headers
        r = await visitor.post("/optout", data={**GOOD, "csrf": csrf})
        assert r.status_code == 429 and "Too many opt-out requests" in _alert(r.text)
    assert await OptOut.all().count() == 2


# --------------------------------------------------------------------------- subscriptions


@pytest.fixture
async def peer(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ListPeer]:
    async with serving(settings, monkeypatch) as scripted:
        yield scripted


def _entry(n: int, who: str, *terms: str, kind: str = "public_figure") -> ol.ListEntry:
    return ol.ListEntry(f"{LIST_URL}#{n}", who, kind, terms)


ANN = _entry(1, "Ann Star", "Ann Star")
OWL = _entry(2, "Owl Works", "Professor Owl", kind="protected_work")


async def test_subscriptions_in_review_and_auto_modes(
    web: httpx.ASGITransport, settings: Settings, peer: ListPeer
) -> None:
    boss = await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        csrf = form_csrf((await admin.get("/admin/optouts")).text)
        r = await admin.post(
            "/admin/optouts/lists",
            data={"csrf": csrf, "url": "http://x.example/l", "mode": "review"},
        )
        assert r.status_code == 422 and "must be an https URL" in _alert(r.text)
        r = await admin.post(
            "/admin/optouts/lists", data={"csrf": csrf, "url": LIST_URL, "mode": "x"}
        )
        assert r.status_code == 422 and "review or auto" in _alert(r.text)
        r = await admin.post(
            "/admin/optouts/lists", data={"csrf": csrf, "url": LIST_URL, "mode": "review"}
        )
        assert r.status_code == 303
        sub = await OptOutSubscription.get(url=LIST_URL)

        # Review: version 2 waits, with its changes shown, until an admin applies it.
        peer.publish(2, ANN, OWL)
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/fetch", data={"csrf": csrf})
        assert r.status_code == 200 and "a new version waits for review" in r.text
        assert "Version 2 (issued 2026-12-01T00:00:00Z) waits for review" in r.text
        assert "Added: <strong>Ann Star</strong>" in r.text and "“Professor Owl”" in r.text
        assert await OptOut.all().count() == 0 and await _refusal("Ann Star sings") == ""
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/apply", data={"csrf": "forged"})
        assert r.status_code == 403
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/apply", data={"csrf": csrf})
        assert r.status_code == 303
        assert await _refusal("ann  STAR sings") == (
            "This prompt names a protected public figure (rule: opted out by Ann Star: “Ann Star”)"
        )
        rows = await OptOut.filter(source=LIST_URL).order_by("id")
        assert [(o.who, o.state, o.remote_id) for o in rows] == [
            ("Ann Star", OptOutState.APPROVED, ANN.id),
            ("Owl Works", OptOutState.APPROVED, OWL.id),
        ]
        # Subscribed entries are not republished in this instance's own list.
        assert ol.parse_list((await admin.get(f"{API}/list")).json()).entries == ()

        # An older version is ignored; a newer one's removal waits, and can be discarded.
        peer.publish(1, ANN)
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/fetch", data={"csrf": csrf})
        assert "no newer version" in r.text
        peer.publish(3, ANN)
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/fetch", data={"csrf": csrf})
        assert "Removed: <strong>Owl Works</strong>" in r.text
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/discard", data={"csrf": csrf})
        assert r.status_code == 303
        sub = await OptOutSubscription.get(pk=sub.pk)
        assert sub.applied_version == 3 and sub.pending is None
        assert await OptOut.filter(source=LIST_URL).count() == 2
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/apply", data={"csrf": csrf})
        assert r.status_code == 422 and "Nothing is waiting" in _alert(r.text)

        # A bad signature (a tampered list) and a malformed list: recorded, nothing applied.
        peer.publish(4, ANN)
        peer.document["entries"] = []
        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/fetch", data={"csrf": csrf})
        assert "The fetch failed" in r.text
        assert "Last error: BadSignature: bad proof: the signature does not verify" in r.text
        peer.document = {"type": "OptOutList", "version": "5"}
        await admin.post(f"/admin/optouts/lists/{sub.pk}/fetch", data={"csrf": csrf})
        sub = await OptOutSubscription.get(pk=sub.pk)
        assert sub.last_error == "MalformedList: version must be a whole number"
        assert sub.applied_version == 3 and sub.pending is None
        assert await OptOut.filter(source=LIST_URL).count() == 2

        r = await admin.post(f"/admin/optouts/lists/{sub.pk}/unsubscribe", data={"csrf": csrf})
        assert r.status_code == 303
        assert await OptOut.all().count() == 0
        assert await PolicyTerm.all().count() == 0 and await _refusal("Ann Star") == ""

        # Auto: the chore applies each newer version as fetched, removals too.
        r = await admin.post(
            "/admin/optouts/lists", data={"csrf": csrf, "url": LIST_URL, "mode": "review"}
        )
        assert r.status_code == 303
        auto = await OptOutSubscription.get(url=LIST_URL)
        r = await admin.post(
            f"/admin/optouts/lists/{auto.pk}/mode", data={"csrf": csrf, "mode": "sometimes"}
        )
        assert r.status_code == 422 and "review or auto" in _alert(r.text)
        r = await admin.post(
            f"/admin/optouts/lists/{auto.pk}/mode", data={"csrf": csrf, "mode": "auto"}
        )
        assert r.status_code == 303
        assert (await OptOutSubscription.get(pk=auto.pk)).mode == OptOutMode.AUTO
    clock = Clock()
    engine = engine_for(settings, clock)
    peer.publish(6, ANN, OWL)
    chore = await run_chore(engine, "optout_lists")
    assert chore.progress["last"]["counts"] == {"lists_applied": 1}
    assert "opted out by Owl Works" in await _refusal("Professor Owl teaches")
    peer.publish(7, ANN)
    chore = await run_chore(engine, "optout_lists")  # fetched a moment ago: not again yet
    assert chore.progress["last"]["counts"] == {"lists_recent": 1}
    clock.passed += timedelta(hours=1)
    await run_chore(engine, "optout_lists")
    assert await _refusal("Professor Owl teaches") == ""
    assert [o.who for o in await OptOut.filter(source=LIST_URL)] == ["Ann Star"]
    clock.passed += timedelta(hours=1)
    chore = await run_chore(engine, "optout_lists")  # the same version again: nothing to do
    assert chore.progress["last"]["counts"] == {"lists_unchanged": 1}
    assert (await OptOutSubscription.get(pk=auto.pk)).applied_version == 7

    entries = await AuditEntry.filter(action__startswith="optout.").order_by("id")
    assert [(e.actor_id, e.action, e.detail) for e in entries] == [
        (boss.pk, "optout.subscribe", "review"),
        (boss.pk, "optout.fetch", "pending"),
        (boss.pk, "optout.apply", "version 2: +2 -0 (+Ann Star, +Owl Works)"),
        (boss.pk, "optout.fetch", "unchanged"),
        (boss.pk, "optout.fetch", "pending"),
        (boss.pk, "optout.discard", "version 3"),
        (
            boss.pk,
            "optout.fetch",
            "error: BadSignature: bad proof: the signature does not verify (tampered, or "
            "another key)",
        ),
        (boss.pk, "optout.fetch", "error: MalformedList: version must be a whole number"),
        (boss.pk, "optout.unsubscribe", ""),
        (boss.pk, "optout.subscribe", "review"),
        (boss.pk, "optout.mode", "auto"),
        (None, "optout.sync", "version 6: +2 -0 (+Ann Star, +Owl Works)"),
        (None, "optout.sync", "version 7: +0 -1 (-Owl Works)"),
    ]
    assert {e.actor_label for e in entries if e.actor_id is None} == {optouts.SYNC_ACTOR}
    assert set(peer.asked) == {LIST_URL, ISSUER}


# ------------------------------------------------- fetches at once: an admin's and the chore's


async def _sync_details() -> list[tuple[str, str]]:
    entries = await AuditEntry.filter(action__in=("optout.sync", "optout.fetch")).order_by("id")
    return [(e.action, e.detail) for e in entries]


async def test_an_admins_fetch_while_the_chore_runs(settings: Settings, peer: ListPeer) -> None:
    """The two-instance failure: an admin switched a list to auto and pressed "Fetch now"
    while the chore (due at once after the first subscription) ran too. The chore fetched
    and applied the new version while the admin's fetch was at the peer, which then found it
    "not newer" and said so. A list an admin fetches is not fetched again by the chore for
    :data:`~fedisora.services.optouts.REFETCH_AFTER`, and a fetch reports a version newer
    than the one applied when it began as applied, whoever applied it."""
    boss = await local_account("boss", admin=True)
    other = await local_account("other", admin=True)
    clock = Clock()
    engine = engine_for(settings, clock)
    fed = get_federation(settings)
    sub = await optouts.subscribe(boss, LIST_URL, "auto")
    peer.publish(1, ANN)
    assert (await optouts.fetch_now(fed, boss, sub.pk)).result == "applied"

    # The chore's run while the admin's fetch of version 2 is at the peer: it leaves the
    # list to that fetch, which applies it.
    peer.publish(2, ANN, OWL)
    gate = peer.hold()
    fetching = asyncio.create_task(optouts.fetch_now(fed, boss, sub.pk))
    await peer.arrived.wait()
    chore = await run_chore(engine, "optout_lists")
    assert chore.progress["last"]["counts"] == {"lists_recent": 1}
    gate.set()
    assert (await fetching).result == "applied"
    assert "opted out by Owl Works" in await _refusal("Professor Owl teaches")

    # Two admins' fetches at once (the page's and the command line's): one applies version
    # 3, and both report it applied; a fetch after them finds nothing newer.
    peer.publish(3, ANN)
    gate = peer.hold()
    fetching = asyncio.create_task(optouts.fetch_now(fed, boss, sub.pk))
    await peer.arrived.wait()
    assert (await optouts.fetch_now(fed, other, sub.pk)).result == "applied"
    gate.set()
    assert (await fetching).result == "applied"
    assert (await optouts.fetch_now(fed, boss, sub.pk)).result == "unchanged"
    assert [o.who for o in await OptOut.filter(source=LIST_URL)] == ["Ann Star"]
    assert await PolicyTerm.filter(source="optout").count() == 1

    # An hour on, the chore fetches the list again.
    peer.publish(4, ANN, OWL)
    clock.passed += timedelta(hours=1)
    chore = await run_chore(engine, "optout_lists")
    assert chore.progress["last"]["counts"] == {"lists_applied": 1}
    assert await _sync_details() == [
        ("optout.sync", "version 1: +1 -0 (+Ann Star)"),
        ("optout.fetch", "applied"),
        ("optout.sync", "version 2: +1 -0 (+Owl Works)"),
        ("optout.fetch", "applied"),
        ("optout.sync", "version 3: +0 -1 (-Owl Works)"),
        ("optout.fetch", "applied"),  # the other admin's, which applied it
        ("optout.fetch", "applied"),  # the first one's, at the peer meanwhile
        ("optout.fetch", "unchanged"),
        ("optout.sync", "version 4: +1 -0 (+Owl Works)"),
    ]


async def test_review_a_version_the_chore_fetched_first(settings: Settings, peer: ListPeer) -> None:
    """In review mode, the chore's first fetch right after the subscription may come before
    the admin's "Fetch now": the admin's fetch still says the version waits for review (it
    does), not "no newer version". A fetch in flight when the mode changes is decided by
    the mode when its answer comes, and never leaves a version waiting that is applied."""
    boss = await local_account("boss", admin=True)
    clock = Clock()
    engine = engine_for(settings, clock)
    fed = get_federation(settings)
    sub = await optouts.subscribe(boss, LIST_URL, "review")
    peer.publish(1, ANN)
    chore = await run_chore(engine, "optout_lists")
    assert chore.progress["last"]["counts"] == {"lists_pending": 1}
    assert (await optouts.fetch_now(fed, boss, sub.pk)).result == "pending"
    await optouts.apply_pending(boss, sub.pk)
    assert (await optouts.fetch_now(fed, boss, sub.pk)).result == "unchanged"

    peer.publish(2, ANN, OWL)
    gate = peer.hold()
    fetching = asyncio.create_task(optouts.fetch_now(fed, boss, sub.pk))
    await peer.arrived.wait()
    await optouts.set_mode(boss, sub.pk, "auto")
    gate.set()
    assert (await fetching).result == "applied"
    row = await OptOutSubscription.get(pk=sub.pk)
    assert row.applied_version == 2 and row.pending is None
    assert "opted out by Owl Works" in await _refusal("Professor Owl teaches")
