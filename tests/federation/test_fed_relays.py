"""ActivityPub relays (issue 19, point 4; :mod:`fedisora.services.relays`): the instance actor
follows a relay (``Follow`` of ``as:Public``, as Mastodon and LitePub relays expect), the
relay's Accept is recorded, public clips go to it, what it announces is fetched from its
origin and shown as a remote clip (never as a boost by the relay), a LitePub relay's follow
back is accepted, and removing it sends the Undo. Bad URLs are refused with a reason."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, Peer, RemoteActor, make_remote, post_inbox, process_inbox

from fedisora.config import Settings
from fedisora.errors import Invalid
from fedisora.federation.context import Federation
from fedisora.models import (
    Boost,
    Clip,
    Delivery,
    Follow,
    FollowState,
    ForYouCandidate,
    MediaFile,
    Relay,
    RelayState,
    Visibility,
)
from fedisora.services import audit, posts, relays

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
RELAY = "relay.example"
RELAY_ACTOR = f"https://{RELAY}/actor"
RELAY_INBOX = f"https://{RELAY}/inbox"


async def _relay(peer: Peer) -> RemoteActor:
    """The relay's actor (an Application, LitePub style), served by the peer."""
    relay = await make_remote("relay", RELAY, uri=RELAY_ACTOR)
    doc = relay.document()
    doc.update(type="Application", inbox=RELAY_INBOX)
    peer.documents[RELAY_ACTOR] = doc
    return relay


async def test_a_relay_followed_accepted_fed_and_removed(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    relay = await _relay(peer)
    row = await relays.add(RELAY_ACTOR, by=audit.CLI, fed=federation)
    assert (row.inbox_url, row.actor_uri, row.state) == (RELAY_INBOX, RELAY_ACTOR, "pending")
    [follow] = await Delivery.all()
    assert follow.inbox_url == RELAY_INBOX
    assert follow.payload["type"] == "Follow" and follow.payload["object"] == PUBLIC
    assert follow.payload["actor"] == f"https://{DOMAIN}/actor"

    # the relay accepts; a LitePub relay follows our instance actor back
    accept = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{RELAY_ACTOR}#accepts/1",
        "type": "Accept",
        "actor": RELAY_ACTOR,
        "object": {"id": row.follow_uri, "type": "Follow", "object": PUBLIC},
    }
    back = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{RELAY_ACTOR}#follows/1",
        "type": "Follow",
        "actor": RELAY_ACTOR,
        "object": f"https://{DOMAIN}/actor",
    }
    assert (await post_inbox(client, relay, accept)).status_code == 202
    assert (await post_inbox(client, relay, back, "/actor/inbox")).status_code == 202
    assert await process_inbox(settings) == ["processed", "processed"]
    assert (await Relay.get(pk=row.pk)).state == RelayState.ACCEPTED
    [followed_back] = await Follow.filter(follower_id=relay.account.pk)
    assert followed_back.state == FollowState.ACCEPTED

    # public clips go to the relay; a followers-only one does not
    await Delivery.all().delete()
    ann = await local_account("ann")
    await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    await posts.post_clip(
        ann, await rendered_video(ann), caption="for friends", visibility=Visibility.FOLLOWERS
    )
    sent = [(d.inbox_url, d.payload["type"]) for d in await Delivery.all()]
    assert sent == [(RELAY_INBOX, "Create")]

    # removing it: the Undo of our Follow goes out, the row is gone, and so is the relay's
    # follow back (Rejected, as Mastodon removes a follower)
    await Delivery.all().delete()
    await relays.remove(row.pk, by=audit.CLI, fed=federation)
    by_type = {d.payload["type"]: d for d in await Delivery.all()}
    assert set(by_type) == {"Undo", "Reject"}
    undo = by_type["Undo"]
    assert undo.inbox_url == RELAY_INBOX and undo.payload["object"]["id"] == row.follow_uri
    assert by_type["Reject"].payload["object"]["id"] == back["id"]
    assert not await Relay.exists()
    assert not await Follow.filter(follower_id=relay.account.pk).exists()


async def test_what_a_relay_announces_is_fetched_from_its_origin(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    relay = await _relay(peer)
    row = await relays.add(RELAY_ACTOR, by=audit.CLI, fed=federation)
    await Relay.filter(pk=row.pk).update(state=RelayState.ACCEPTED)
    otto = await make_remote("otto", "otto.example")
    peer.documents[otto.uri] = otto.document()
    note: dict[str, Any] = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{otto.uri}/clips/1",
        "type": "Note",
        "attributedTo": otto.uri,
        "content": "<p>a lighthouse</p>",
        "to": [PUBLIC],
        "cc": [f"{otto.uri}/followers"],
        "attachment": [
            {"type": "Document", "mediaType": "video/mp4", "url": "https://otto.example/1.mp4"}
        ],
    }
    peer.documents[note["id"]] = note
    # LitePub relays announce the Create they received; the relay's copy is not trusted:
    # its content says something else, the origin's is what is stored
    announced = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{RELAY_ACTOR}#announces/1",
        "type": "Announce",
        "actor": RELAY_ACTOR,
        "object": {
            "id": f"{note['id']}/activity",
            "type": "Create",
            "actor": otto.uri,
            "object": dict(note, content="<p>forged by the relay</p>"),
        },
        "to": [PUBLIC],
    }
    assert (await post_inbox(client, relay, announced)).status_code == 202
    assert await process_inbox(settings) == ["processed"]
    clip = await Clip.get(uri=note["id"])
    assert clip.account_id == otto.account.pk and "a lighthouse" in clip.content
    assert not await Boost.exists()  # a relay's Announce is not a boost

    # A local viewer's For You takes the relayed clip once its provenance check says
    # verified (as every remote clip: the relay adds nothing and takes nothing away)
    from fedisora.for_you import candidates

    viewer = await local_account("viewer")
    await candidates.refresh_now(viewer)
    listed = {c.clip_id for c in await ForYouCandidate.filter(account_id=viewer.pk)}
    assert clip.pk not in listed  # not checked yet
    assert clip.media_id is not None
    media = await MediaFile.get(pk=clip.media_id)
    await MediaFile.filter(pk=media.pk).update(
        provenance={**(media.provenance or {}), "state": "verified"}
    )
    await candidates.refresh_now(viewer)
    listed = {c.clip_id for c in await ForYouCandidate.filter(account_id=viewer.pk)}
    assert clip.pk in listed


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "URL is needed"),
        ("ftp://relay.example/inbox", "must be an https"),
        (f"https://{DOMAIN}/inbox", "this instance"),
        ("https://relay.example/inbox#x", "no fragment"),
        ("https://user:pw@relay.example/inbox", "no fragment or credentials"),
        ("https://relay.example:99999999/inbox", "not a valid URL"),
        ("https://relay.example/" + "x" * 2048, "too long"),
    ],
)
async def test_bad_relay_urls_are_refused(federation: Federation, url: str, error: str) -> None:
    with pytest.raises(Invalid) as refused:
        await relays.add(url, by=audit.CLI, fed=federation)
    assert error in refused.value.message
    assert not await Relay.exists() and not await Delivery.exists()


async def test_a_relay_added_twice_is_refused_and_an_inbox_url_works(
    federation: Federation,
) -> None:
    """Mastodon's form: the inbox URL (it answers no GET): taken as the inbox."""
    row = await relays.add(RELAY_INBOX, by=audit.CLI, fed=federation)
    assert (row.inbox_url, row.actor_uri) == (RELAY_INBOX, None)
    with pytest.raises(Invalid) as refused:
        await relays.add(RELAY_INBOX, by=audit.CLI, fed=federation)
    assert "added already" in refused.value.message
    assert await Relay.all().count() == 1
