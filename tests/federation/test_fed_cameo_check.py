"""A received clip with cameos, on one database with scripted peers (both backends).

bob on author.example publishes a clip with alice (owner.example) in it. alice's actor is not
known here: her key is fetched from her server. When her server is down the clip is held
(a durable CameoCheck, retried by the real machine) and shown once her consent verifies; an
actor without an Ed25519 key cannot consent; a revocation received from alice is applied
once, and a clip presenting the revoked consent afterwards is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fedhelpers import Peer, RemoteActor, make_remote

from activitypub import consent, keys, objects
from activitypub.federation import cameo_clips
from activitypub.federation.context import Federation
from activitypub.federation.ingest import Ignored, handle_activity
from fedisora.config import Settings
from fedisora.models import (
    Account,
    Cameo,
    CameoCheck,
    Clip,
    ConsentCheck,
    ReceivedRevocation,
    utcnow,
)
from fedisora.work import Engine

OWNER = "https://owner.example/users/alice"
KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@dataclass
class FlakyPeer(Peer):
    down: set[str] = field(default_factory=set)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return super().__call__(request)


@pytest.fixture
def peer() -> FlakyPeer:
    return FlakyPeer()


def alice_document(with_ed25519: bool = True) -> dict[str, Any]:
    rsa = keys.generate_rsa_key()
    doc: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": OWNER,
        "type": "Person",
        "preferredUsername": "alice",
        "inbox": f"{OWNER}/inbox",
        "publicKey": {
            "id": f"{OWNER}#main-key",
            "owner": OWNER,
            "publicKeyPem": keys.public_key_to_pem(rsa.public_key()),
        },
    }
    if with_ed25519:
        doc["assertionMethod"] = [
            {
                "id": f"{OWNER}#ed25519-key",
                "type": "Multikey",
                "controller": OWNER,
                "publicKeyMultibase": keys.public_key_to_multibase(KEY.public_key()),
            }
        ]
    return doc


def grant(grantee: str, n: int = 1) -> dict[str, Any]:
    now = utcnow().replace(microsecond=0)
    doc = consent.build_grant(
        grant_id=f"https://owner.example/likeness/grants/{n}",
        owner=OWNER,
        grantee=grantee,
        scope="publish",
        restrictions_digest=consent.restrictions_digest(""),
        published=now - timedelta(minutes=1),
    )
    return consent.sign_grant(doc, KEY, key_id=f"{OWNER}#ed25519-key", created=now)


def create(author: RemoteActor, n: int, consent_doc: dict[str, Any]) -> dict[str, Any]:
    clip_id = f"{author.uri}/clips/{n}"
    return {
        "id": f"{clip_id}/activity",
        "type": "Create",
        "actor": author.uri,
        "object": {
            "id": clip_id,
            "type": "Note",
            "attributedTo": author.uri,
            "content": "<p>dunes</p>",
            "to": [objects.PUBLIC],
            "cc": [f"{author.uri}/followers", OWNER],
            "tag": [{"type": "Mention", "href": OWNER, "name": "@alice@owner.example"}],
            "cameos": [{"type": "Cameo", "actor": OWNER, "consent": consent_doc}],
            "attachment": [{"type": "Document", "mediaType": "video/mp4", "url": f"{clip_id}.mp4"}],
        },
    }


async def run_checks(settings: Settings) -> list[Any]:
    engine = Engine(cameo_clips.machines(settings), context={"settings": settings})
    return [
        await engine.advance("cameo_checks", row.pk)
        for row in await CameoCheck.filter(state="pending").order_by("id")
    ]


async def test_a_clip_is_held_while_the_owner_cannot_be_fetched_then_shown(
    federation: Federation, peer: FlakyPeer, settings: Settings
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    peer.down.add("owner.example")
    activity = create(bob, 1, grant(bob.uri))
    with pytest.raises(Ignored, match="cannot be verified now"):
        await handle_activity(federation, activity)
    clip_uri = activity["object"]["id"]
    assert not await Clip.filter(uri=clip_uri).exists()  # not shown while unverified
    (held,) = await CameoCheck.filter(clip_uri=clip_uri)
    assert held.state == "pending" and held.note == activity["object"]

    await run_checks(settings)  # still down: retried later
    held = await CameoCheck.get(pk=held.pk)
    assert held.state == "pending" and held.attempts == 1 and "owner.example" in held.last_error

    peer.down.clear()
    await CameoCheck.filter(pk=held.pk).update(next_attempt_at=utcnow())
    await run_checks(settings)
    held = await CameoCheck.get(pk=held.pk)
    assert (held.state, held.outcome, held.reason) == (
        "checked",
        "shown",
        "every consent verified",
    )
    assert held.note is None
    clip = await Clip.get(uri=clip_uri)
    alice = await Account.get(uri=OWNER)
    assert await Cameo.filter(clip_id=clip.pk, account_id=alice.pk).values_list(
        "consent_uri", flat=True
    ) == ["https://owner.example/likeness/grants/1"]


async def test_an_owner_without_an_ed25519_key_cannot_consent(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document(with_ed25519=False)
    activity = create(bob, 2, grant(bob.uri))
    with pytest.raises(Ignored, match="has no Ed25519 key"):
        await handle_activity(federation, activity)
    (check,) = await CameoCheck.all()
    assert check.outcome == "refused" and "has no Ed25519 key" in check.reason
    # In the consent audit too (what admins, and a local owner, read).
    (audit,) = await ConsentCheck.all()
    alice = await Account.get(uri=OWNER)
    assert (audit.requester_id, audit.owner_id, audit.stage, audit.allowed) == (
        bob.account.pk,
        alice.pk,
        "received",
        False,
    )
    assert "has no Ed25519 key" in audit.reason
    assert not await Clip.filter(uri=activity["object"]["id"]).exists()


async def test_a_revocation_is_applied_once_and_refuses_later_clips(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    given = grant(bob.uri)
    shown = create(bob, 3, given)
    await handle_activity(federation, shown)
    assert await Clip.filter(uri=shown["object"]["id"], deleted_at=None).exists()

    when = datetime.now(UTC).replace(microsecond=0)
    revocation = consent.sign_revocation(
        consent.build_revocation(
            revocation_id="https://owner.example/likeness/revocations/1",
            owner=OWNER,
            revoked=given["id"],
            published=when,
            take_down=True,
        ),
        KEY,
        key_id=f"{OWNER}#ed25519-key",
        created=when,
    )
    await handle_activity(federation, cameo_clips.revocation_activity(revocation))
    # Taken down: hidden here (bob's server hosts it), the reason kept.
    hidden = await Clip.get(uri=shown["object"]["id"])
    assert hidden.deleted_at is not None
    assert await CameoCheck.filter(clip_uri=hidden.uri, outcome="hidden").count() == 1
    # A replay in another activity changes nothing.
    replay = {**cameo_clips.revocation_activity(revocation), "id": "https://owner.example/r#2"}
    await handle_activity(federation, replay)
    assert await ReceivedRevocation.all().count() == 1
    assert await CameoCheck.filter(outcome="hidden").count() == 1
    # bob's server publishes with the revoked consent again: refused here.
    again = create(bob, 4, given)
    with pytest.raises(Ignored, match="revoked by its owner"):
        await handle_activity(federation, again)
    assert not await Clip.filter(uri=again["object"]["id"]).exists()


async def test_a_revocation_by_another_key_is_refused(
    federation: Federation, peer: FlakyPeer
) -> None:
    peer.documents[OWNER] = alice_document()
    when = datetime.now(UTC).replace(microsecond=0)
    forged = consent.sign_revocation(
        consent.build_revocation(
            revocation_id="https://owner.example/likeness/revocations/9",
            owner=OWNER,
            revoked=OWNER,
            published=when,
        ),
        ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))),
        key_id=f"{OWNER}#ed25519-key",
        created=when,
    )
    with pytest.raises(Ignored, match="revocation refused: bad proof"):
        await handle_activity(federation, cameo_clips.revocation_activity(forged))
    assert await ReceivedRevocation.all().count() == 0
