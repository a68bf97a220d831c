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
from fedisora.config import Settings
from fedisora.federation import cameo_clips, cameo_verify
from fedisora.federation.context import Federation
from fedisora.federation.http import FetchError
from fedisora.federation.ingest import Ignored, handle_activity
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
    """The peer, with hosts that are down and URLs answered with another status (a revoked
    grant's 410 with its revocation, a 503)."""

    down: set[str] = field(default_factory=set)
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        answer = self.answers.get(str(request.url))
        if answer is not None and request.method == "GET":
            self.requests.append(request)
            return httpx.Response(answer[0], json=answer[1])
        return super().__call__(request)

    def asked(self, url: str) -> int:
        return sum(1 for r in self.requests if str(r.url) == url)


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


def grant(
    grantee: str, n: int = 1, peer: Peer | None = None, max_uses: int | None = None
) -> dict[str, Any]:
    """alice's signed grant *n* to *grantee*, served at its id by *peer* when given."""
    now = utcnow().replace(microsecond=0)
    doc = consent.build_grant(
        grant_id=f"https://owner.example/likeness/grants/{n}",
        owner=OWNER,
        grantee=grantee,
        scope="publish",
        restrictions_digest=consent.restrictions_digest(""),
        published=now - timedelta(minutes=1),
        max_uses=max_uses,
    )
    signed = consent.sign_grant(doc, KEY, key_id=f"{OWNER}#ed25519-key", created=now)
    if peer is not None:
        peer.documents[signed["id"]] = signed
    return signed


def revocation(
    revoked: str, n: int = 1, key: ed25519.Ed25519PrivateKey = KEY, take_down: bool = False
) -> dict[str, Any]:
    when = datetime.now(UTC).replace(microsecond=0)
    return consent.sign_revocation(
        consent.build_revocation(
            revocation_id=f"https://owner.example/likeness/revocations/{n}",
            owner=OWNER,
            revoked=revoked,
            published=when,
            take_down=take_down,
        ),
        key,
        key_id=f"{OWNER}#ed25519-key",
        created=when,
    )


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
    engine = Engine(cameo_verify.machines(settings), context={"settings": settings})
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
    activity = create(bob, 1, grant(bob.uri, peer=peer))
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
    assert await Cameo.filter(clip_id=clip.pk, account_id=alice.pk).exists()
    assert await consents_of(clip_uri) == ["https://owner.example/likeness/grants/1"]


async def test_an_owner_without_an_ed25519_key_cannot_consent(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document(with_ed25519=False)
    activity = create(bob, 2, grant(bob.uri, peer=peer))
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
    given = grant(bob.uri, peer=peer)
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


# --- re-verification at the owner's server (a revocation never delivered here) -----------


async def test_a_grant_revoked_at_its_owner_but_never_delivered_here_is_refused(
    federation: Federation, peer: FlakyPeer
) -> None:
    """The third-instance case: alice revoked the grant, her server answers 410 with the
    signed revocation, but the revocation never reached us. The clip is refused, the
    revocation recorded (and applied), and a later clip with the grant is refused with no
    further request."""
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    given = grant(bob.uri, 5)
    revoked = revocation(given["id"], 5)
    peer.answers[given["id"]] = (410, revoked)
    activity = create(bob, 5, given)
    with pytest.raises(Ignored, match=r"revoked by its owner \(https://owner.example/likeness/"):
        await handle_activity(federation, activity)
    assert not await Clip.filter(uri=activity["object"]["id"]).exists()
    (check,) = await CameoCheck.filter(clip_uri=activity["object"]["id"])
    assert check.outcome == "refused" and "revoked by its owner" in check.reason
    (recorded,) = await ReceivedRevocation.all()
    assert (recorded.uri, recorded.owner_uri, recorded.object_uri) == (
        revoked["id"],
        OWNER,
        given["id"],
    )
    assert recorded.document == revoked
    assert peer.asked(given["id"]) == 1

    again = create(bob, 6, given)
    with pytest.raises(Ignored, match="revoked by its owner"):
        await handle_activity(federation, again)
    assert peer.asked(given["id"]) == 1  # known here now: no request
    assert await ReceivedRevocation.all().count() == 1


async def test_a_grant_still_served_by_its_owner_is_asked_once_and_shown(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    given = grant(bob.uri, 7, peer=peer)
    activity = create(bob, 7, given)
    await handle_activity(federation, activity)
    assert await Clip.filter(uri=activity["object"]["id"], deleted_at=None).exists()
    assert peer.asked(given["id"]) == 1
    # A grant its owner's server no longer knows (404): refused, nothing recorded.
    other = grant(bob.uri, 8)
    missing = create(bob, 8, other)
    with pytest.raises(Ignored, match="the owner's server no longer has this consent"):
        await handle_activity(federation, missing)
    assert not await Clip.filter(uri=missing["object"]["id"]).exists()
    assert await ReceivedRevocation.all().count() == 0


async def test_a_forged_410_body_is_not_recorded_as_a_revocation(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    given = grant(bob.uri, 9)
    forged = revocation(given["id"], 9, key=ed25519.Ed25519PrivateKey.generate(), take_down=True)
    peer.answers[given["id"]] = (410, forged)
    activity = create(bob, 9, given)
    with pytest.raises(Ignored, match="the owner's server no longer has this consent"):
        await handle_activity(federation, activity)
    assert await ReceivedRevocation.all().count() == 0
    assert not await Clip.filter(uri=activity["object"]["id"]).exists()
    # Nor is a revocation of another grant, validly signed, taken for this one's.
    await CameoCheck.all().delete()
    peer.answers[given["id"]] = (410, revocation("https://owner.example/likeness/grants/1", 10))
    again = create(bob, 10, given)
    with pytest.raises(Ignored, match="the owner's server no longer has this consent"):
        await handle_activity(federation, again)
    assert await ReceivedRevocation.all().count() == 0


async def test_an_unreachable_owner_server_holds_the_clip(
    federation: Federation, peer: FlakyPeer, settings: Settings
) -> None:
    """alice's actor is known, but her server answers 503 at the grant's id: the clip waits
    (durable), and is shown once her server serves the grant again."""
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    given = grant(bob.uri, 11, peer=peer)
    peer.answers[given["id"]] = (503, {"error": "maintenance"})
    activity = create(bob, 11, given)
    with pytest.raises(Ignored, match="cannot be verified now"):
        await handle_activity(federation, activity)
    clip_uri = activity["object"]["id"]
    assert not await Clip.filter(uri=clip_uri).exists()
    (held,) = await CameoCheck.filter(clip_uri=clip_uri)
    assert held.state == "pending" and "503" in held.reason

    del peer.answers[given["id"]]
    await CameoCheck.filter(pk=held.pk).update(next_attempt_at=utcnow())
    await run_checks(settings)
    held = await CameoCheck.get(pk=held.pk)
    assert (held.state, held.outcome) == ("checked", "shown")
    assert await Clip.filter(uri=clip_uri, deleted_at=None).exists()


# --- an Update of a received clip: its cameos verified again when they change --------------


def update(activity: dict[str, Any], n: int, **changes: Any) -> dict[str, Any]:
    """An Update of *activity*'s clip with *changes* to the Note."""
    note = {**activity["object"], **changes}
    return {
        "id": f"{note['id']}#update-{n}",
        "type": "Update",
        "actor": activity["actor"],
        "object": note,
    }


async def consents_of(clip_uri: str) -> list[str | None]:
    clip = await Clip.get(uri=clip_uri)
    found: list[Any] = await Cameo.filter(clip_id=clip.pk).values_list("consent_uri", flat=True)
    return found


async def test_an_update_changing_consents_is_verified_before_it_is_applied(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    first = grant(bob.uri, 20, peer=peer)
    activity = create(bob, 20, first)
    clip_uri = activity["object"]["id"]
    await handle_activity(federation, activity)
    assert peer.asked(first["id"]) == 1

    # Only the caption changes: applied, the consents not asked for again.
    await handle_activity(federation, update(activity, 1, content="<p>dunes at dusk</p>"))
    assert (await Clip.get(uri=clip_uri)).caption == "dunes at dusk"
    assert peer.asked(first["id"]) == 1

    # Another valid grant: verified at alice's server, then applied with the new consent.
    second = grant(bob.uri, 21, peer=peer)
    cameos = [{"type": "Cameo", "actor": OWNER, "consent": second}]
    await handle_activity(
        federation, update(activity, 2, content="<p>dunes, again</p>", cameos=cameos)
    )
    clip = await Clip.get(uri=clip_uri)
    assert clip.deleted_at is None and clip.caption == "dunes, again"
    assert await consents_of(clip_uri) == [second["id"]]
    assert peer.asked(second["id"]) == 1
    assert await CameoCheck.filter(clip_uri=clip_uri, outcome="shown").count() == 2

    # A grant revoked at alice's server (never delivered here): the clip is hidden, the
    # update not applied, the reason kept, the revocation recorded.
    third = grant(bob.uri, 22)
    peer.answers[third["id"]] = (410, revocation(third["id"], 22))
    cameos = [{"type": "Cameo", "actor": OWNER, "consent": third}]
    with pytest.raises(Ignored, match=r"the clip is hidden: .*revoked by its owner"):
        await handle_activity(
            federation, update(activity, 3, content="<p>not this</p>", cameos=cameos)
        )
    clip = await Clip.get(uri=clip_uri)
    assert clip.deleted_at is not None and clip.caption != "not this"
    (refused,) = await CameoCheck.filter(clip_uri=clip_uri, outcome="refused")
    assert refused.reason.startswith("an Update: the consent of") and "revoked" in refused.reason
    assert await ReceivedRevocation.filter(object_uri=third["id"]).count() == 1


async def test_an_update_adding_a_cameo_without_consent_hides_the_clip(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    carol = await make_remote("carol", "author.example")
    peer.documents[OWNER] = alice_document()
    activity = create(bob, 30, {})
    activity["object"].pop("cameos")
    clip_uri = activity["object"]["id"]
    await handle_activity(federation, activity)
    assert await Clip.filter(uri=clip_uri, deleted_at=None).exists()

    # alice's grant is to carol, not bob.
    not_bobs = grant(carol.uri, 31, peer=peer)
    cameos = [{"type": "Cameo", "actor": OWNER, "consent": not_bobs}]
    with pytest.raises(Ignored, match=f"the grant is for {carol.uri}"):
        await handle_activity(federation, update(activity, 1, cameos=cameos))
    assert (await Clip.get(uri=clip_uri)).deleted_at is not None
    assert not await Cameo.all().exists()
    (refused,) = await CameoCheck.filter(clip_uri=clip_uri, outcome="refused")
    assert "the grant is for" in refused.reason


async def test_an_update_whose_owner_cannot_be_reached_is_retried_and_changes_nothing(
    federation: Federation, peer: FlakyPeer
) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    first = grant(bob.uri, 40, peer=peer)
    activity = create(bob, 40, first)
    clip_uri = activity["object"]["id"]
    await handle_activity(federation, activity)

    second = grant(bob.uri, 41, peer=peer)
    peer.answers[second["id"]] = (503, {"error": "maintenance"})
    changed = update(
        activity,
        1,
        content="<p>later</p>",
        cameos=[{"type": "Cameo", "actor": OWNER, "consent": second}],
    )
    with pytest.raises(FetchError, match="503"):  # the inbox retries the Update
        await handle_activity(federation, changed)
    clip = await Clip.get(uri=clip_uri)
    assert clip.deleted_at is None and clip.caption == "dunes"
    assert await consents_of(clip_uri) == [first["id"]]

    del peer.answers[second["id"]]  # the retry
    await handle_activity(federation, changed)
    assert (await Clip.get(uri=clip_uri)).caption == "later"
    assert await consents_of(clip_uri) == [second["id"]]


# --- a single-use consent (maxUses 1) shows one clip ---------------------------------------


async def test_a_single_use_consent_shows_one_clip(federation: Federation, peer: FlakyPeer) -> None:
    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    once = grant(bob.uri, 30, peer=peer, max_uses=1)
    first = create(bob, 30, once)
    await handle_activity(federation, first)
    assert await Clip.filter(uri=first["object"]["id"], deleted_at=None).exists()
    # The same clip again (a redelivery under another activity id) is that one use, known.
    with pytest.raises(Ignored, match="known already"):
        await handle_activity(federation, {**first, "id": f"{first['id']}#again"})
    # Another clip presenting it: refused, the reason kept, nothing stored.
    second = create(bob, 31, once)
    with pytest.raises(Ignored, match=r"the consent is for one use, and .*/clips/30 used it"):
        await handle_activity(federation, second)
    assert not await Clip.filter(uri=second["object"]["id"]).exists()
    (check,) = await CameoCheck.filter(clip_uri=second["object"]["id"])
    assert check.outcome == "refused" and "for one use" in check.reason
    # Still refused once the first clip is deleted: the use was made.
    await Clip.filter(uri=first["object"]["id"]).update(deleted_at=utcnow())
    third = create(bob, 32, once)
    with pytest.raises(Ignored, match="for one use"):
        await handle_activity(federation, third)
    # A grant without maxUses shows any number of clips.
    many = grant(bob.uri, 33, peer=peer)
    for n in (33, 34):
        await handle_activity(federation, create(bob, n, many))
    assert await Clip.filter(uri__in=[f"{bob.uri}/clips/33", f"{bob.uri}/clips/34"]).count() == 2


# --- the sweep: shown clips asked about again at the owner's server ------------------------


async def test_the_sweep_hides_a_clip_whose_revocation_never_arrived(
    federation: Federation, peer: FlakyPeer, settings: Settings
) -> None:
    """Clips shown here before alice revoked their grants; her revocations are never
    delivered here. The sweep (the ``cameo_recheck`` chore) asks her server again about
    consents last checked more than ``cameo_recheck_hours`` ago, oldest first, a bounded
    batch at a time: a 410 with her signed revocation is recorded and applied as a delivered
    one would be (a take-down hides the clip, the reason kept; "keep" leaves it); an unsigned
    404 and an unreachable server leave the clip shown."""
    from fedisora.models import Chore
    from fedisora.work.housekeeping import CHORE_GRAPH, ensure_chores
    from fedisora.work.housekeeping import machines as chore_machines

    bob = await make_remote("bob", "author.example")
    peer.documents[OWNER] = alice_document()
    given = {n: grant(bob.uri, n, peer=peer) for n in (40, 41, 42, 43)}
    for n, doc in given.items():
        await handle_activity(federation, create(bob, n, doc))
    clip_of = {n: await Clip.get(uri=f"{bob.uri}/clips/{n}") for n in given}
    cameo_of = {n: await Cameo.get(clip_id=clip_of[n].pk) for n in given}
    now = utcnow()
    assert all(c.checked_at is not None for c in cameo_of.values())  # verified when shown
    # Checked 30, 29, 28 and 2 hours ago: with 24 hours, 40-42 are due, 43 not yet.
    for n, hours in ((40, 30), (41, 29), (42, 28), (43, 2)):
        await Cameo.filter(pk=cameo_of[n].pk).update(checked_at=now - timedelta(hours=hours))

    take_down = revocation(given[40]["id"], 40, take_down=True)
    peer.answers[given[40]["id"]] = (410, take_down)
    peer.answers[given[41]["id"]] = (410, revocation(given[41]["id"], 41))  # keep
    peer.answers[given[42]["id"]] = (404, {"error": "Record not found"})
    peer.answers[given[43]["id"]] = (410, revocation(given[43]["id"], 43, take_down=True))
    asked_before = {n: peer.asked(given[n]["id"]) for n in given}

    # A batch of two: the two oldest.
    done = await cameo_clips.recheck_shown(
        federation, now=utcnow(), older_than=timedelta(hours=24), limit=2
    )
    assert (done.checked, done.hidden, done.unreachable, done.full) == (2, 1, 0, True)
    assert (await Clip.get(pk=clip_of[40].pk)).deleted_at is not None  # taken down
    assert (await Clip.get(pk=clip_of[41].pk)).deleted_at is None  # the owner chose keep
    (hidden,) = await CameoCheck.filter(clip_uri=clip_of[40].uri, outcome="hidden")
    assert "revoked with a take-down" in hidden.reason and take_down["id"] in hidden.reason
    recorded = set(await ReceivedRevocation.all().values_list("uri", flat=True))
    assert recorded == {take_down["id"], "https://owner.example/likeness/revocations/41"}
    assert peer.asked(given[42]["id"]) == asked_before[42]  # not in this batch

    # Through the chore this time, as the work runner runs it: 42 (an unsigned 404) stays,
    # 43 is not due.
    await ensure_chores()
    engine = Engine(chore_machines(settings), context={"settings": settings})
    row = await Chore.get(name="cameo_recheck")
    assert row.state == CHORE_GRAPH.initial
    await engine.advance("chores", row.pk)
    row = await Chore.get(name="cameo_recheck")
    assert row.progress["last"]["counts"] == {"cameos_rechecked": 1}
    assert (await Clip.get(pk=clip_of[42].pk)).deleted_at is None
    assert peer.asked(given[42]["id"]) == asked_before[42] + 1
    assert peer.asked(given[43]["id"]) == asked_before[43]
    assert await ReceivedRevocation.all().count() == 2  # the 404 recorded nothing

    # An owner's server that cannot answer: the clip stays, asked again in an hour.
    await Cameo.filter(pk=cameo_of[43].pk).update(checked_at=now - timedelta(days=3))
    peer.down.add("owner.example")
    later = utcnow()
    done = await cameo_clips.recheck_shown(
        federation, now=later, older_than=timedelta(hours=24), limit=10
    )
    assert (done.checked, done.hidden, done.unreachable, done.full) == (1, 0, 1, False)
    assert (await Clip.get(pk=clip_of[43].pk)).deleted_at is None
    retry_at = (await Cameo.get(pk=cameo_of[43].pk)).checked_at
    assert retry_at is not None
    assert retry_at == later - timedelta(hours=23)
    # Not due again at once; due an hour later, when the server answers: taken down.
    again = await cameo_clips.recheck_shown(
        federation, now=later, older_than=timedelta(hours=24), limit=10
    )
    assert again.checked == 0
    peer.down.clear()
    done = await cameo_clips.recheck_shown(
        federation, now=later + timedelta(hours=1, seconds=1), older_than=timedelta(hours=24)
    )
    assert (done.checked, done.hidden) == (1, 1)
    assert (await Clip.get(pk=clip_of[43].pk)).deleted_at is not None
