"""Object integrity proofs on incoming activities (FEP-8b32, ``eddsa-jcs-2022``; issue 19,
point 2): an activity with a valid proof by its actor's Ed25519 key (the FEP-521a Multikey of
its actor document) is accepted even when another server signed the HTTP request (a relay,
a thread's server forwarding a reply); a proof that does not hold is refused with its reason
whoever signed the request, and nothing is stored; a forwarded activity without a proof is
refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, Peer, RemoteActor, make_remote, post_inbox, process_inbox

from activitypub import integrity, keys
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.models import Account, InboxItem, Like
from fedisora.services import posts

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def _with_ed25519(remote: RemoteActor) -> ed25519.Ed25519PrivateKey:
    """Give *remote*'s cached actor an Ed25519 Multikey, as a Fedify actor publishes one."""
    key = keys.generate_ed25519_key()
    await Account.filter(pk=remote.account.pk).update(
        ed25519_public_multibase=keys.public_key_to_multibase(key.public_key())
    )
    return key


def _like(remote: RemoteActor, clip_uri: str, n: int = 1) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", integrity.DATA_INTEGRITY_CONTEXT],
        "id": f"{remote.uri}#likes/{n}",
        "type": "Like",
        "actor": remote.uri,
        "object": clip_uri,
    }


def _signed(
    doc: dict[str, Any], key: ed25519.Ed25519PrivateKey, method: str, **when: Any
) -> dict[str, Any]:
    created = when.get("created", datetime.now(UTC) - timedelta(seconds=5))
    return integrity.sign(doc, key, method, created=created)


async def test_a_forwarded_activity_with_its_actors_proof_is_accepted(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    rita = await make_remote()
    relay = await make_remote("relay", domain="relay.example")
    key = await _with_ed25519(rita)
    like = _signed(_like(rita, clip.uri), key, f"{rita.uri}#ed25519-key")
    r = await post_inbox(client, relay, like)  # HTTP-signed by the relay, proven by rita
    assert r.status_code == 202, r.text
    assert await process_inbox(settings) == ["processed"]
    [stored] = await Like.all()
    assert stored.account_id == rita.account.pk and stored.clip_id == clip.pk

    # the same from rita herself, with her proof: accepted too
    again = _signed(_like(rita, clip.uri, 2), key, f"{rita.uri}#ed25519-key")
    assert (await post_inbox(client, rita, again)).status_code == 202


async def test_proofs_that_do_not_hold_are_refused_with_their_reason(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    rita = await make_remote()
    otto = await make_remote("otto", domain="otto.example")
    relay = await make_remote("relay", domain="relay.example")
    key = await _with_ed25519(rita)
    otto_key = await _with_ed25519(otto)
    method = f"{rita.uri}#ed25519-key"

    tampered = _signed(_like(rita, clip.uri), key, method)
    tampered["object"] = f"https://{DOMAIN}/users/ann"
    wrong_key = _signed(_like(rita, clip.uri, 2), otto_key, method)  # otto's key, rita's name
    others_key = _signed(_like(rita, clip.uri, 3), otto_key, f"{otto.uri}#ed25519-key")
    rsa_named = _signed(_like(rita, clip.uri, 4), key, f"{rita.uri}#main-key")
    future = _signed(
        _like(rita, clip.uri, 5), key, method, created=datetime.now(UTC) + timedelta(hours=2)
    )
    suite = _signed(_like(rita, clip.uri, 6), key, method)
    suite["proof"]["cryptosuite"] = "eddsa-rdfc-2022"
    cases = [
        (tampered, "does not verify"),
        (wrong_key, "does not verify"),
        (others_key, "is not the actor's"),
        (rsa_named, "is not an Ed25519 key"),
        (future, "in the future"),
        (suite, "unknown cryptosuite"),
    ]
    for sender in (relay, rita):  # forwarded, and from the actor itself
        for activity, reason in cases:
            r = await post_inbox(client, sender, activity)
            assert r.status_code == 401, (sender.uri, activity["id"], r.text)
            assert reason in r.json()["error"], r.text
    # an actor that publishes no Ed25519 key cannot have made a proof
    nokey = await make_remote("nokey", domain="nokey.example")
    stray = _signed(_like(nokey, clip.uri), otto_key, f"{nokey.uri}#ed25519-key")
    r = await post_inbox(client, relay, stray)
    assert r.status_code == 401 and "lists no key" in r.json()["error"], r.text
    # forwarded without any proof: the relay cannot speak for rita
    r = await post_inbox(client, relay, _like(rita, clip.uri, 7))
    assert r.status_code == 401 and "no proof" in r.json()["error"]
    assert not await InboxItem.exists()
    assert not await Like.exists()


def _reply(remote: RemoteActor, clip_uri: str, n: int, *, public: bool = True) -> dict[str, Any]:
    note = {
        "id": f"{remote.uri}/notes/{n}",
        "type": "Note",
        "attributedTo": remote.uri,
        "inReplyTo": clip_uri,
        "content": f"<p>what light! ({n})</p>",
        "published": "2026-12-07T09:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"]
        if public
        else [f"{remote.uri}/followers"],
        "cc": [f"{remote.uri}/followers"] if public else [],
    }
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", integrity.DATA_INTEGRITY_CONTEXT],
        "id": f"{note['id']}/activity",
        "type": "Create",
        "actor": remote.uri,
        "object": note,
        "to": note["to"],
        "cc": note["cc"],
    }


async def test_a_proven_reply_to_a_local_clip_is_forwarded_as_received(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    """Mastodon's inbox forwarding: the reply goes, unchanged (its proof verifiable by
    anyone), to the clip author's remote followers on other servers than the reply's;
    a reply without a proof, or not public, is not forwarded."""
    from fedisora.models import Comment, Delivery
    from fedisora.services import follows

    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    rita = await make_remote()
    otto = await make_remote("otto", domain="otto.example")
    rita_friend = await make_remote("rosa")  # on rita's own server
    for fan in (otto, rita_friend):
        await follows.follow(fan.account, ann, uri=f"{fan.uri}#follows/1")
    await Delivery.all().delete()  # the Accepts
    key = await _with_ed25519(rita)
    proven = _signed(_reply(rita, clip.uri, 1), key, f"{rita.uri}#ed25519-key")
    unproven = _reply(rita, clip.uri, 2)
    private = _signed(_reply(rita, clip.uri, 3, public=False), key, f"{rita.uri}#ed25519-key")
    for activity in (proven, unproven, private):
        assert (await post_inbox(client, rita, activity)).status_code == 202
    assert await process_inbox(settings) == ["processed"] * 3
    assert await Comment.filter(clip_id=clip.pk).count() == 3
    forwarded = await Delivery.all()
    assert [d.inbox_url for d in forwarded] == ["https://otto.example/inbox"]
    [one] = forwarded
    assert one.payload == proven and one.sender_id == ann.pk
    # what otto's server gets verifies by rita's key alone
    integrity.verify(one.payload, key.public_key())


async def test_what_we_send_carries_the_actors_proof(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    """Every activity a local actor sends carries its FEP-8b32 proof, made once for all
    inboxes with the Ed25519 key its actor document lists under ``assertionMethod``, with the
    Data Integrity context after ActivityStreams; what another server verifies from our
    actor document alone. An activity forwarded as received keeps its own proof."""
    from fedisora.models import Delivery
    from fedisora.services import follows, interactions

    ann = await local_account("ann")
    rita = await make_remote()
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    await follows.follow(rita.account, ann, uri=f"{rita.uri}#follows/1")  # an Accept
    await interactions.like(ann, clip)  # nothing federates for a like of one's own clip
    await follows.follow(ann, rita.account)  # a Follow
    actor = (await client.get("/users/ann", headers={"Accept": "application/activity+json"})).json()
    [method] = [m for m in actor["assertionMethod"] if m["type"] == "Multikey"]
    public = keys.public_key_from_multibase(method["publicKeyMultibase"])
    assert isinstance(public, ed25519.Ed25519PublicKey)
    sent = await Delivery.all().order_by("id")
    assert {d.payload["type"] for d in sent} >= {"Accept", "Follow"}
    for delivery in sent:
        payload = delivery.payload
        assert payload["@context"][1] == integrity.DATA_INTEGRITY_CONTEXT, payload["@context"]
        assert payload["proof"]["verificationMethod"] == method["id"]
        integrity.verify(payload, public)  # by our published key alone
        with pytest.raises(integrity.InvalidProof):
            integrity.verify(dict(payload, actor=rita.uri), public)


async def test_a_forwarded_create_without_a_proof_is_taken_from_its_origin(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    """A reply forwarded with no proof and no signature of its actor: only its object's id
    is believed, and the object is what the actor's own server serves; an object its origin
    does not serve is stored as nothing, the reason kept; any other activity so forwarded is
    refused."""
    from fedisora.models import Comment

    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    rita = await make_remote()
    relay = await make_remote("relay", domain="relay.example")
    reply = _reply(rita, clip.uri, 1)
    peer.documents[reply["object"]["id"]] = dict(reply["object"], content="<p>from the origin</p>")
    forged = dict(reply, object=dict(reply["object"], content="<p>the forwarder's</p>"))
    assert (await post_inbox(client, relay, forged)).status_code == 202
    assert await process_inbox(settings) == ["processed"]
    [comment] = await Comment.filter(clip_id=clip.pk)
    assert comment.account_id == rita.account.pk and "from the origin" in comment.content

    unserved = _reply(rita, clip.uri, 2)  # its origin answers 404
    assert (await post_inbox(client, relay, unserved)).status_code == 202
    await process_inbox(settings)
    row = await InboxItem.get(activity_id=unserved["id"])
    assert row.state == "ignored" and "404" in (row.last_error or ""), (row.state, row.last_error)
    assert await Comment.filter(clip_id=clip.pk).count() == 1

    elsewhere = dict(_reply(rita, clip.uri, 3))  # an object on another host than the actor's
    elsewhere["object"] = dict(elsewhere["object"], id="https://relay.example/notes/3")
    like = _like(rita, clip.uri, 4)
    for refused in (elsewhere, like):
        r = await post_inbox(client, relay, refused)
        assert r.status_code == 401 and "no proof of the actor's" in r.json()["error"], r.text
