"""Account migration: a remote account's ``Move`` to another account.

When someone moves their account (Mastodon's "move to a different account"), their old
server sends ``Move`` to its followers' servers: actor and object the old account, target the
new one. As Mastodon does (``ActivityPub::Activity::Move``, ``MoveWorker``), the move is
accepted only if the new account, fetched afresh, names the old one in its ``alsoKnownAs``
(so nobody can move someone else's followers to an account of their choosing). Then:

* the old account is marked as moved (``Account.moved_to``);
* local blocks and mutes of the old account carry over to the new one;
* each local follower of the old account follows the new one (a follow request, if it is
  locked) and stops following the old one. A follower the new account blocks, or who blocks
  it, keeps following the old account, as Mastodon's ``UnfollowFollowWorker`` leaves it.

It runs in the durable inbox item that holds the ``Move``: after a crash the item runs again,
and each step is idempotent (a follow made stays one follow, an unfollow done stays done).
"""

from __future__ import annotations

import logging
from typing import Any

from activitypub import objects
from fedisora.errors import FedisoraError
from fedisora.federation.actors import fetch_actor
from fedisora.federation.context import Federation
from fedisora.models import Account, Block, Follow, FollowState, Mute
from fedisora.services import follows

__all__ = ["MoveRefused", "apply_move"]

log = logging.getLogger("fedisora.federation")


class MoveRefused(Exception):
    """The ``Move`` is not one to act on; the message says why."""


async def apply_move(fed: Federation, actor: Account, activity: dict[str, Any]) -> int:
    """Carry out *actor*'s ``Move``; return how many local followers now follow the target.

    Raises :class:`MoveRefused` for a move that is not *actor*'s own or whose target does not
    name *actor* as an alias, and :class:`~fedisora.federation.actors.ActorError` when the
    target cannot be fetched (the inbox item is then tried again later)."""
    if objects.id_of(activity.get("object")) != actor.uri:
        raise MoveRefused("a Move of an account other than its actor")
    target_uri = objects.id_of(activity.get("target"))
    if not target_uri or target_uri.split("#", 1)[0] == actor.uri:
        raise MoveRefused("a Move without another account as its target")
    target = await fetch_actor(fed, target_uri, refresh=True)
    if target.suspended:
        raise MoveRefused(f"{target.uri} is suspended")
    if actor.uri not in (target.also_known_as or []):
        raise MoveRefused(f"{target.uri} does not name {actor.uri} in its alsoKnownAs")
    await Account.filter(pk=actor.pk).update(moved_to_id=target.pk)
    await _carry_over_blocks_and_mutes(actor, target)
    moved = 0
    followers = Follow.filter(
        target_id=actor.pk, state=FollowState.ACCEPTED, follower__domain=None
    ).order_by("id")
    for follow in await followers:
        follower = await Account.get(pk=follow.follower_id)
        try:
            await follows.follow(follower, target)
        except FedisoraError as exc:  # a block either way: stays with the old account
            log.info("%s does not follow %s to %s: %s", follower.acct, actor.uri, target.uri, exc)
            continue
        await follows.unfollow(follower, actor)
        moved += 1
    log.info("%s moved to %s: %d local followers followed", actor.uri, target.uri, moved)
    return moved


async def _carry_over_blocks_and_mutes(actor: Account, target: Account) -> None:
    """Local accounts that block or mute *actor* block or mute *target* too (Mastodon's
    ``carry_blocks_over!`` and ``carry_mutes_over!``): a move is no way around a block."""
    for block in await Block.filter(target_id=actor.pk, account__domain=None):
        await follows.block(await Account.get(pk=block.account_id), target)  # once: idempotent
    for mute in await Mute.filter(target_id=actor.pk, account__domain=None):
        await follows.mute(await Account.get(pk=mute.account_id), target)
