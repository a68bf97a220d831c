"""A remote account's ``Move``: followers, blocks and mutes go along, when the target agrees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from fedhelpers import Peer, RemoteActor, make_remote

from fedisora.api.entities import render_accounts
from fedisora.federation.actors import store_actor
from fedisora.federation.context import Federation
from fedisora.federation.ingest import Ignored, handle_activity
from fedisora.models import Account, Block, Delivery, Follow, FollowState, Mute
from fedisora.services import follows

FIXTURES = Path(__file__).parents[1] / "fixtures" / "activitypub"


def move_activity(target: str) -> dict[str, Any]:
    """Mastodon's ``Move`` of mastodon.example's alice to *target*."""
    text = (FIXTURES / "mastodon_move.json").read_text().replace("TARGET_URI", target)
    activity: dict[str, Any] = json.loads(text)
    return activity


def serve(peer: Peer, remote: RemoteActor, **extra: Any) -> None:
    """Let *peer* answer *remote*'s actor document, with *extra* properties."""
    peer.documents[remote.uri] = {**remote.document(), **extra}


async def follower_of(account: Account, target: Account) -> Follow:
    """*account* follows *target*, accepted (as after the target's Accept)."""
    row = await follows.follow(account, target)
    await Follow.filter(pk=row.pk).update(state=FollowState.ACCEPTED)
    return row


async def following(account: Account) -> dict[str, str]:
    rows = await Follow.filter(follower_id=account.pk).prefetch_related("target")
    return {row.target.uri: row.state for row in rows}


async def test_followers_blocks_and_mutes_move_to_an_account_that_names_the_old_one(
    federation: Federation, peer: Peer
) -> None:
    ann, bob, cat, dan = [await local_account(name) for name in ("ann", "bob", "cat", "dan")]
    alice = await make_remote("alice", "mastodon.example")
    new = await make_remote("alice", "new.example")
    for account in (ann, bob):
        await follower_of(account, alice.account)
    await follows.block(cat, alice.account)
    await follows.mute(dan, alice.account)
    await follows.block(new.account, bob)  # the new account blocks bob: he stays behind
    serve(peer, new, alsoKnownAs=[alice.uri])
    await Delivery.all().delete()

    await handle_activity(federation, move_activity(new.uri))

    moved = await Account.get(pk=alice.account.pk)
    assert moved.moved_to_id == new.account.pk
    entity, target = await render_accounts([moved, new.account])
    assert entity["moved"]["id"] == str(new.account.pk) and "moved" not in entity["moved"]
    assert "moved" not in target
    assert await following(ann) == {new.uri: FollowState.PENDING}  # asked, as a remote follow
    assert await following(bob) == {alice.uri: FollowState.ACCEPTED}
    assert await Block.filter(account_id=cat.pk, target_id=new.account.pk).exists()
    assert await Mute.filter(account_id=dan.pk, target_id=new.account.pk).exists()
    sent = [(d.inbox_url, d.payload["type"]) for d in await Delivery.all().order_by("id")]
    assert sorted(sent) == [
        ("https://mastodon.example/inbox", "Undo"),  # ann's follow of alice, undone
        ("https://new.example/inbox", "Block"),  # cat's block, carried over
        ("https://new.example/inbox", "Follow"),  # ann's follow of the new account
    ]

    # The same Move again (a redelivery, a retry after a crash) changes nothing more.
    await Delivery.all().delete()
    await handle_activity(federation, move_activity(new.uri))
    assert await following(ann) == {new.uri: FollowState.PENDING}
    assert await Delivery.all().count() == 0
    assert await Block.filter(account_id=cat.pk, target_id=new.account.pk).count() == 1


async def test_a_move_the_target_does_not_confirm_is_ignored(
    federation: Federation, peer: Peer
) -> None:
    ann = await local_account("ann")
    alice = await make_remote("alice", "mastodon.example")
    stranger = await make_remote("mallory", "evil.example")
    await follower_of(ann, alice.account)
    serve(peer, stranger, alsoKnownAs=["https://mastodon.example/users/someone-else"])
    with pytest.raises(Ignored, match="alsoKnownAs"):
        await handle_activity(federation, move_activity(stranger.uri))
    other = dict(move_activity(stranger.uri), object="https://mastodon.example/users/bob")
    with pytest.raises(Ignored, match="other than its actor"):
        await handle_activity(federation, other)
    with pytest.raises(Ignored, match="target"):
        await handle_activity(federation, move_activity(alice.uri))  # to itself
    assert await following(ann) == {alice.uri: FollowState.ACCEPTED}
    assert (await Account.get(pk=alice.account.pk)).moved_to_id is None


async def test_an_actor_document_records_its_aliases_and_an_undone_move(
    federation: Federation, peer: Peer
) -> None:
    alice = await make_remote("alice", "mastodon.example")
    new = await make_remote("alice", "new.example")
    serve(peer, new, alsoKnownAs=alice.uri)  # one alias, not in a list: read all the same
    await handle_activity(federation, move_activity(new.uri))
    assert (await Account.get(pk=new.account.pk)).also_known_as == [alice.uri]
    moved = {**alice.document(), "movedTo": new.uri}
    assert (await store_actor(moved, alice.uri)).moved_to_id == new.account.pk
    assert (await store_actor(alice.document(), alice.uri)).moved_to_id is None
