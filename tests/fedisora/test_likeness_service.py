"""Likeness consent, the service layer: registration and its bad input, verification, the
audience rules, requests and grants, revocation, uses and the audit trail."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import local_account, remote_account
from likenesses import face_png
from PIL import Image

from fedisora.config import Settings, load_settings
from fedisora.errors import Conflict, Forbidden, Invalid, NotFound
from fedisora.models import (
    Account,
    AuditEntry,
    ConsentCheck,
    Follow,
    FollowState,
    Likeness,
    LikenessChallenge,
    LikenessGrant,
    LikenessRequest,
    Notification,
    NotificationType,
    utcnow,
)
from fedisora.services import likeness as svc


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": str(tmp_path / "data")}
    )


def png(width: int = 200, height: int = 120, color: tuple[int, int, int] = (40, 60, 90)) -> bytes:
    """A still with a (drawn) face the reference-still detector finds."""
    return face_png(width, height, color)


def all_files(paths: Any) -> bool:
    return all(Path(p).is_file() for p in paths)


def any_exists(paths: Any) -> bool:
    return any(Path(p).exists() for p in paths)


async def registered(account: Account, settings: Settings, n: int = 2) -> Likeness:
    challenge = await svc.new_challenge(account)
    return await svc.register(
        account,
        references=[png() for _ in range(n)],
        verification=png(300, 300),
        challenge=challenge.code,
        settings=settings,
    )


async def verified(account: Account, settings: Settings, **policy: Any) -> Likeness:
    await registered(account, settings)
    await svc.verify(account.username, method="admin")
    if policy:
        await svc.update_policy(account, **policy)
    return await Likeness.get(account_id=account.pk)


async def test_register_normalises_private_references(db: str, settings: Settings) -> None:
    alice = await local_account("alice")
    likeness = await registered(alice, settings, n=3)
    assert likeness.state == "pending" and len(likeness.reference_files) == 3
    paths = [Path(p) for p in svc.reference_paths(likeness, settings)]
    base = svc.private_dir(settings)
    for path in paths:
        assert base in path.parents and settings.media_root.resolve() not in path.parents
        with Image.open(path) as image:
            assert image.size == (svc.REFERENCE_SIDE, svc.REFERENCE_SIDE)
            assert image.mode == "RGB"
    assert likeness.verification_type == "image/png"
    assert (base / str(likeness.verification_file)).is_file()
    assert likeness.audience == "nobody" and not likeness.drafts_only
    assert not list(settings.media_root.rglob("*.png")) if settings.media_root.exists() else True


@pytest.mark.parametrize(
    ("refs", "verification", "match"),
    [
        ([], None, "1 to 5"),
        ([b"x"] * 6, None, "1 to 5"),
        ([b"not an image at all"], None, "not a readable image"),
        ([b""], None, "empty"),
        ([b"\0" * (svc.MAX_REFERENCE_BYTES + 1)], None, "at most 8 MB"),
        (["tiny"], None, "at least 64"),
        (["gif"], None, "GIF image"),
        (None, b"%PDF-1.4 not a still", "verification must be"),
        (None, b"", "verification sample is missing or empty"),
    ],
)
async def test_register_refuses_bad_files_and_stores_nothing(
    db: str, settings: Settings, refs: Any, verification: Any, match: str
) -> None:
    alice = await local_account("alice")
    challenge = await svc.new_challenge(alice)
    made = []
    for r in refs if refs is not None else [png()]:
        if r == "tiny":
            made.append(png(32, 32))
        elif r == "gif":
            buf = io.BytesIO()
            Image.new("RGB", (100, 100)).save(buf, format="GIF")
            made.append(buf.getvalue())
        else:
            made.append(r)
    with pytest.raises(svc.LikenessInputError, match=match):
        await svc.register(
            alice,
            references=made,
            verification=png() if verification is None else verification,
            challenge=challenge.code,
            settings=settings,
        )
    assert await Likeness.all().count() == 0
    row = await LikenessChallenge.get(pk=challenge.pk)
    assert row.consumed_at is None  # a refused request does not use the code up
    base = svc.private_dir(settings)
    assert not base.exists() or not any(p.is_file() for p in base.rglob("*"))


async def test_challenge_is_one_time_own_and_unexpired(db: str, settings: Settings) -> None:
    alice, mallory = await local_account("alice"), await local_account("mallory")
    challenge = await svc.new_challenge(alice)
    kwargs: dict[str, Any] = {"references": [png()], "verification": png(), "settings": settings}
    # Someone else's code cannot register anything, for them or for alice.
    with pytest.raises(svc.LikenessInputError, match="unknown code"):
        await svc.register(mallory, challenge=challenge.code, **kwargs)
    with pytest.raises(svc.LikenessInputError, match="required"):
        await svc.register(alice, challenge="", **kwargs)
    await svc.register(alice, challenge=challenge.code, **kwargs)
    with pytest.raises(svc.LikenessInputError, match="used already"):
        await svc.register(alice, challenge=challenge.code, **kwargs)
    late = await svc.new_challenge(alice, now=utcnow() - svc.CHALLENGE_TTL - timedelta(seconds=1))
    with pytest.raises(svc.LikenessInputError, match="expired"):
        await svc.register(alice, challenge=late.code, **kwargs)
    assert await Likeness.filter(account_id=mallory.pk).count() == 0
    remote = await remote_account("rita")
    with pytest.raises(Forbidden):
        await svc.new_challenge(remote)


async def test_verify_reject_and_reregister(db: str, settings: Settings) -> None:
    alice = await local_account("alice")
    admin = await local_account("root", admin=True)
    await registered(alice, settings)
    rejected = await svc.reject("alice", reason="the code is not readable", by=admin)
    assert rejected.state == "rejected" and rejected.reason == "the code is not readable"
    with pytest.raises(Invalid):
        await svc.reject("alice", reason=" ")
    with pytest.raises(NotFound):
        await svc.verify("nobody-here")
    await registered(alice, settings)  # a rejected likeness can be sent again
    done = await svc.verify("alice", by=admin, method="admin")
    assert done.state == "verified" and done.verified_by_id == admin.pk and done.verified_at
    with pytest.raises(Conflict):
        await registered(alice, settings)
    # Each decision is in the audit log, naming who took it (refusals are not); the command
    # line and the automatic check are actors too.
    bob = await local_account("bob")
    await registered(bob, settings)
    await svc.reject("bob", reason="blurred", method="admin (command line)")
    await registered(bob, settings)
    await svc.verify("bob", method="check command:/usr/local/bin/faces")
    logged = await AuditEntry.all().order_by("id")
    assert [(e.actor_label, e.action, e.target_label, e.detail) for e in logged] == [
        ("@root", "likeness.reject", "@alice", "the code is not readable"),
        ("@root", "likeness.verify", "@alice", ""),
        ("cli", "likeness.reject", "@bob", "blurred"),
        ("check command:/usr/local/bin/faces", "likeness.verify", "@bob", ""),
    ]


async def test_audience_rules(db: str, settings: Settings) -> None:
    owner = await local_account("owner")
    friend, stranger = await local_account("friend"), await local_account("stranger")
    await Follow.create(follower=owner, target=friend, state=FollowState.ACCEPTED, uri="f:1")
    await Follow.create(follower=friend, target=owner, state=FollowState.ACCEPTED, uri="f:2")
    await Follow.create(follower=stranger, target=owner, state=FollowState.ACCEPTED, uri="f:3")

    async def allowed(who: Account, publish: bool = False) -> bool:
        return (await svc.check_consent(who, owner, publish=publish)).allowed

    # Unverified: nobody, not even the owner.
    await registered(owner, settings)
    refused = await svc.check_consent(owner, owner, publish=False)
    assert not refused.allowed and "not verified" in refused.reason
    await svc.verify("owner")
    assert not await allowed(owner)  # default audience: nobody
    await svc.update_policy(owner, audience="me")
    assert await allowed(owner) and not await allowed(friend)
    await svc.update_policy(owner, audience="approved")
    assert await allowed(owner) and not await allowed(friend) and not await allowed(stranger)
    await svc.update_policy(owner, audience="mutuals")
    assert await allowed(friend) and not await allowed(stranger)
    await svc.update_policy(owner, audience="everyone")
    assert await allowed(stranger)
    # Narrowing the audience takes the policy's grants back at once.
    await svc.update_policy(owner, audience="mutuals")
    refused = await svc.check_consent(stranger, owner, publish=False)
    assert not refused.allowed and "changed who may use" in refused.reason
    with pytest.raises(Invalid):
        await svc.update_policy(owner, audience="friends")
    # Each check is audited, with who, whose, the result and why.
    checks = await ConsentCheck.filter(owner_id=owner.pk).order_by("id")
    assert len(checks) == 11
    assert [c.allowed for c in checks][:3] == [False, False, True]
    assert checks[-1].requester_id == stranger.pk and "changed" in checks[-1].reason
    assert await svc.consent_checks(friend) == []
    assert len(await svc.consent_checks(friend, admin=True)) == 11


async def test_requests_restrictions_and_grants(db: str, settings: Settings) -> None:
    owner, bob = await local_account("owner"), await local_account("bob")
    await verified(owner, settings, audience="approved", restrictions="never in ads")
    refused = await svc.check_consent(bob, owner, publish=False)
    assert not refused.allowed and "ask with a likeness request" in refused.reason
    with pytest.raises(Invalid, match="never in ads"):
        await svc.request_use(bob, owner)  # restrictions not accepted: nothing stored
    assert await LikenessRequest.all().count() == 0
    request = await svc.request_use(bob, owner, accept_restrictions=True)
    assert request.state == "pending"
    note = await Notification.get(recipient_id=owner.pk)
    assert note.type == NotificationType.LIKENESS_REQUEST and note.from_account_id == bob.pk
    incoming, outgoing = await svc.requests_of(owner)
    assert [r.pk for r in incoming] == [request.pk] and outgoing == []
    with pytest.raises(NotFound):
        await svc.approve_request(bob, request.pk)  # only the owner answers
    approved = await svc.approve_request(owner, request.pk)
    assert approved.state == "approved" and approved.grant_id
    with pytest.raises(Conflict):
        await svc.reject_request(owner, request.pk)
    ok = await svc.check_consent(bob, owner, publish=True, settings=settings)
    assert ok.allowed and ok.grant is not None and ok.grant.uri
    assert ok.references and all_files(ok.references)
    # Changed restrictions must be accepted again.
    await svc.update_policy(owner, restrictions="never in ads or politics")
    refused = await svc.check_consent(bob, owner, publish=False)
    assert not refused.allowed and "restrictions" in refused.reason


async def test_grant_ahead_expiry_and_drafts_only(db: str, settings: Settings) -> None:
    owner, carl = await local_account("owner"), await local_account("carl")
    await verified(owner, settings, audience="approved", drafts_only=True)
    with pytest.raises(Invalid):
        await svc.grant(owner, carl, expires_at=utcnow() - timedelta(minutes=1))
    row = await svc.grant(owner, carl, expires_at=utcnow() + timedelta(hours=1))
    assert row.scope == "drafts"
    assert (await svc.check_consent(carl, owner, publish=False)).allowed
    refused = await svc.check_consent(carl, owner, publish=True)
    assert not refused.allowed and "drafts only" in refused.reason
    await LikenessGrant.filter(pk=row.pk).update(expires_at=utcnow() - timedelta(seconds=1))
    refused = await svc.check_consent(carl, owner, publish=False)
    assert not refused.allowed and "expired" in refused.reason
    # default_expires_in gives grants a lifetime
    await svc.update_policy(owner, default_expires_in=3600)
    later = await svc.grant(owner, carl)
    assert later.expires_at is not None
    assert timedelta(minutes=59) < later.expires_at - utcnow() <= timedelta(hours=1)
    with pytest.raises(Invalid):
        await svc.update_policy(owner, default_expires_in=5)


async def test_approval_required_grants_one_use(db: str, settings: Settings) -> None:
    owner, dana = await local_account("owner"), await local_account("dana")
    await verified(owner, settings, audience="everyone", approval_required=True)
    refused = await svc.check_consent(dana, owner, publish=False)
    assert not refused.allowed
    request = await svc.request_use(dana, owner)
    assert request.state == "pending"  # the policy does not answer: the owner does
    await svc.approve_request(owner, request.pk)
    first = await svc.check_consent(dana, owner, publish=False)
    assert first.allowed and first.grant is not None and first.grant.single_use


async def test_revocation_and_blocks(db: str, settings: Settings) -> None:
    owner, eve = await local_account("owner"), await local_account("eve")
    await verified(owner, settings, audience="approved")
    row = await svc.grant(owner, eve)
    assert (await svc.check_consent(eve, owner, publish=True)).allowed
    with pytest.raises(NotFound):
        await svc.revoke_grant(eve, row.pk)  # not hers to revoke
    revoked = await svc.revoke_grant(owner, row.pk, take_down=True)
    assert revoked.revoked_at is not None and revoked.take_down
    refused = await svc.check_consent(eve, owner, publish=False)
    assert not refused.allowed and "revoked" in refused.reason
    # Revoking the likeness: files gone, state revoked, nothing usable.
    likeness = await Likeness.get(account_id=owner.pk)
    files = svc.reference_paths(likeness, settings)
    gone = await svc.revoke_likeness(owner, settings=settings)
    assert gone.state == "revoked" and gone.reference_files == []
    assert not any_exists(files)
    assert not (await svc.check_consent(owner, owner, publish=False)).allowed


async def test_requests_refused_by_policy_store_nothing(db: str, settings: Settings) -> None:
    owner, fay = await local_account("owner"), await local_account("fay")
    remote = await remote_account("rob")
    with pytest.raises(Invalid):
        await svc.request_use(fay, owner)  # no likeness at all
    await verified(owner, settings)  # audience nobody
    with pytest.raises(Forbidden):
        await svc.request_use(fay, owner)
    with pytest.raises(Invalid):
        await svc.request_use(owner, owner)
    assert await LikenessRequest.all().count() == 0
    # A remote owner is asked by their instance (a CameoRequest): pending until it answers,
    # and no consent until a grant of theirs arrives.
    sent = await svc.request_use(fay, remote)
    assert sent.state == "pending" and sent.uri is not None
    refused = await svc.check_consent(fay, remote, publish=False)
    assert not refused.allowed and "no consent from @rob@remote.example" in refused.reason
    await LikenessRequest.filter(pk=sent.pk).delete()
    await svc.update_policy(owner, audience="everyone")
    answered = await svc.request_use(fay, owner)
    assert answered.state == "approved" and answered.grant_id is not None
    assert [a.username for a in await svc.usable_likenesses(fay, "own")] == ["owner"]
    assert await svc.usable_likenesses(fay, "zzz") == []


async def test_a_deleted_account_takes_its_likeness_along(db: str, settings: Settings) -> None:
    from fedisora.services.account_deletion import delete_local_account

    owner, ivy = await local_account("owner"), await local_account("ivy")
    await verified(owner, settings, audience="approved")
    row = await svc.grant(owner, ivy)
    files = svc.reference_paths(await Likeness.get(account_id=owner.pk), settings)
    assert all_files(files)
    await delete_local_account(owner, settings=settings)
    assert not any_exists(files)
    assert (await Likeness.get(account_id=owner.pk)).state == "revoked"
    assert (await LikenessGrant.get(pk=row.pk)).revoked_at is not None


async def test_grants_and_revocations_are_signed_by_the_owner(db: str, settings: Settings) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from activitypub import consent
    from activitypub.keys import public_key_from_multibase

    owner, gus = await local_account("owner"), await local_account("gus")
    await verified(owner, settings, audience="approved", restrictions="no ads")
    row = await svc.grant(owner, gus, expires_at=utcnow() + timedelta(days=1))
    assert row.document is not None and row.uri == row.document["id"]
    assert row.document["type"] == "LikenessAuthorization"
    assert row.document["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    key = public_key_from_multibase(str(owner.ed25519_public_multibase))
    assert isinstance(key, Ed25519PublicKey)
    verified_grant = consent.verify_grant(
        row.document, key, owner=owner.uri, grantee=gus.uri, needs_publish=True, now=utcnow()
    )
    assert verified_grant.restrictions_digest == consent.restrictions_digest("no ads")
    with pytest.raises(consent.ConsentError):  # not a consent for anyone else
        consent.verify_grant(
            row.document, key, owner=owner.uri, grantee=owner.uri, needs_publish=False,
            now=utcnow(),
        )  # fmt: skip
    revoked = await svc.revoke_grant(owner, row.pk)
    assert revoked.revocation is not None and revoked.revocation_uri == revoked.revocation["id"]
    revocation = consent.verify_revocation(revoked.revocation, key, owner=owner.uri, now=utcnow())
    assert consent.revokes(revocation, verified_grant)
    other = await svc.grant(owner, gus)
    await svc.revoke_likeness(owner, settings=settings)
    whole = await LikenessGrant.get(pk=other.pk)
    assert whole.revocation is not None and whole.revocation["object"] == owner.uri
