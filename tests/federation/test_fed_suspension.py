"""An actor suspended by its own server (Mastodon's ``suspended`` in the actor), and how that
stays apart from a suspension by this instance's moderators; what an actor suspended here may
still send (Mastodon's ``Delete``, ``Reject``, ``Undo`` and ``Update``), and an actor its
server deleted.

The remote server is the scripted peer of conftest.py; activities come in signed, through
the inbox, and are processed by the InboxItem machine.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from factories import local_account, rendered_video
from fedhelpers import REMOTE, Peer, RemoteActor, make_remote
from test_fed_inbox import _video_note, follow_activity, post, process_all

from activitypub import objects
from fedisora.config import Settings
from fedisora.errors import Forbidden
from fedisora.federation.actors import fetch_actor, store_actor
from fedisora.federation.context import Federation
from fedisora.federation.ingest import Ignored, handle_activity
from fedisora.models import Account, Boost, Clip, Comment, Follow, InboxItem, Like
from fedisora.services import follows, posts
from fedisora.services.account_deletion import (
    is_remote_deleted,
    suspend_account,
    unsuspend_account,
)


def suspended(doc: dict[str, Any]) -> dict[str, Any]:
    """The actor as Mastodon serves a suspended one: its profile blanked, ``suspended``."""
    return dict(doc, name=doc["preferredUsername"], summary="", suspended=True)


def update(remote: RemoteActor, doc: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"{remote.uri}#updates/{n}", "type": "Update", "actor": remote.uri, "object": doc}


async def shown(client: httpx.AsyncClient, remote: RemoteActor) -> bool:
    r = await client.get("/api/v1/accounts/lookup", params={"acct": f"rita@{REMOTE}"})
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


async def test_the_origins_suspension_follows_its_actor_updates(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    full = dict(rita.document(), name="Rita R.", summary="<p>hi</p>")
    assert (await post(client, rita, update(rita, full, 1))).status_code == 202
    await process_all(settings)
    assert await shown(client, rita)

    assert (await post(client, rita, update(rita, suspended(full), 2))).status_code == 202
    await process_all(settings)
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is not None and row.suspended_at is None and row.suspended
    assert (row.display_name, row.note) == ("Rita R.", "hi")  # the blanked profile is not kept
    assert not await shown(client, rita)
    # Hidden like an account suspended here: its other activities are ignored.
    follow = {"id": f"{rita.uri}#follows/1", "type": "Follow", "actor": rita.uri, "object": ann.uri}
    assert (await post(client, rita, follow)).status_code == 202
    item = (await process_all(settings))[-1]
    assert item.state == "ignored" and "suspended by its server" in item.last_error
    assert not await Follow.filter(follower_id=rita.account.pk).exists()

    # Its server lifts the suspension: the full actor again.
    assert (await post(client, rita, update(rita, dict(full, name="Rita"), 3))).status_code == 202
    await process_all(settings)
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is None and not row.suspended and row.display_name == "Rita"
    assert await shown(client, rita)


async def test_the_origin_never_lifts_a_local_moderators_suspension(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    rita = await make_remote()
    doc = rita.document()
    assert (await post(client, rita, update(rita, suspended(doc), 1))).status_code == 202
    await process_all(settings)
    await suspend_account(rita.account)  # a moderator here suspends it too

    # Its server lifts its own suspension: an Update is processed while suspended here (as
    # Mastodon does), and only the origin's suspension goes.
    assert (await post(client, rita, update(rita, doc, 2))).status_code == 202
    item = (await process_all(settings))[-1]
    assert item.state == "processed", item.last_error
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is None and row.suspended_at is not None
    assert not await shown(client, rita)
    # However the lift comes in (here a refetch), the same.
    await store_actor(suspended(doc), rita.uri)
    await store_actor(doc, rita.uri)
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is None and row.suspended_at is not None
    assert not await shown(client, rita)

    # Suspended by its server again, then lifted here: the origin's suspension stays.
    await store_actor(suspended(doc), rita.uri)
    row = await unsuspend_account(rita.account)
    assert row.suspended_at is None and row.suspended and row.fetched_at is None
    assert not await shown(client, rita)
    # Whatever its server said meanwhile, the next use refetches the actor and follows it.
    peer.documents[rita.uri] = doc
    row = await fetch_actor(federation, rita.uri)
    assert not row.suspended and await shown(client, rita)
    peer.documents[rita.uri] = suspended(doc)
    row = await fetch_actor(federation, rita.uri, refresh=True)
    assert row.origin_suspended_at is not None and row.suspended_at is None
    assert not await shown(client, rita)


def _activity(remote: RemoteActor, kind: str, obj: Any, n: int) -> dict[str, Any]:
    return {
        "id": f"{remote.uri}#{kind.lower()}s/{n}",
        "type": kind,
        "actor": remote.uri,
        "object": obj,
    }


async def _stored(activity: dict[str, Any]) -> bool:
    return await InboxItem.filter(activity_id=activity["id"]).exists()


async def test_an_actor_suspended_here_may_still_delete_undo_reject_and_update(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    """Mastodon's ``ProcessCollectionService``: a suspended actor's activities are taken (202)
    and dropped, except Delete, Reject, Undo and Update, which are processed, so that what it
    deletes or undoes while suspended is gone here too."""
    ann = await local_account("ann")
    bob = await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="mine")
    other = await posts.post_clip(ann, await rendered_video(ann), caption="another")
    rita = await make_remote()
    its_clip = _video_note(rita, 1)
    comment = _activity(
        rita,
        "Create",
        {
            "id": f"{rita.uri}/statuses/1",
            "type": "Note",
            "attributedTo": rita.uri,
            "inReplyTo": clip.uri,
            "content": "<p>nice</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        },
        1,
    )
    follow = follow_activity(rita, ann)
    like = _activity(rita, "Like", clip.uri, 1)
    announce = dict(_activity(rita, "Announce", clip.uri, 1), to=[objects.PUBLIC])
    for activity in (its_clip, comment, follow, like, announce):
        assert (await post(client, rita, activity)).status_code == 202
    asked = await follows.follow(ann, rita.account)  # pending: rita has not answered
    assert {i.state for i in await process_all(settings)} == {"processed"}
    assert (await Clip.get(pk=clip.pk)).likes_count == 1
    assert (await Account.get(pk=ann.pk)).followers_count == 1

    await suspend_account(rita.account)
    federation.keys.forget(rita.uri)  # the door sees the suspension (not a cached key)

    # Nothing new: taken with 202 (a refusal would be retried for days) and not stored.
    dropped = [
        _activity(rita, "Like", other.uri, 2),
        _video_note(rita, 2),
        follow_activity(rita, bob, 2),
        dict(_activity(rita, "Announce", other.uri, 2), to=[objects.PUBLIC]),
        _activity(rita, "Block", ann.uri, 1),
    ]
    for activity in dropped:
        assert (await post(client, rita, activity)).status_code == 202, activity["type"]
        assert not await _stored(activity), activity["type"]

    # What removes or updates its own things here is stored and processed.
    new_name = dict(rita.document(), name="Rita Renamed", summary="<p>still here</p>")
    kept = [
        _activity(rita, "Delete", {"id": its_clip["object"]["id"], "type": "Tombstone"}, 1),
        _activity(rita, "Delete", comment["object"]["id"], 2),
        _activity(rita, "Undo", follow, 1),
        _activity(rita, "Undo", like, 2),
        _activity(rita, "Undo", {k: v for k, v in announce.items() if k != "to"}, 3),
        _activity(rita, "Reject", {"id": asked.uri, "type": "Follow"}, 1),
        update(rita, new_name, 1),
    ]
    for activity in kept:
        assert (await post(client, rita, activity)).status_code == 202, activity["type"]
        assert await _stored(activity), activity["type"]
    items = {i.activity_id: i for i in await process_all(settings)}
    for activity in kept:
        item = items[activity["id"]]
        assert item.state == "processed", (activity["type"], item.last_error)

    assert (await Clip.get(uri=its_clip["object"]["id"])).deleted_at is not None
    assert (await Comment.get(uri=comment["object"]["id"])).deleted_at is not None
    assert (await Clip.get(pk=clip.pk)).comments_count == 0
    assert not await Follow.filter(follower_id=rita.account.pk).exists()
    assert (await Account.get(pk=ann.pk)).followers_count == 0
    assert not await Like.filter(account_id=rita.account.pk).exists()
    assert not await Boost.filter(account_id=rita.account.pk).exists()
    fresh = await Clip.get(pk=clip.pk)
    assert (fresh.likes_count, fresh.boosts_count) == (0, 0)
    assert not await Follow.filter(follower_id=ann.pk).exists()  # rejected
    row = await Account.get(pk=rita.account.pk)
    assert (row.display_name, row.note) == ("Rita Renamed", "still here")
    assert row.suspended_at is not None and not is_remote_deleted(row)  # still suspended
    assert not await shown(client, rita)

    # Unsuspended: it works again, even with the suspension still in the door's key cache.
    peer.documents[rita.uri] = new_name  # unsuspending marks it for a refetch
    await unsuspend_account(rita.account)
    again = _activity(rita, "Like", other.uri, 3)
    assert (await post(client, rita, again)).status_code == 202
    items = {i.activity_id: i for i in await process_all(settings)}
    assert items[again["id"]].state == "processed", items[again["id"]].last_error
    assert (await Clip.get(pk=other.pk)).likes_count == 1
    assert await shown(client, rita)


async def test_an_actor_deleted_by_its_server_stays_ignored(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    """Its ``Delete`` is processed while it is suspended here; after it, nothing from it is
    stored or processed, and nothing brings it back (no Update, no unsuspension here)."""
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="mine")
    rita = await make_remote()
    its_clip = _video_note(rita, 1)
    like = _activity(rita, "Like", clip.uri, 1)
    for activity in (its_clip, like):
        assert (await post(client, rita, activity)).status_code == 202
    await process_all(settings)
    await suspend_account(rita.account)
    federation.keys.forget(rita.uri)

    gone = _activity(rita, "Delete", rita.uri, 1)
    assert (await post(client, rita, gone)).status_code == 202
    [item] = [i for i in await process_all(settings) if i.activity_id == gone["id"]]
    assert item.state == "processed", item.last_error
    row = await Account.get(pk=rita.account.pk)
    assert is_remote_deleted(row) and row.suspended
    assert (await Clip.get(uri=its_clip["object"]["id"])).deleted_at is not None

    back = update(rita, dict(rita.document(), name="Back again"), 1)
    late = [
        back,
        _activity(rita, "Undo", like, 2),
        _activity(rita, "Delete", f"{rita.uri}/statuses/9", 3),
        _activity(rita, "Like", clip.uri, 4),
    ]
    for activity in late:
        assert (await post(client, rita, activity)).status_code == 202, activity["type"]
        assert not await _stored(activity), activity["type"]
    # Passed on by a door that had its key cached: processing ignores it all the same.
    for activity in late:
        with pytest.raises(Ignored, match="deleted by its server"):
            await handle_activity(federation, activity)
    row = await Account.get(pk=rita.account.pk)
    assert is_remote_deleted(row) and row.display_name != "Back again"
    with pytest.raises(Forbidden, match="deleted by its server"):
        await unsuspend_account(row)
    assert is_remote_deleted(await Account.get(pk=rita.account.pk))
