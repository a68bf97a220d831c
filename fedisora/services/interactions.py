"""Likes, comments and boosts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from fedisora import urls
from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.for_you.signals import note_action
from fedisora.ids import new_id
from fedisora.models import (
    Account,
    Boost,
    Clip,
    Comment,
    Like,
    Mention,
    NotificationType,
    TimelineEntry,
    Visibility,
    utcnow,
)
from fedisora.services import events, idempotency
from fedisora.services.feeds import add_to_feeds, local_follower_ids
from fedisora.services.notify import notify
from fedisora.services.posts import _render_caption
from fedisora.services.visibility import can_see_clip, can_see_comment

__all__ = [
    "MAX_COMMENT",
    "boost",
    "comment",
    "delete_comment",
    "like",
    "store_comment",
    "unboost",
    "unlike",
]

MAX_COMMENT = 1000


def _target_key(target: Clip | Comment) -> str:
    return f"{'clip' if isinstance(target, Clip) else 'comment'}:{target.pk}"


async def _check_visible(account: Account, target: Clip | Comment) -> None:
    visible = (
        await can_see_clip(account, target)
        if isinstance(target, Clip)
        else await can_see_comment(account, target)
    )
    if not visible:
        raise NotFound("that post does not exist or is not visible to you")


async def like(account: Account, target: Clip | Comment, *, uri: str | None = None) -> Like:
    """Like a clip or comment. Liking twice returns the first like (idempotent)."""
    await _check_visible(account, target)
    key = _target_key(target)
    existing = await Like.get_or_none(account_id=account.pk, target_key=key)
    if existing is not None:
        return existing
    if uri is None:
        uri = urls.current().activity(account.username, "likes")
    model = type(target)
    try:
        async with events.transaction() as conn:
            row = await Like.create(
                account=account,
                clip=target if isinstance(target, Clip) else None,
                comment=target if isinstance(target, Comment) else None,
                target_key=key,
                uri=uri,
                using_db=conn,
            )
            await model.filter(pk=target.pk).using_db(conn).update(likes_count=F("likes_count") + 1)
            await events.emit(conn, "like.created", account.pk, like_id=row.pk, target=key)
            author = await Account.get(pk=target.account_id, using_db=conn)
            await notify(
                author,
                NotificationType.FAVOURITE,
                dedupe_key=f"like:{row.pk}",
                from_account=account,
                **({"clip": target} if isinstance(target, Clip) else {"comment": target}),
            )
    except IntegrityError:  # a concurrent like of the same target by the same account
        return await Like.get(account_id=account.pk, target_key=key)
    if isinstance(target, Clip):  # For You learns from it (local accounts only)
        await note_action(account, target, "like")
    return row


async def unlike(account: Account, target: Clip | Comment) -> bool:
    key = _target_key(target)
    row = await Like.get_or_none(account_id=account.pk, target_key=key)
    if row is None:
        return False
    async with events.transaction() as conn:
        deleted = await Like.filter(pk=row.pk).using_db(conn).delete()
        if deleted:
            await (
                type(target)
                .filter(pk=target.pk, likes_count__gt=0)
                .using_db(conn)
                .update(likes_count=F("likes_count") - 1)
            )
            await events.emit(conn, "like.deleted", account.pk, like_uri=row.uri, target=key)
    if deleted and isinstance(target, Clip):
        await note_action(account, target, "unlike")
    return bool(deleted)


async def comment(
    account: Account,
    clip: Clip,
    text: str,
    *,
    parent: Comment | None = None,
    visibility: str | Visibility | None = None,
    sensitive: bool = False,
    spoiler_text: str = "",
    language: str | None = None,
    once: idempotency.Key | None = None,
) -> Comment:
    """Reply to a clip, or to a comment under it; *once*, the client's ``Idempotency-Key``,
    is stored with the comment (see :mod:`~fedisora.services.idempotency`)."""
    if not text.strip():
        raise Invalid("a comment needs some text")
    if len(text) > MAX_COMMENT:
        raise Invalid(f"comment is {len(text)} characters; the limit is {MAX_COMMENT}")
    await _check_visible(account, clip)
    if parent is not None:
        if parent.clip_id != clip.pk:
            raise Invalid("the parent comment belongs to another clip")
        await _check_visible(account, parent)
    try:
        vis = Visibility(visibility) if visibility else Visibility(clip.visibility)
    except ValueError:
        raise Invalid(f"unknown visibility {visibility!r}") from None
    content, mentioned, _tags = await _render_caption(text)
    row = Comment(
        id=new_id(),
        account=account,
        clip=clip,
        parent=parent,
        text=text,
        content=content,
        visibility=vis,
        local=account.local,
        sensitive=sensitive or bool(spoiler_text),
        spoiler_text=spoiler_text,
        language=language,
    )
    row.uri = urls.current().comment(account.username, row.id)
    row.url = row.uri
    return await store_comment(row, account, clip, parent, mentioned=mentioned, once=once)


async def store_comment(
    row: Comment,
    author: Account,
    clip: Clip,
    parent: Comment | None,
    *,
    mentioned: Sequence[Account] = (),
    once: idempotency.Key | None = None,
    then: Callable[[BaseDBAsyncClient], Awaitable[object]] | None = None,
) -> Comment:
    """Save a new comment, local or remote: mentions, counters, the ``Idempotency-Key``
    *once*, event, notifications, in one transaction; *then* runs in it last (federation
    forwards a remote reply there, exactly once).

    Callers check permissions and build the unsaved row. Used by :func:`comment` and by
    federation for remote replies.
    """
    async with events.transaction() as conn:
        await row.save(using_db=conn, force_create=True)
        if once is not None:
            await idempotency.record(conn, once, row.pk)
        for m in mentioned:
            await Mention.get_or_create(
                account=m, comment=row, target_key=f"comment:{row.pk}", using_db=conn
            )
        await Clip.filter(pk=clip.pk).using_db(conn).update(comments_count=F("comments_count") + 1)
        if parent is not None:
            await (
                Comment.filter(pk=parent.pk)
                .using_db(conn)
                .update(replies_count=F("replies_count") + 1)
            )
        await events.emit(conn, "comment.created", author.pk, comment_id=row.pk)
        recipients = {clip.account_id, *(m.pk for m in mentioned)}
        if parent is not None:
            recipients.add(parent.account_id)
        for recipient in await Account.filter(pk__in=sorted(recipients)).using_db(conn):
            await notify(
                recipient,
                NotificationType.MENTION,
                dedupe_key=f"comment:{row.pk}",
                from_account=author,
                clip=clip,
                comment=row,
            )
        if then is not None:
            await then(conn)
    await note_action(author, clip, "comment")  # For You (local authors only; the first one)
    return row


async def delete_comment(actor: Account, row: Comment, *, as_admin: bool = False) -> None:
    clip = await Clip.get(pk=row.clip_id)
    if row.account_id != actor.pk and clip.account_id != actor.pk and not as_admin:
        raise Forbidden("only the author, the clip's author or an admin can delete a comment")
    async with events.transaction() as conn:
        updated = (
            await Comment.filter(pk=row.pk, deleted_at=None)
            .using_db(conn)
            .update(deleted_at=utcnow(), text="", content="")
        )
        if not updated:
            return
        await (
            Clip.filter(pk=row.clip_id, comments_count__gt=0)
            .using_db(conn)
            .update(comments_count=F("comments_count") - 1)
        )
        if row.parent_id is not None:
            await (
                Comment.filter(pk=row.parent_id, replies_count__gt=0)
                .using_db(conn)
                .update(replies_count=F("replies_count") - 1)
            )
        await events.emit(conn, "comment.deleted", row.account_id, comment_id=row.pk, uri=row.uri)


async def boost(account: Account, clip: Clip, *, uri: str | None = None) -> Boost:
    """Share a clip with one's followers. Only public and unlisted clips can be boosted."""
    await _check_visible(account, clip)
    if clip.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        raise Forbidden("only public or unlisted clips can be boosted")
    existing = await Boost.get_or_none(account_id=account.pk, clip_id=clip.pk)
    if existing is not None:
        return existing
    if uri is None:
        uri = urls.current().activity(account.username, "boosts")
    try:
        async with events.transaction() as conn:
            row = await Boost.create(account=account, clip=clip, uri=uri, using_db=conn)
            await Clip.filter(pk=clip.pk).using_db(conn).update(boosts_count=F("boosts_count") + 1)
            followers = await local_follower_ids(account.pk, conn)
            await add_to_feeds(followers, clip.pk, conn, boosted_by_id=account.pk)
            await events.emit(conn, "boost.created", account.pk, boost_id=row.pk)
            author = await Account.get(pk=clip.account_id, using_db=conn)
            await notify(
                author,
                NotificationType.REBLOG,
                dedupe_key=f"boost:{row.pk}",
                from_account=account,
                clip=clip,
            )
    except IntegrityError:
        return await Boost.get(account_id=account.pk, clip_id=clip.pk)
    await note_action(account, clip, "boost")
    return row


async def unboost(account: Account, clip: Clip) -> bool:
    row = await Boost.get_or_none(account_id=account.pk, clip_id=clip.pk)
    if row is None:
        return False
    async with events.transaction() as conn:
        deleted = await Boost.filter(pk=row.pk).using_db(conn).delete()
        if deleted:
            await (
                Clip.filter(pk=clip.pk, boosts_count__gt=0)
                .using_db(conn)
                .update(boosts_count=F("boosts_count") - 1)
            )
            await (
                TimelineEntry.filter(clip_id=clip.pk, boosted_by_id=account.pk)
                .using_db(conn)
                .delete()
            )
            await events.emit(conn, "boost.deleted", account.pk, boost_uri=row.uri, clip_id=clip.pk)
    if deleted:
        await note_action(account, clip, "unboost")
    return bool(deleted)
