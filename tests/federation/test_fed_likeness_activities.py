"""Likeness consent across instances, in one process: the activities (``CameoRequest``, the
owner's answers, ``LikenessUse``) built and read, the owner's instance answering a remote
request with its own policy, the grantee's instance verifying a grant from a scripted peer,
and use notices received. The two-instance flow is test_fed_likeness_grants.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from factories import local_account
from fedhelpers import REMOTE, Peer, RemoteActor, make_remote
from likenesses import verified_likeness

from activitypub import consent, integrity, keys
from activitypub.errors import ConsentError
from fedisora.config import Settings
from fedisora.federation import likeness as fl
from fedisora.federation.context import Federation
from fedisora.federation.ingest import Ignored
from fedisora.federation.render import actor_document
from fedisora.models import (
    Account,
    ConsentCheck,
    LikenessGrant,
    LikenessRequest,
    LikenessUse,
    Notification,
    NotificationType,
    OutboxEvent,
    utcnow,
)
from fedisora.services import likeness as svc

OWNER = f"https://{REMOTE}/users/rita"
ME = "https://fedisora.test/users/bob"

# --- the activities, pure -------------------------------------------------------------------


def test_a_cameo_request_reads_back() -> None:
    doc = fl.cameo_request(
        f"{ME.rsplit('/users', 1)[0]}/likeness/requests/1/ab", ME, OWNER, accept_restrictions=True
    )
    assert doc["type"] == "CameoRequest" and doc["to"] == [OWNER]
    parsed = fl.parse_cameo_request(doc)
    assert (parsed.actor, parsed.owner, parsed.accept_restrictions) == (ME, OWNER, True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "https://elsewhere.example/r/1"}, "not on its actor's server"),
        ({"object": None}, "names the owner"),
        ({"acceptRestrictions": "yes"}, "true or false"),
        ({"type": "Follow"}, "not a CameoRequest"),
        ({"actor": None}, "needs an id and an actor"),
    ],
)
def test_a_malformed_cameo_request_is_refused(change: dict[str, Any], reason: str) -> None:
    doc = fl.cameo_request(
        "https://fedisora.test/likeness/requests/1/x", ME, OWNER, accept_restrictions=False
    )
    doc.update(change)
    with pytest.raises(ConsentError, match=reason):
        fl.parse_cameo_request(doc)


def test_answers_carry_the_grant_or_the_reason() -> None:
    request = {
        "id": "https://fedisora.test/likeness/requests/1/x",
        "type": "CameoRequest",
        "actor": ME,
        "object": OWNER,
    }
    grant = {"id": f"https://{REMOTE}/likeness/grants/1", "type": "LikenessAuthorization"}
    accept = fl.answer_activity("Accept", f"{OWNER}#a/1", OWNER, request, grant=grant)
    assert (accept["type"], accept["result"], accept["object"], accept["to"]) == (
        "Accept",
        grant,
        request,
        [ME],
    )
    reject = fl.answer_activity("Reject", f"{OWNER}#a/2", OWNER, request, summary="x" * 900)
    assert "result" not in reject and len(reject["summary"]) == fl.MAX_SUMMARY
    with pytest.raises(ValueError):
        fl.answer_activity("Undo", f"{OWNER}#a/3", OWNER, request)


def test_a_use_notice_reads_back() -> None:
    doc = fl.likeness_use(
        "https://fedisora.test/likeness/uses/7",
        ME,
        OWNER,
        grant=f"https://{REMOTE}/likeness/grants/1",
        kind="published",
        clip="https://fedisora.test/users/bob/clips/9",
    )
    notice = fl.parse_likeness_use(doc)
    assert (notice.kind, notice.clip, notice.grant, notice.owner) == (
        "published",
        "https://fedisora.test/users/bob/clips/9",
        f"https://{REMOTE}/likeness/grants/1",
        OWNER,
    )
    refused = fl.parse_likeness_use(
        fl.likeness_use(
            "https://fedisora.test/likeness/uses/8",
            ME,
            OWNER,
            grant=notice.grant,
            kind="refused",
            reason="the consent was revoked",
        )
    )
    assert (refused.clip, refused.reason) == (None, "the consent was revoked")
    with pytest.raises(ValueError):
        fl.likeness_use(
            "https://fedisora.test/likeness/uses/9", ME, OWNER, grant=notice.grant, kind="borrowed"
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"summary": "borrowed"}, "summary must be one of"),
        ({"instrument": None}, "names the owner"),
        ({"result": f"https://{REMOTE}/clips/1"}, "not on its actor's server"),
        ({"content": 5}, "must be text"),
    ],
)
def test_a_malformed_use_notice_is_refused(change: dict[str, Any], reason: str) -> None:
    doc = fl.likeness_use(
        "https://fedisora.test/likeness/uses/7",
        ME,
        OWNER,
        grant=f"https://{REMOTE}/likeness/grants/1",
        kind="draft",
    )
    doc.update(change)
    with pytest.raises(ConsentError, match=reason):
        fl.parse_likeness_use(doc)


def test_the_stills_of_a_grant_are_under_it() -> None:
    grant = f"https://{REMOTE}/likeness/grants/4"
    assert fl.references_url(grant) == f"{grant}/references"
    assert fl.references_url(grant, 1) == f"{grant}/references/1"


# --- the owner's instance: a remote request, the local policy ------------------------------


async def _sent(kind: str) -> list[dict[str, Any]]:
    rows = await OutboxEvent.filter(kind=fl.EVENT).order_by("id")
    return [r.data["activity"] for r in rows if r.data["activity"]["type"] == kind]


def _request(actor: RemoteActor, owner: Account, n: int, accept: bool) -> dict[str, Any]:
    return fl.cameo_request(
        f"https://{REMOTE}/likeness/requests/{n}/x",
        actor.uri,
        owner.uri,
        accept_restrictions=accept,
    )


async def test_a_remote_request_is_answered_by_the_owners_policy(
    federation: Federation, settings: Settings
) -> None:
    owner = await local_account("erin")
    await verified_likeness(owner, settings, audience="everyone", restrictions="no politics")
    rita = await make_remote("rita")
    await fl.on_cameo_request(federation, rita.account, _request(rita, owner, 1, False))
    [reject] = await _sent("Reject")
    assert "no politics" in reject["summary"] and reject["to"] == [rita.uri]
    assert await LikenessRequest.all().count() == 0  # refused by the policy: nothing stored

    await fl.on_cameo_request(federation, rita.account, _request(rita, owner, 2, True))
    [accept] = await _sent("Accept")
    grant = accept["result"]
    [row] = await LikenessGrant.filter(owner_id=owner.pk, grantee_id=rita.account.pk)
    assert grant == row.document and accept["object"]["id"].endswith("/requests/2/x")
    # The grant verifies by the key the owner's actor document lists.
    key = integrity.assertion_method_key(
        actor_document(owner), grant["proof"]["verificationMethod"]
    )
    verified = consent.verify_grant(
        grant, key, owner=owner.uri, grantee=rita.uri, needs_publish=True, now=utcnow()
    )
    assert verified.restrictions_digest == consent.restrictions_digest("no politics")
    # A retried request is answered the same, not granted twice.
    await fl.on_cameo_request(federation, rita.account, _request(rita, owner, 2, True))
    assert len(await _sent("Accept")) == 2
    assert await LikenessGrant.filter(owner_id=owner.pk).count() == 1


async def test_a_remote_request_waits_for_the_owner(
    federation: Federation, settings: Settings
) -> None:
    owner = await local_account("olga")
    await verified_likeness(owner, settings, audience="approved")
    rita, ross = await make_remote("rita"), await make_remote("ross")
    await fl.on_cameo_request(federation, rita.account, _request(rita, owner, 1, False))
    await fl.on_cameo_request(federation, ross.account, _request(ross, owner, 2, False))
    assert await _sent("Accept") == [] and await _sent("Reject") == []
    notified = await Notification.filter(type=NotificationType.LIKENESS_REQUEST).count()
    assert notified == 2
    first, second = await LikenessRequest.filter(owner_id=owner.pk).order_by("id")
    await svc.approve_request(owner, first.pk)
    await svc.reject_request(owner, second.pk)
    [accept], [reject] = await _sent("Accept"), await _sent("Reject")
    assert accept["to"] == [rita.uri] and accept["result"]["interactingObject"] == rita.uri
    assert reject["to"] == [ross.uri] and reject["object"]["id"] == second.uri


async def test_a_request_needs_its_own_actor_and_a_local_owner(
    federation: Federation, settings: Settings
) -> None:
    owner = await local_account("erin")
    await verified_likeness(owner, settings, audience="everyone")
    rita, ross = await make_remote("rita"), await make_remote("ross")
    with pytest.raises(Ignored, match="its actor's"):
        await fl.on_cameo_request(federation, ross.account, _request(rita, owner, 1, False))
    other = fl.cameo_request(
        f"https://{REMOTE}/likeness/requests/3/x", rita.uri, OWNER, accept_restrictions=False
    )
    with pytest.raises(Ignored, match="not a local actor"):
        await fl.on_cameo_request(federation, rita.account, other)
    assert await OutboxEvent.filter(kind=fl.EVENT).count() == 0


# --- the grantee's instance: a grant from the owner's server --------------------------------


def _owner_doc(actor: RemoteActor, key: ed25519.Ed25519PrivateKey | None) -> dict[str, Any]:
    doc = actor.document()
    if key is not None:
        doc["assertionMethod"] = [
            {
                "id": f"{actor.uri}#ed25519-key",
                "type": "Multikey",
                "controller": actor.uri,
                "publicKeyMultibase": keys.public_key_to_multibase(key.public_key()),
            }
        ]
    return doc


def _grant(
    actor: RemoteActor,
    key: ed25519.Ed25519PrivateKey,
    grantee: str,
    n: int,
    scope: consent.Scope = "drafts",
    expires: timedelta | None = None,
) -> dict[str, Any]:
    now = utcnow().replace(microsecond=0)
    doc = consent.build_grant(
        grant_id=f"https://{REMOTE}/likeness/grants/{n}",
        owner=actor.uri,
        grantee=grantee,
        scope=scope,
        restrictions_digest=consent.restrictions_digest(""),
        published=now,
        expires=now + expires if expires is not None else None,
    )
    return consent.sign_grant(doc, key, key_id=f"{actor.uri}#ed25519-key", created=now)


async def test_a_grant_is_verified_by_the_owners_actor_then_used(
    federation: Federation, peer: Peer, settings: Settings
) -> None:
    bob = await local_account("bob")
    rita = await make_remote("rita")
    key = keys.generate_ed25519_key()
    peer.documents[rita.uri] = _owner_doc(rita, key)
    row = await fl.store_grant(federation, bob, rita.account, _grant(rita, key, bob.uri, 1))
    assert (row.remote, row.scope, row.grantee_id) == (True, "drafts", bob.pk)
    assert (await svc.check_consent(bob, rita.account, publish=False)).allowed
    publish = await svc.check_consent(bob, rita.account, publish=True)
    assert not publish.allowed and "drafts only" in publish.reason
    # Stored again (a retried Accept): the same row.
    again = await fl.store_grant(federation, bob, rita.account, _grant(rita, key, bob.uri, 1))
    assert again.pk == row.pk
    # Expired, or revoked: refused.
    later = utcnow() + timedelta(days=2)
    short = await fl.store_grant(
        federation, bob, rita.account, _grant(rita, key, bob.uri, 2, "publish", timedelta(days=1))
    )
    await LikenessGrant.filter(pk=row.pk).update(revoked_at=utcnow())
    assert (await svc.check_consent(bob, rita.account, publish=True)).grant.pk == short.pk  # type: ignore[union-attr]
    expired = await svc.check_consent(bob, rita.account, publish=True, now=later)
    assert not expired.allowed and "expired" in expired.reason
    await LikenessGrant.filter(pk=short.pk).update(revoked_at=utcnow())
    revoked = await svc.check_consent(bob, rita.account, publish=False)
    assert not revoked.allowed and "revoked" in revoked.reason


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no ed25519 key", "lists no Ed25519 assertionMethod"),
        ("another key", "bad proof"),
        ("another grantee", "not https://fedisora.test/users/bob"),
        ("expired", "expired"),
        ("key of another actor", "not in the owner's actor document"),
        ("not an object", "not a JSON object"),
    ],
)
async def test_a_bad_grant_is_refused_audited_and_not_stored(
    federation: Federation, peer: Peer, case: str, reason: str
) -> None:
    bob = await local_account("bob")
    rita = await make_remote("rita")
    key = keys.generate_ed25519_key()
    peer.documents[rita.uri] = _owner_doc(rita, None if case == "no ed25519 key" else key)
    signing = keys.generate_ed25519_key() if case == "another key" else key
    grantee = "https://fedisora.test/users/eve" if case == "another grantee" else bob.uri
    doc: Any = _grant(rita, signing, grantee, 1)
    if case == "expired":
        doc = _grant(rita, key, bob.uri, 1, expires=timedelta(seconds=1))
    if case == "key of another actor":
        doc["proof"]["verificationMethod"] = f"https://{REMOTE}/users/ross#ed25519-key"
    if case == "not an object":
        doc = ["a", "list"]
    now = utcnow() + timedelta(seconds=5) if case == "expired" else None
    with pytest.raises(ConsentError, match=reason):
        await fl.store_grant(federation, bob, rita.account, doc, now=now)
    assert await LikenessGrant.all().count() == 0
    [check] = await ConsentCheck.all()
    assert (check.stage, check.allowed, check.requester_id) == ("grant", False, bob.pk)
    assert reason in check.reason


async def test_an_answer_is_taken_from_the_owner_asked_only(
    federation: Federation, peer: Peer, settings: Settings
) -> None:
    bob = await local_account("bob")
    rita, ross = await make_remote("rita"), await make_remote("ross")
    key = keys.generate_ed25519_key()
    peer.documents[rita.uri] = _owner_doc(rita, key)
    sent = await svc.request_use(bob, rita.account, accept_restrictions=True)
    [request] = await _sent("CameoRequest")
    assert (request["id"], request["object"], request["acceptRestrictions"]) == (
        sent.uri,
        rita.uri,
        True,
    )
    ref = {"id": sent.uri, "type": "CameoRequest", "actor": bob.uri, "object": rita.uri}
    grant = _grant(rita, key, bob.uri, 1)
    forged = fl.answer_activity("Accept", f"{ross.uri}#a/1", ross.uri, ref, grant=grant)
    with pytest.raises(Ignored, match="answered by the owner it asked"):
        await fl.answered(federation, ross.account, forged)
    accept = fl.answer_activity("Accept", f"{rita.uri}#a/1", rita.uri, ref, grant=grant)
    assert await fl.answered(federation, rita.account, accept)
    row = await LikenessRequest.get(pk=sent.pk)
    assert row.state == "approved" and row.grant_id is not None
    with pytest.raises(Ignored, match="approved already"):
        await fl.answered(federation, rita.account, accept)
    # Not one of ours (a follow's Accept): left to the rest of ingest.
    follow = {
        "id": f"{rita.uri}#accepts/follows/1",
        "type": "Accept",
        "actor": rita.uri,
        "object": "https://fedisora.test/users/bob#follows/1",
    }
    assert not await fl.answered(federation, rita.account, follow)


# --- the owner's instance: use notices -------------------------------------------------------


async def test_a_use_notice_is_recorded_and_told_once(
    federation: Federation, settings: Settings
) -> None:
    owner = await local_account("erin")
    await verified_likeness(owner, settings, audience="everyone")
    rita, ross = await make_remote("rita"), await make_remote("ross")
    await fl.on_cameo_request(federation, rita.account, _request(rita, owner, 1, False))
    grant = await LikenessGrant.get(owner_id=owner.pk, grantee_id=rita.account.pk)
    notice = fl.likeness_use(
        f"https://{REMOTE}/likeness/uses/1",
        rita.uri,
        owner.uri,
        grant=grant.uri or "",
        kind="published",
        clip=f"https://{REMOTE}/users/rita/clips/5",
    )
    await fl.on_likeness_use(federation, rita.account, notice)
    [use] = await LikenessUse.filter(owner_id=owner.pk)
    assert (use.remote, use.kind, use.user_id, use.grant_id, use.clip_uri) == (
        True,
        "published",
        rita.account.pk,
        grant.pk,
        f"https://{REMOTE}/users/rita/clips/5",
    )
    assert (
        await Notification.filter(recipient_id=owner.pk, type=NotificationType.LIKENESS_USE).count()
        == 1
    )
    assert [u.pk for u in await svc.uses_of(owner)] == [use.pk]
    with pytest.raises(Ignored, match="recorded already"):
        await fl.on_likeness_use(federation, rita.account, notice)
    # ross names rita's grant: not his.
    theirs = fl.likeness_use(
        f"https://{REMOTE}/likeness/uses/2",
        ross.uri,
        owner.uri,
        grant=grant.uri or "",
        kind="draft",
    )
    with pytest.raises(Ignored, match="no grant of this owner"):
        await fl.on_likeness_use(federation, ross.account, theirs)
    with pytest.raises(Ignored, match="its actor's"):
        await fl.on_likeness_use(federation, ross.account, notice)
    assert await LikenessUse.all().count() == 1


async def test_a_local_use_of_a_remote_likeness_is_sent_to_its_owner(
    federation: Federation, peer: Peer, settings: Settings, tmp_path: Path
) -> None:
    bob = await local_account("bob")
    rita = await make_remote("rita")
    key = keys.generate_ed25519_key()
    peer.documents[rita.uri] = _owner_doc(rita, key)
    await fl.store_grant(federation, bob, rita.account, _grant(rita, key, bob.uri, 1))
    decision = await svc.check_consent(bob, rita.account, publish=False)
    use = await svc.record_use(decision, bob, "requested")
    [notice] = await _sent("LikenessUse")
    assert notice["id"] == (await LikenessUse.get(pk=use.pk)).uri
    assert (notice["summary"], notice["instrument"], notice["object"]) == (
        "requested",
        f"https://{REMOTE}/likeness/grants/1",
        rita.uri,
    )
    # Without a grant of theirs (a refusal before any consent), nothing is sent.
    refused = svc.Consent(False, "no consent", rita.account)
    await svc.record_use(refused, bob, "refused")
    assert len(await _sent("LikenessUse")) == 1
