"""Follows (with manual approval), blocks and mutes."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from fedisora import urls
from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.for_you.signals import note_action
from fedisora.models import (
    Account,
    Block,
    Clip,
    Follow,
    FollowState,
    Mute,
    NotificationType,
    TimelineEntry,
    Visibility,
)
from fedisora.services import events
from fedisora.services.notify import notify
from fedisora.services.visibility import is_blocked

__all__ = [
    "NetworkPage",
    "accept_follow",
    "block",
    "follow",
    "mute",
    "network_page",
    "reject_follow",
    "remote_contacts",
    "unblock",
    "unfollow",
    "unmute",
]

BACKFILL = 40  # clips copied into a new follower's home feed


async def _count(follow: Follow, delta: int, conn: BaseDBAsyncClient) -> None:
    await (
        Account.filter(pk=follow.target_id)
        .using_db(conn)
        .update(followers_count=F("followers_count") + delta)
    )
    await (
        Account.filter(pk=follow.follower_id)
        .using_db(conn)
        .update(following_count=F("following_count") + delta)
    )


async def _backfill(follow: Follow, conn: BaseDBAsyncClient) -> None:
    follower = await Account.get(pk=follow.follower_id)
    if not follower.local:
        return
    recent = (
        await Clip.filter(
            account_id=follow.target_id,
            deleted_at=None,
            visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED, Visibility.FOLLOWERS],
        )
        .order_by("-id")
        .limit(BACKFILL)
        .values("id")
    )
    await TimelineEntry.bulk_create(
        [TimelineEntry(owner_id=follower.pk, clip_id=int(r["id"])) for r in recent],
        ignore_conflicts=True,
        using_db=conn,
    )


async def follow(follower: Account, target: Account, *, uri: str | None = None) -> Follow:
    """Follow *target*. Local unlocked targets accept at once; others stay pending.

    Following again returns the existing follow (idempotent).
    """
    if follower.pk == target.pk:
        raise Invalid("you cannot follow yourself")
    if target.suspended:
        raise NotFound("that account does not exist")
    if await is_blocked(follower, target):
        raise Forbidden("you cannot follow an account that blocks you or that you block")
    existing = await Follow.get_or_none(follower_id=follower.pk, target_id=target.pk)
    if existing is not None:
        if uri is not None and uri != existing.uri and not follower.local:
            return await _followed_again(existing, uri)
        return existing
    if uri is None:
        uri = (
            urls.current().activity(follower.username, "follows")
            if follower.local
            else f"{follower.uri}#follows/{target.pk}"
        )
    auto_accept = target.local and not target.locked
    try:
        async with events.transaction() as conn:
            row = await Follow.create(
                follower=follower,
                target=target,
                uri=uri,
                state=FollowState.ACCEPTED if auto_accept else FollowState.PENDING,
                using_db=conn,
            )
            await events.emit(conn, "follow.requested", follower.pk, follow_id=row.pk)
            if auto_accept:
                await _count(row, +1, conn)
                await _backfill(row, conn)
                await events.emit(conn, "follow.accepted", target.pk, follow_id=row.pk)
                await notify(
                    target,
                    NotificationType.FOLLOW,
                    dedupe_key=f"follow:{row.pk}",
                    from_account=follower,
                )
            elif target.local:
                await notify(
                    target,
                    NotificationType.FOLLOW_REQUEST,
                    dedupe_key=f"follow:{row.pk}",
                    from_account=follower,
                )
    except IntegrityError:
        return await Follow.get(follower_id=follower.pk, target_id=target.pk)
    await note_action(follower, target, "follow")  # For You (local followers only)
    return row


async def _followed_again(row: Follow, uri: str) -> Follow:
    """A remote follower sent a new Follow (id *uri*) while its follow stands: it lost its
    state, or our Accept was lost. As on Mastodon, the stored id becomes the new one (the
    old one is kept in ``previous_uri``: an Undo of either ends the follow) and an accepted
    follow is accepted again, so that the peer stops waiting; a pending request stays
    pending under the new id, without a second notification."""
    try:
        async with events.transaction() as conn:
            await Follow.filter(pk=row.pk).using_db(conn).update(uri=uri, previous_uri=row.uri)
            if row.state == FollowState.ACCEPTED:
                await events.emit(conn, "follow.accepted", row.target_id, follow_id=row.pk)
    except IntegrityError:
        raise Invalid("that Follow id is another follow's") from None
    return await Follow.get(pk=row.pk)


async def accept_follow(target: Account, row: Follow) -> Follow:
    """Approve a pending follow request addressed to *target*."""
    if row.target_id != target.pk:
        raise NotFound("no such follow request")
    async with events.transaction() as conn:
        updated = (
            await Follow.filter(pk=row.pk, state=FollowState.PENDING)
            .using_db(conn)
            .update(state=FollowState.ACCEPTED)
        )
        if updated:
            await _count(row, +1, conn)
            await _backfill(row, conn)
            await events.emit(conn, "follow.accepted", target.pk, follow_id=row.pk)
            follower = await Account.get(pk=row.follower_id, using_db=conn)
            await notify(
                target,
                NotificationType.FOLLOW,
                dedupe_key=f"follow:{row.pk}",
                from_account=follower,
            )
    return await Follow.get(pk=row.pk)


async def reject_follow(target: Account, row: Follow) -> None:
    if row.target_id != target.pk:
        raise NotFound("no such follow request")
    await _remove(row, "follow.rejected", target.pk)


async def _remove(row: Follow, kind: str, actor_id: int) -> None:
    async with events.transaction() as conn:
        deleted = await Follow.filter(pk=row.pk).using_db(conn).delete()
        if deleted and row.state == FollowState.ACCEPTED:
            await _count(row, -1, conn)
            await (
                TimelineEntry.filter(owner_id=row.follower_id, clip__account_id=row.target_id)
                .using_db(conn)
                .delete()
            )
        if deleted:
            await events.emit(
                conn,
                kind,
                actor_id,
                follow_uri=row.uri,
                follower_id=row.follower_id,
                target_id=row.target_id,
            )


async def remote_contacts(account_id: int, conn: BaseDBAsyncClient) -> list[int]:
    """The remote accounts that follow *account_id* or that it follows (or asked to), as
    *conn* sees them: who should hear that the account is gone."""
    followers = (
        await Follow.filter(
            target_id=account_id, state=FollowState.ACCEPTED, follower__domain__not_isnull=True
        )
        .using_db(conn)
        .values("follower_id")
    )
    followees = (
        await Follow.filter(follower_id=account_id, target__domain__not_isnull=True)
        .using_db(conn)
        .values("target_id")
    )
    ids = {int(r["follower_id"]) for r in followers} | {int(r["target_id"]) for r in followees}
    return sorted(ids)


async def unfollow(follower: Account, target: Account) -> bool:
    row = await Follow.get_or_none(follower_id=follower.pk, target_id=target.pk)
    if row is None:
        return False
    await _remove(row, "follow.deleted", follower.pk)
    await note_action(follower, target, "unfollow")
    return True


async def block(account: Account, target: Account, *, uri: str | None = None) -> Block:
    """Block *target*: follows both ways end, and neither sees the other (one transaction)."""
    if account.pk == target.pk:
        raise Invalid("you cannot block yourself")
    if uri is None and account.local:
        uri = urls.current().activity(account.username, "blocks")
    try:
        async with events.transaction() as conn:
            for a, b in ((account, target), (target, account)):
                ended = await Follow.get_or_none(follower_id=a.pk, target_id=b.pk, using_db=conn)
                if ended is not None:
                    await _remove(ended, "follow.deleted", a.pk)
            existing = await Block.get_or_none(
                account_id=account.pk, target_id=target.pk, using_db=conn
            )
            if existing is not None:
                return existing
            row = await Block.create(account=account, target=target, uri=uri, using_db=conn)
            await events.emit(conn, "block.created", account.pk, block_id=row.pk)
    except IntegrityError:
        return await Block.get(account_id=account.pk, target_id=target.pk)
    return row


async def unblock(account: Account, target: Account) -> bool:
    row = await Block.get_or_none(account_id=account.pk, target_id=target.pk)
    if row is None:
        return False
    async with events.transaction() as conn:
        if await Block.filter(pk=row.pk).using_db(conn).delete():
            await events.emit(
                conn, "block.deleted", account.pk, block_uri=row.uri, target_id=target.pk
            )
    return True


async def mute(account: Account, target: Account) -> Mute:
    if account.pk == target.pk:
        raise Invalid("you cannot mute yourself")
    row, _ = await Mute.get_or_create(account=account, target=target)
    return row


async def unmute(account: Account, target: Account) -> bool:
    return bool(await Mute.filter(account_id=account.pk, target_id=target.pk).delete())


@dataclass(frozen=True)
class NetworkPage:
    """A page of an account's followers or follows (:func:`network_page`)."""

    rows: list[Follow]
    """The follow rows, newest first: their ids are the page's cursor."""
    accounts: list[Account]
    hidden: bool = False
    """The list is not shown to this viewer (a block between them and the account)."""


async def network_page(
    viewer: Account | None,
    account: Account,
    *,
    followers: bool,
    limit: int,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
) -> NetworkPage:
    """One page of *account*'s accepted followers (or of the accounts it follows) as
    *viewer* may see it, newest follow first, suspended accounts left out and pending follow
    requests not listed. Nothing for a viewer blocked by the account or blocking it (as
    Mastodon hides the lists from an account it blocks). The API's ``/followers`` and
    ``/following`` and the profile's pages list through here."""
    from fedisora.api.pagination import Page, page_of

    if viewer is not None and viewer.pk != account.pk and await is_blocked(viewer, account):
        return NetworkPage([], [], hidden=True)
    if followers:
        query = Follow.filter(target_id=account.pk, state=FollowState.ACCEPTED)
    else:
        query = Follow.filter(follower_id=account.pk, state=FollowState.ACCEPTED)
    rows = await page_of(query, Page(max_id=max_id, since_id=since_id, min_id=min_id, limit=limit))
    ids = [r.follower_id if followers else r.target_id for r in rows]
    found = {
        a.pk: a
        for a in await Account.filter(pk__in=ids, suspended_at=None, origin_suspended_at=None)
    }
    return NetworkPage(list(rows), [found[i] for i in ids if i in found])
