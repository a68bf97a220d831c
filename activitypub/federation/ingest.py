"""Applying received activities through the services.

The signer has been checked to be the activity's actor before anything is stored. Here each
activity is checked against what it touches: an object must be on its author's host and
attributed to the actor, an Accept must come from the account that was followed, an Undo or
Delete may only remove the actor's own things. Anything else is :class:`Ignored`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from activitypub import objects
from activitypub.federation.actors import ActorError, fetch_actor, store_actor
from activitypub.federation.context import Federation
from activitypub.federation.http import FetchError
from fedisora import urls
from fedisora.errors import FedisoraError
from fedisora.ids import new_id
from fedisora.models import (
    Account,
    Block,
    Boost,
    Clip,
    Comment,
    Follow,
    FollowState,
    Like,
    MediaFile,
    MediaKind,
    Mention,
    NotificationType,
    Visibility,
    utcnow,
)
from fedisora.services import events, follows, interactions, posts
from fedisora.services.notify import notify
from fedisora.services.text import render_html

__all__ = ["Ignored", "handle_activity", "resolve_clip"]

log = logging.getLogger("fedisora.federation")

MAX_REMOTE_VIDEO_BYTES = 100 * 1024 * 1024


class Ignored(Exception):
    """The activity is valid but has nothing for us to do; the message says why."""


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed <= utcnow() else None


async def _local_actor(uri: str | None) -> Account:
    account = await Account.get_or_none(uri=uri, domain=None) if uri else None
    if account is None or account.suspended_at is not None:
        raise Ignored(f"{uri} is not a local actor")
    return account


async def _target(uri: str | None) -> Clip | Comment:
    """A clip or comment we know (local or cached remote), by URI."""
    if uri:
        clip = await Clip.get_or_none(uri=uri, deleted_at=None)
        if clip is not None:
            return clip
        comment = await Comment.get_or_none(uri=uri, deleted_at=None)
        if comment is not None:
            return comment
    raise Ignored(f"unknown object {uri}")


async def handle_activity(fed: Federation, activity: dict[str, Any]) -> None:
    kind = activity.get("type")
    handler = _HANDLERS.get(kind if isinstance(kind, str) else "")
    if handler is None:
        raise Ignored(f"unsupported activity type {kind!r}")
    actor_uri = objects.id_of(activity.get("actor"))
    if actor_uri is None:
        raise Ignored("no actor")
    try:
        actor = await fetch_actor(fed, actor_uri)
    except ActorError as exc:
        raise FetchError(str(exc)) from exc  # transient: retried with backoff
    if actor.local:
        raise Ignored("activity of a local actor")
    try:
        await handler(fed, actor, activity)
    except FedisoraError as exc:  # the service refused (a block, not visible...)
        raise Ignored(f"{type(exc).__name__}: {exc.message}") from exc


# --- follows ---------------------------------------------------------------------------------


async def _follow(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    target = await _local_actor(objects.id_of(activity.get("object")))
    await follows.follow(actor, target, uri=activity["id"])


async def _follow_of(actor: Account, inner: Any) -> Follow:
    """The follow an Accept/Reject from *actor* (the followed account) refers to."""
    follow_uri = objects.id_of(inner)
    row = await Follow.get_or_none(uri=follow_uri, target_id=actor.pk) if follow_uri else None
    if row is None and isinstance(inner, dict):
        follower = await Account.get_or_none(uri=objects.id_of(inner.get("actor")), domain=None)
        if follower is not None:
            row = await Follow.get_or_none(follower_id=follower.pk, target_id=actor.pk)
    if row is None:
        raise Ignored("no such follow request to this actor")
    return row


async def _accept(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    inner = activity.get("object")
    if isinstance(inner, dict) and inner.get("type") not in (None, "Follow"):
        raise Ignored(f"Accept of {inner.get('type')!r}")
    row = await _follow_of(actor, inner)
    if row.state == FollowState.ACCEPTED:
        raise Ignored("follow already accepted")
    await follows.accept_follow(actor, row)


async def _reject(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    row = await _follow_of(actor, activity.get("object"))
    await follows.reject_follow(actor, row)


# --- undo ------------------------------------------------------------------------------------


async def _undo(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    inner = activity.get("object")
    inner_id = objects.id_of(inner)
    inner_type = inner.get("type") if isinstance(inner, dict) else None
    if isinstance(inner, dict) and objects.id_of(inner.get("actor")) not in (None, actor.uri):
        raise Ignored("Undo of another actor's activity")
    if inner_type in (None, "Follow"):
        row = await Follow.get_or_none(uri=inner_id, follower_id=actor.pk) if inner_id else None
        if row is None and isinstance(inner, dict):
            target = await Account.get_or_none(uri=objects.id_of(inner.get("object")))
            if target is not None:
                row = await Follow.get_or_none(follower_id=actor.pk, target_id=target.pk)
        if row is not None:
            await follows.unfollow(actor, await Account.get(pk=row.target_id))
            return
    if inner_type in (None, "Like"):
        like = await Like.get_or_none(uri=inner_id, account_id=actor.pk) if inner_id else None
        if like is None and isinstance(inner, dict):
            target = await _target(objects.id_of(inner.get("object")))
            kind = "clip" if isinstance(target, Clip) else "comment"
            like = await Like.get_or_none(account_id=actor.pk, target_key=f"{kind}:{target.pk}")
        if like is not None:
            target = await (
                Clip.get(pk=like.clip_id) if like.clip_id else Comment.get(pk=like.comment_id)
            )
            await interactions.unlike(actor, target)
            return
    if inner_type in (None, "Announce"):
        boost = await Boost.get_or_none(uri=inner_id, account_id=actor.pk) if inner_id else None
        if boost is not None:
            await interactions.unboost(actor, await Clip.get(pk=boost.clip_id))
            return
    if inner_type in (None, "Block"):
        block = await Block.get_or_none(uri=inner_id, account_id=actor.pk) if inner_id else None
        if block is None and isinstance(inner, dict):
            target = await Account.get_or_none(uri=objects.id_of(inner.get("object")))
            if target is not None:
                block = await Block.get_or_none(account_id=actor.pk, target_id=target.pk)
        if block is not None:
            await follows.unblock(actor, await Account.get(pk=block.target_id))
            return
    raise Ignored(f"nothing to undo for {inner_id}")


# --- likes, boosts, blocks -------------------------------------------------------------------


async def _like(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    target = await _target(objects.id_of(activity.get("object")))
    await interactions.like(actor, target, uri=activity["id"])


async def _announce(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    uri = objects.id_of(activity.get("object"))
    if not uri:
        raise Ignored("Announce without an object")
    clip = await resolve_clip(fed, uri)
    await interactions.boost(actor, clip, uri=activity["id"])


async def _block(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    target = await _local_actor(objects.id_of(activity.get("object")))
    await follows.block(actor, target, uri=activity["id"])


# --- create, update, delete ------------------------------------------------------------------


async def resolve_clip(fed: Federation, uri: str) -> Clip:
    """A clip by URI: known already, or fetched from its origin and stored as remote."""
    clip = await Clip.get_or_none(uri=uri)
    if clip is not None:
        if clip.deleted_at is not None:
            raise Ignored(f"{uri} was deleted")
        return clip
    try:
        final, doc = await fed.client.get_json(uri, auth=await fed.instance_auth())
    except FetchError as exc:
        if exc.status in (404, 410):
            raise Ignored(f"{uri} is gone") from exc
        raise
    if not isinstance(doc, dict) or not objects.same_origin(final, uri):
        raise Ignored(f"{uri} did not answer with an object of its origin")
    note = _parse(doc)
    if note.id != uri and not objects.same_origin(note.id, uri):
        raise Ignored(f"{uri} answered with {note.id}")
    author = await fetch_actor(fed, note.attributed_to)
    if author.local or not objects.same_origin(note.id, author.uri):
        raise Ignored(f"{note.id} is not on its author's host")
    return await _store_clip(author, note)


def _parse(obj: dict[str, Any]) -> objects.ParsedNote:
    try:
        return objects.parse_note(obj)
    except objects.InvalidObject as exc:
        raise Ignored(f"unusable object: {exc}") from exc


async def _object_of(fed: Federation, actor: Account, activity: dict[str, Any]) -> dict[str, Any]:
    obj = activity.get("object")
    if isinstance(obj, str):  # only a reference: fetch it from its origin
        if not objects.same_origin(obj, actor.uri):
            raise Ignored("object reference on another host")
        _, obj = await fed.client.get_json(obj, auth=await fed.instance_auth())
    if not isinstance(obj, dict):
        raise Ignored("no object")
    return obj


def _check_authorship(actor: Account, note: objects.ParsedNote) -> None:
    if note.attributed_to != actor.uri:
        raise Ignored(f"{note.id} is attributed to {note.attributed_to}, not the actor")
    if not objects.same_origin(note.id, actor.uri):
        raise Ignored(f"{note.id} is not on the actor's host")


async def _create(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    obj = await _object_of(fed, actor, activity)
    note = _parse(obj)
    _check_authorship(actor, note)
    if note.in_reply_to:
        await _store_comment(fed, actor, note)
    elif note.video is not None:
        if await Clip.filter(uri=note.id).exists():
            raise Ignored(f"{note.id} is known already")
        await _store_clip(actor, note)
    else:
        raise Ignored("a post without a video is not a clip")


def _visibility(note: objects.ParsedNote, author: Account) -> Visibility:
    return Visibility(objects.visibility_of(note.to, note.cc, author.followers_uri))


def _text_and_html(note: objects.ParsedNote) -> tuple[str, str]:
    text = objects.html_to_text(note.content_html)[:5000]
    content = render_html(text, tag_url=urls.current().tag, mention_url=lambda _u, _d: None)
    return text, content


async def _mentioned_locals(note: objects.ParsedNote) -> list[Account]:
    if not note.mentions:
        return []
    return await Account.filter(uri__in=list(note.mentions), domain=None, suspended_at=None)


async def _store_clip(author: Account, note: objects.ParsedNote) -> Clip:
    """Store a remote clip: shown from its own URLs, provenance unverified until checked."""
    video = note.video
    if video is None:
        raise Ignored("no video attachment")
    if video.size is not None and video.size > MAX_REMOTE_VIDEO_BYTES:
        raise Ignored(f"video of {video.size} bytes is over the limit")
    if video.ai_generated is False or note.ai_generated is False:
        raise Ignored("not AI-generated: this instance carries AI-generated video only")
    visibility = _visibility(note, author)
    text, content = _text_and_html(note)
    mentioned = await _mentioned_locals(note)
    remix_of = await Clip.get_or_none(uri=note.quote, deleted_at=None) if note.quote else None
    async with in_transaction() as conn:
        media = await MediaFile.create(
            account=author,
            kind=MediaKind.VIDEO,
            remote_url=video.url,
            remote_poster_url=video.poster_url,
            content_type=video.media_type,
            width=video.width,
            height=video.height,
            duration=video.duration,
            size=video.size,
            blurhash=video.blurhash,
            description=video.name,
            provenance={
                "state": "unverified",
                "local": False,
                "manifest_digest": note.manifest_digest,
                "ai_generated": note.ai_generated,
                "digest_multibase": video.digest_multibase,
            },
            using_db=conn,
        )
        clip = Clip(
            id=new_id(),
            account=author,
            uri=note.id,
            url=note.url or note.id,
            caption=text,
            content=content,
            language=note.language,
            visibility=visibility,
            local=False,
            sensitive=note.sensitive or bool(note.summary),
            spoiler_text=note.summary,
            media=media,
            remix_of=remix_of,
            remix_of_uri=note.quote,
            created_at=_parse_time(note.published) or utcnow(),
        )
        await clip.save(using_db=conn, force_create=True)
        await posts._attach_tags(clip, note.hashtags, conn)
        for account in mentioned:
            await Mention.get_or_create(
                account=account, clip=clip, target_key=f"clip:{clip.pk}", using_db=conn
            )
        await posts._fan_out(clip, author, mentioned, conn)
        await (
            Account.filter(pk=author.pk)
            .using_db(conn)
            .update(clips_count=F("clips_count") + 1, last_clip_at=utcnow())
        )
        if remix_of is not None:
            await (
                Clip.filter(pk=remix_of.pk)
                .using_db(conn)
                .update(remixes_count=F("remixes_count") + 1)
            )
    for account in mentioned:
        await notify(
            account,
            NotificationType.MENTION,
            dedupe_key=f"clip:{clip.pk}",
            from_account=author,
            clip=clip,
        )
    if remix_of is not None:
        source_author = await Account.get(pk=remix_of.account_id)
        await notify(
            source_author,
            NotificationType.REMIX,
            dedupe_key=f"clip:{clip.pk}",
            from_account=author,
            clip=clip,
        )
    await events.emit("clip.created", author.pk, clip_id=clip.pk)
    return clip


async def _store_comment(fed: Federation, author: Account, note: objects.ParsedNote) -> None:
    if await Comment.filter(uri=note.id).exists():
        raise Ignored(f"{note.id} is known already")
    parent_target = await _target(note.in_reply_to)
    if isinstance(parent_target, Clip):
        clip, parent = parent_target, None
    else:
        parent = parent_target
        clip = await Clip.get(pk=parent.clip_id)
    text, content = _text_and_html(note)
    if not text:
        raise Ignored("an empty comment")
    mentioned = await _mentioned_locals(note)
    async with in_transaction() as conn:
        row = Comment(
            id=new_id(),
            account=author,
            clip=clip,
            parent=parent,
            uri=note.id,
            url=note.url or note.id,
            text=text,
            content=content,
            language=note.language,
            visibility=_visibility(note, author),
            local=False,
            sensitive=note.sensitive or bool(note.summary),
            spoiler_text=note.summary,
            created_at=_parse_time(note.published) or utcnow(),
        )
        await row.save(using_db=conn, force_create=True)
        for account in mentioned:
            await Mention.get_or_create(
                account=account, comment=row, target_key=f"comment:{row.pk}", using_db=conn
            )
        await Clip.filter(pk=clip.pk).using_db(conn).update(comments_count=F("comments_count") + 1)
        if parent is not None:
            await (
                Comment.filter(pk=parent.pk)
                .using_db(conn)
                .update(replies_count=F("replies_count") + 1)
            )
    recipients = {clip.account_id, *(m.pk for m in mentioned)}
    if parent is not None:
        recipients.add(parent.account_id)
    for recipient in await Account.filter(pk__in=list(recipients), domain=None):
        await notify(
            recipient,
            NotificationType.MENTION,
            dedupe_key=f"comment:{row.pk}",
            from_account=author,
            clip=clip,
            comment=row,
        )
    await events.emit("comment.created", author.pk, comment_id=row.pk)


async def _update(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    obj = activity.get("object")
    if not isinstance(obj, dict):
        raise Ignored("Update without an embedded object")
    if objects.id_of(obj) == actor.uri:
        await store_actor(obj, actor.uri)
        return
    note = _parse(obj)
    _check_authorship(actor, note)
    text, content = _text_and_html(note)
    values: dict[str, Any] = {
        "content": content,
        "sensitive": note.sensitive or bool(note.summary),
        "spoiler_text": note.summary,
        "edited_at": utcnow(),
    }
    clip = await Clip.get_or_none(uri=note.id, account_id=actor.pk, deleted_at=None)
    if clip is not None:
        await Clip.filter(pk=clip.pk).update(caption=text, **values)
        await events.emit("clip.updated", actor.pk, clip_id=clip.pk)
        return
    comment = await Comment.get_or_none(uri=note.id, account_id=actor.pk, deleted_at=None)
    if comment is not None:
        await Comment.filter(pk=comment.pk).update(text=text, **values)
        return
    raise Ignored(f"update of unknown object {note.id}")


async def _delete(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    uri = objects.id_of(activity.get("object"))
    if uri == actor.uri:
        await _delete_actor(actor)
        return
    clip = await Clip.get_or_none(uri=uri, account_id=actor.pk) if uri else None
    if clip is not None:
        await posts.delete_clip(actor, clip)
        return
    comment = await Comment.get_or_none(uri=uri, account_id=actor.pk) if uri else None
    if comment is not None:
        await interactions.delete_comment(actor, comment)
        return
    raise Ignored(f"delete of unknown object {uri}")


async def _delete_actor(actor: Account) -> None:
    """A remote account is gone: its follows end (with counts), its clips become tombstones."""
    for row in await Follow.filter(follower_id=actor.pk):
        await follows.unfollow(actor, await Account.get(pk=row.target_id))
    for row in await Follow.filter(target_id=actor.pk):
        await follows._remove(row, "follow.deleted", actor.pk)
    for clip in await Clip.filter(account_id=actor.pk, deleted_at=None):
        await posts.delete_clip(actor, clip)
    await Account.filter(pk=actor.pk).update(suspended_at=utcnow())


_HANDLERS = {
    "Follow": _follow,
    "Accept": _accept,
    "Reject": _reject,
    "Undo": _undo,
    "Like": _like,
    "EmojiReact": _like,
    "Announce": _announce,
    "Block": _block,
    "Create": _create,
    "Update": _update,
    "Delete": _delete,
}
