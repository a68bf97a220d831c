"""Applying received activities through the services.

The signer has been checked to be the activity's actor before anything is stored. Here each
activity is checked against what it touches: an object must be on its author's host and
attributed to the actor, an Accept must come from the account that was followed, an Undo or
Delete may only remove the actor's own things. Anything else is :class:`Ignored`.

An actor suspended here or by its own server is handled as Mastodon handles one
(``ProcessCollectionService#suspended_actor?``): only the types of :data:`WHILE_SUSPENDED` are
processed, so that what it deletes or undoes is gone here too and its profile and keys stay
current; the inbox does not even store the others (:func:`kept_while_suspended`). They change
nothing else: an actor's ``Update`` never lifts a suspension made here. An actor its server
deleted (:func:`~fedisora.services.account_deletion.is_remote_deleted`) is ignored entirely.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from activitypub import objects
from fedisora import urls
from fedisora.errors import FedisoraError
from fedisora.federation import cameo_clips, likeness
from fedisora.federation.actors import ActorError, domain_of, fetch_actor, store_actor
from fedisora.federation.context import Federation
from fedisora.federation.delivery import enqueue, forward_reply
from fedisora.federation.http import BlockedHost, FetchError
from fedisora.federation.media_check import MAX_REMOTE_VIDEO_BYTES, request_check
from fedisora.federation.moves import MoveRefused, apply_move
from fedisora.federation.outcomes import Gone, Ignored
from fedisora.federation.quote_check import (
    rejected,
    remix_changed,
    request_verification,
    stamp_deleted,
)
from fedisora.federation.quote_stamps import quote_stamp, quoting_uri_of, uri_token
from fedisora.ids import new_id
from fedisora.models import (
    Account,
    Block,
    Boost,
    Cameo,
    Clip,
    Comment,
    Follow,
    FollowState,
    Like,
    MediaFile,
    MediaKind,
    QuoteCheck,
    QuoteState,
    Visibility,
    utcnow,
)
from fedisora.services import (
    domain_blocks,
    events,
    fingerprints,
    follows,
    interactions,
    posts,
    relays,
)
from fedisora.services.account_deletion import is_remote_deleted, mark_remote_deleted
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.remixes import notify_approved, recount_remixes
from fedisora.services.text import render_html
from fedisora.services.visibility import is_blocked

__all__ = [
    "WHILE_SUSPENDED",
    "Gone",
    "Ignored",
    "handle_activity",
    "kept_while_suspended",
    "quote_stamp",
    "quoting_uri_of",
    "resolve_clip",
    "store_admitted_clip",
]

log = logging.getLogger("fedisora.federation")


#: What a suspended actor (here or by its own server) may still send: Mastodon's
#: ``activity_allowed_while_suspended?``. Each only removes or updates what the actor already
#: has here (its clips, comments, follows, likes, boosts, its profile and keys; the ``Update``
#: by which its server lifts its own suspension); nothing new comes in while it is suspended.
WHILE_SUSPENDED = frozenset({"Update", "Delete", "Undo", "Reject"})


async def kept_while_suspended(signer: Account, kind: str) -> bool:
    """Whether the inbox stores an activity of *kind* signed by *signer*, an account it has as
    suspended here. Asked only then, so it may read the row again: *signer* can come from the
    key cache, and an activity dropped on a suspension lifted since would be lost for good."""
    account = await Account.get_or_none(pk=signer.pk)
    if account is None or is_remote_deleted(account):
        return False
    return account.suspended_at is None or kind in WHILE_SUSPENDED


def _suspension_ignores(actor: Account, kind: str | None) -> str | None:
    """Why an activity of *kind* from the remote *actor* is ignored for a suspension, if it is."""
    if is_remote_deleted(actor):
        return f"{actor.uri} was deleted by its server"
    if kind in WHILE_SUSPENDED:
        return None
    if actor.suspended_at is not None:  # the inbox may have passed it on a cached key
        return f"{actor.uri} is suspended here"
    if actor.origin_suspended_at is not None:
        return f"{actor.uri} is suspended by its server"
    return None


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
    if objects.has_unstorable(activity):  # the inbox refuses these; an item stored before may not
        raise Ignored("the activity holds a NUL or an unpaired surrogate, which cannot be stored")
    actor_uri = objects.id_of(activity.get("actor"))
    if actor_uri is None:
        raise Ignored("no actor")
    if await domain_blocks.is_blocked(domain_of(actor_uri), fed.settings):
        raise Ignored("the actor's domain is blocked here")  # stored before its block
    try:
        actor = await fetch_actor(fed, actor_uri)
    except ActorError as exc:
        if isinstance(exc.__cause__, BlockedHost):
            raise Ignored(str(exc)) from exc
        raise FetchError(str(exc)) from exc  # transient: retried with backoff
    if actor.local:
        raise Ignored("activity of a local actor")
    ignored = _suspension_ignores(actor, kind)
    if ignored is not None:
        raise Ignored(ignored)
    try:
        await handler(fed, actor, activity)
    except FedisoraError as exc:  # the service refused (a block, not visible...)
        raise Ignored(f"{type(exc).__name__}: {exc.message}") from exc
    except BlockedHost as exc:  # it needs something of a domain blocked here
        raise Ignored(str(exc)) from exc
    except ActorError as exc:
        if isinstance(exc.__cause__, BlockedHost):
            raise Ignored(str(exc)) from exc
        raise


# --- follows ---------------------------------------------------------------------------------


async def _follow(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    target = await _local_actor(objects.id_of(activity.get("object")))
    row = await follows.follow(actor, target, uri=activity["id"])
    if (
        row.state == FollowState.PENDING
        and target.username == INSTANCE_ACTOR
        and await relays.is_relay(actor)
    ):  # a LitePub relay we subscribed to follows our instance actor back
        await follows.accept_follow(target, row)


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
    if await likeness.answered(fed, actor, activity):  # of a CameoRequest
        return
    inner = activity.get("object")
    remix = await _remix_asking(actor, inner)
    if remix is not None:
        await _quote_approved(fed, actor, remix, activity)
        return
    if isinstance(inner, dict) and inner.get("type") not in (None, "Follow"):
        raise Ignored(f"Accept of {inner.get('type')!r}")
    if await relays.answered(actor, objects.id_of(inner), True):  # our Follow of a relay
        return
    row = await _follow_of(actor, inner)
    if row.state == FollowState.ACCEPTED:
        raise Ignored("follow already accepted")
    await follows.accept_follow(actor, row)


async def _reject(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    if await likeness.answered(fed, actor, activity):  # of a CameoRequest
        return
    remix = await _remix_asking(actor, activity.get("object"))
    if remix is not None:  # the source's author said no: the remix stays without a stamp
        await _set_stamp(remix, None, rejected(remix.quote_state))
        return
    if await relays.answered(actor, objects.id_of(activity.get("object")), False):
        return
    row = await _follow_of(actor, activity.get("object"))
    await follows.reject_follow(actor, row)


# --- undo ------------------------------------------------------------------------------------


async def _undo(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    inner = activity.get("object")
    inner_id = objects.id_of(inner)
    embedded = inner if isinstance(inner, dict) else None
    inner_type = embedded.get("type") if embedded else None
    if embedded and objects.id_of(embedded.get("actor")) not in (None, actor.uri):
        raise Ignored("Undo of another actor's activity")
    for kind, undo in (
        ("Follow", _undo_follow),
        ("Like", _undo_like),
        ("Announce", _undo_announce),
        ("Block", _undo_block),
    ):
        if inner_type in (None, kind) and await undo(actor, inner_id, embedded):
            return
    raise Ignored(f"nothing to undo for {inner_id}")


async def _undo_follow(actor: Account, uri: str | None, inner: dict[str, Any] | None) -> bool:
    row = await Follow.get_or_none(uri=uri, follower_id=actor.pk) if uri else None
    if row is None and uri:  # the Follow before the follower's latest one
        row = await Follow.get_or_none(previous_uri=uri, follower_id=actor.pk)
    if row is None and inner is not None:
        target = await Account.get_or_none(uri=objects.id_of(inner.get("object")))
        if target is not None:
            row = await Follow.get_or_none(follower_id=actor.pk, target_id=target.pk)
    if row is None:
        return False
    await follows.unfollow(actor, await Account.get(pk=row.target_id))
    return True


async def _undo_like(actor: Account, uri: str | None, inner: dict[str, Any] | None) -> bool:
    like = await Like.get_or_none(uri=uri, account_id=actor.pk) if uri else None
    if like is None and inner is not None:
        liked = await _target(objects.id_of(inner.get("object")))
        kind = "clip" if isinstance(liked, Clip) else "comment"
        like = await Like.get_or_none(account_id=actor.pk, target_key=f"{kind}:{liked.pk}")
    if like is None:
        return False
    target: Clip | Comment
    if like.clip_id is not None:
        target = await Clip.get(pk=like.clip_id)
    else:
        target = await Comment.get(pk=like.comment_id)
    await interactions.unlike(actor, target)
    return True


async def _undo_announce(actor: Account, uri: str | None, inner: dict[str, Any] | None) -> bool:
    boost = await Boost.get_or_none(uri=uri, account_id=actor.pk) if uri else None
    if boost is None:
        return False
    await interactions.unboost(actor, await Clip.get(pk=boost.clip_id))
    return True


async def _undo_block(actor: Account, uri: str | None, inner: dict[str, Any] | None) -> bool:
    block = await Block.get_or_none(uri=uri, account_id=actor.pk) if uri else None
    if block is None and inner is not None:
        target = await Account.get_or_none(uri=objects.id_of(inner.get("object")))
        if target is not None:
            block = await Block.get_or_none(account_id=actor.pk, target_id=target.pk)
    if block is None:
        return False
    await follows.unblock(actor, await Account.get(pk=block.target_id))
    return True


# --- likes, boosts, blocks -------------------------------------------------------------------


async def _like(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    target = await _target(objects.id_of(activity.get("object")))
    await interactions.like(actor, target, uri=activity["id"])


async def _announce(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    inner = activity.get("object")
    if await relays.is_relay(actor):
        # A relay passes on what it received: a Create (LitePub relays announce the activity)
        # or the object itself. The clip is taken from its origin, never as the relay says
        # it is, and the relay's Announce is no boost.
        if isinstance(inner, dict) and inner.get("type") == "Create":
            inner = inner.get("object")
        uri = objects.id_of(inner)
        if not uri:
            raise Ignored("a relay's Announce without an object")
        await resolve_clip(fed, uri)
        return
    uri = objects.id_of(inner)
    if not uri:
        raise Ignored("Announce without an object")
    clip = await resolve_clip(fed, uri)
    await interactions.boost(actor, clip, uri=activity["id"])


async def _block(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    target = await _local_actor(objects.id_of(activity.get("object")))
    await follows.block(actor, target, uri=activity["id"])


async def _move(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    try:
        await apply_move(fed, actor, activity)
    except MoveRefused as exc:
        raise Ignored(str(exc)) from exc


# --- create, update, delete ------------------------------------------------------------------


async def resolve_clip(fed: Federation, uri: str, *, depth: int = 0) -> Clip:
    """A clip by URI: known already, or fetched from its origin and stored as remote.

    *depth*: how many quotes away from an activity we received it is (a quoted clip's, one),
    so that a remix fetched as a quoted clip does not fetch its own source without end."""
    clip = await Clip.get_or_none(uri=uri)
    if clip is not None:
        if clip.deleted_at is not None:
            raise Gone(f"{uri} was deleted")
        return clip
    try:
        final, doc = await fed.client.get_json(uri, auth=await fed.instance_auth())
    except FetchError as exc:
        if exc.status in (404, 410):
            raise Gone(f"{uri} is gone") from exc
        raise
    if not isinstance(doc, dict) or not objects.same_origin(final, uri):
        raise Ignored(f"{uri} did not answer with an object of its origin")
    note = _parse(doc)
    if note.id != uri and not objects.same_origin(note.id, uri):
        raise Ignored(f"{uri} answered with {note.id}")
    author = await fetch_actor(fed, note.attributed_to)
    if author.local or not objects.same_origin(note.id, author.uri):
        raise Ignored(f"{note.id} is not on its author's host")
    return await _store_checked(fed, author, note, doc, depth=depth)


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
        try:
            _, obj = await fed.client.get_json(obj, auth=await fed.instance_auth())
        except FetchError as exc:
            if exc.status in (404, 410):  # its origin does not serve it: nothing to retry
                raise Gone(f"its origin does not serve the object: {exc}") from exc
            raise
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
        await _store_comment(fed, actor, note, activity)
    elif note.video is not None:
        if await Clip.filter(uri=note.id).exists():
            raise Ignored(f"{note.id} is known already")
        await _store_checked(fed, actor, note, obj)
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


async def _store_checked(
    fed: Federation,
    author: Account,
    note: objects.ParsedNote,
    obj: dict[str, Any],
    *,
    depth: int = 0,
) -> Clip:
    """Store a remote clip; one with cameos only once each consent is verified
    (:mod:`fedisora.federation.cameo_clips`): refused (:class:`Ignored`, the reason kept
    for the admin) or held for a durable check when an owner cannot be fetched now."""
    cameos: list[tuple[Account, str]] = []
    if note.cameos:
        try:
            cameos = await cameo_clips.admit(fed, author, note, obj, depth=depth)
        except cameo_clips.Held as exc:
            raise Ignored(str(exc)) from exc
    return await store_admitted_clip(author, note, obj, cameos, depth=depth)


async def store_admitted_clip(
    author: Account,
    note: objects.ParsedNote,
    obj: dict[str, Any],
    cameos: list[tuple[Account, str]],
    *,
    depth: int = 0,
) -> Clip:
    """Store the remote clip *note* whose *cameos* (owner, grant id) were verified."""
    clip = await _store_clip(author, note, stamp=objects.stamp_of(obj), depth=depth, cameos=cameos)
    if cameos:
        # Each consent was verified just now: the sweep asks again from here.
        await Cameo.filter(clip_id=clip.pk).update(checked_at=utcnow())
        await cameo_clips.record_uses(clip, cameos)
    return clip


async def _store_clip(
    author: Account,
    note: objects.ParsedNote,
    *,
    stamp: str | None = None,
    depth: int = 0,
    cameos: list[tuple[Account, str]] | None = None,
) -> Clip:
    """Store a remote clip (its video is not copied here: it plays through the media proxy
    once checked), provenance unverified until the check queued with it
    (:mod:`fedisora.federation.media_check`) has fetched its video. A remix
    (*note* quotes a clip) is ``pending`` until the check of its *stamp* queued with it
    (:mod:`fedisora.federation.quote_check`) has verified it; *depth* as for
    :func:`resolve_clip`."""
    video = note.video
    if video is None:
        raise Ignored("no video attachment")
    if video.size is not None and video.size > MAX_REMOTE_VIDEO_BYTES:
        raise Ignored(f"video of {video.size} bytes is over the limit")
    if video.ai_generated is False or note.ai_generated is False:
        raise Ignored("not AI-generated: this instance carries AI-generated video only")
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
            "reason": "not checked yet",
            "checked_at": None,
        },
    )
    quote_check: QuoteCheck | None = None
    try:
        # Queued first: if storing the clip fails, deleting the media row removes the check.
        await request_check(media, note.id, author)
        if note.quote:  # the same for the quote: a crash after this cannot lose the check
            quote_check = await request_verification(note.id, note.quote, stamp, depth=depth)
        return await _save_clip(author, note, media, stamp, cameos or [])
    except BaseException:
        # Only if the clip was not stored: an exception (a cancellation) can also come after
        # its transaction committed, while its events are handed on.
        if not await Clip.filter(media_id=media.pk).exists():
            await MediaFile.filter(pk=media.pk).delete()  # no orphan media row
            if quote_check is not None:
                await QuoteCheck.filter(pk=quote_check.pk).delete()
        raise


async def _save_clip(
    author: Account,
    note: objects.ParsedNote,
    media: MediaFile,
    stamp: str | None,
    cameos: list[tuple[Account, str]],
) -> Clip:
    text, content = _text_and_html(note)
    clip = Clip(
        id=new_id(),
        account=author,
        uri=note.id,
        url=note.url or note.id,
        caption=text,
        content=content,
        language=note.language,
        visibility=_visibility(note, author),
        local=False,
        sensitive=note.sensitive or bool(note.summary),
        spoiler_text=note.summary,
        media=media,
        remix_of=await Clip.get_or_none(uri=note.quote, deleted_at=None) if note.quote else None,
        remix_of_uri=note.quote,
        quote_authorization_uri=stamp if note.quote else None,
        quote_state=QuoteState.PENDING.value if note.quote else None,
        created_at=_parse_time(note.published) or utcnow(),
    )
    mentioned = await _mentioned_locals(note)

    async def fingerprinted(conn: BaseDBAsyncClient, stored: Clip) -> None:
        # Its fingerprint, sent with it, names it when a copy is looked up here.
        await fingerprints.store_received(
            stored, note.video.fingerprint if note.video else None, conn
        )

    return await posts.store_clip(
        clip,
        author,
        mentioned=mentioned,
        tags=note.hashtags,
        cameos=[(owner, grant) for owner, grant in cameos],
        within=fingerprinted,
    )


async def _store_comment(
    fed: Federation, author: Account, note: objects.ParsedNote, activity: dict[str, Any]
) -> None:
    if await Comment.filter(uri=note.id).exists():
        raise Ignored(f"{note.id} is known already")
    parent_target = await _target(note.in_reply_to)
    parent: Comment | None
    if isinstance(parent_target, Clip):
        clip, parent = parent_target, None
    else:
        parent = parent_target
        clip = await Clip.get(pk=parent.clip_id)
    text, content = _text_and_html(note)
    if not text:
        raise Ignored("an empty comment")
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
    mentioned = await _mentioned_locals(note)

    async def forward(conn: BaseDBAsyncClient) -> None:
        await forward_reply(conn, activity, row, clip)

    await interactions.store_comment(row, author, clip, parent, mentioned=mentioned, then=forward)


async def _update(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    obj = activity.get("object")
    if not isinstance(obj, dict):
        raise Ignored("Update without an embedded object")
    if objects.id_of(obj) == actor.uri:
        try:
            await store_actor(obj, actor.uri)
        except ActorError as exc:  # the document it sent will not read better next time
            raise Ignored(f"unusable actor document: {exc}") from exc
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
        # New or changed cameos are verified first (as a new clip's): a failing Update hides
        # the clip instead of being applied (cameo_clips.recheck_update raises Ignored).
        cameos = await cameo_clips.recheck_update(fed, actor, clip, note)
        if note.video is not None:  # a fingerprint computed after the clip's Create
            await fingerprints.store_received(clip, note.video.fingerprint)
        async with events.transaction() as conn:
            # Its quote is verified again if it changed (in a savepoint of this transaction).
            quote_changed = await remix_changed(clip, note.quote, objects.stamp_of(obj))
            shown = (clip.caption, clip.content, clip.sensitive, clip.spoiler_text)
            sent = (text, content, values["sensitive"], values["spoiler_text"])
            if not quote_changed and shown == sent and cameos is None:
                return  # the same Update again (its inbox item retried): nothing changes
            if cameos is not None:
                await cameo_clips.set_cameos(clip, cameos, conn)
            await Clip.filter(pk=clip.pk).using_db(conn).update(caption=text, **values)
            await events.emit(conn, "clip.updated", actor.pk, clip_id=clip.pk)
        if cameos:
            await cameo_clips.record_uses(clip, cameos)
        return
    comment = await Comment.get_or_none(uri=note.id, account_id=actor.pk, deleted_at=None)
    if comment is not None:
        await Comment.filter(pk=comment.pk).update(text=text, **values)
        return
    raise Ignored(f"update of unknown object {note.id}")


async def _delete(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    if cameo_clips.carries_revocation(activity):  # a likeness consent taken back
        await cameo_clips.revocation_received(fed, actor, activity)
        return
    uri = objects.id_of(activity.get("object"))
    if uri == actor.uri:
        await _delete_actor(actor)
        fed.keys.forget(actor.uri)
        return
    if uri and objects.same_origin(uri, actor.uri):
        stamped = await Clip.filter(
            quote_authorization_uri=uri, local=True, remix_of__account_id=actor.pk
        )
        if stamped:  # FEP-044f: the quoted author revoked their approval
            for remix in stamped:
                await _set_stamp(remix, None, QuoteState.REVOKED)
            return
        if await stamp_deleted(actor, uri):  # a remote remix's stamp (we are a third party)
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
    """A remote account is gone, with everything it did here (Mastodon's DeleteAccountService
    for a remote account): its follows end, its clips and comments become tombstones, its
    likes and boosts are withdrawn, every count going down with them."""
    for row in await Follow.filter(follower_id=actor.pk):
        await follows.unfollow(actor, await Account.get(pk=row.target_id))
    for row in await Follow.filter(target_id=actor.pk):
        await follows._remove(row, "follow.deleted", actor.pk)
    for clip in await Clip.filter(account_id=actor.pk, deleted_at=None):
        await posts.delete_clip(actor, clip)
    for comment in await Comment.filter(account_id=actor.pk, deleted_at=None):
        await interactions.delete_comment(actor, comment)
    for like in await Like.filter(account_id=actor.pk):
        target: Clip | Comment | None = (
            await Clip.get_or_none(pk=like.clip_id)
            if like.clip_id is not None
            else await Comment.get_or_none(pk=like.comment_id)
        )
        if target is not None:
            await interactions.unlike(actor, target)
    for boost in await Boost.filter(account_id=actor.pk):
        await interactions.unboost(actor, await Clip.get(pk=boost.clip_id))
    await mark_remote_deleted(actor)  # its server ended it: nothing here brings it back


async def _quote_request(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    """FEP-044f: answer a request to quote (remix) a local clip, at once, by its policy."""

    clip = await Clip.get_or_none(uri=objects.id_of(activity.get("object")), local=True)
    if clip is None or clip.deleted_at is not None:
        raise Ignored("QuoteRequest for an unknown clip")
    quoting = objects.id_of(activity.get("instrument"))
    if not quoting or not objects.same_origin(quoting, actor.uri):
        raise Ignored("QuoteRequest without a quoting post of the actor's host")
    author = await Account.get(pk=clip.account_id)
    allowed = clip.visibility in (Visibility.PUBLIC, Visibility.UNLISTED) and not (
        await is_blocked(actor, author)
    )
    request_ref = {
        "id": activity["id"],
        "type": "QuoteRequest",
        "actor": actor.uri,
        "object": clip.uri,
        "instrument": quoting,
    }
    answer_id = f"{clip.uri}#quote_answers/{uri_token(activity['id'])}"
    if allowed:
        stamp = quote_stamp(clip, quoting)
        answer = objects.activity(
            "Accept", answer_id, author.uri, request_ref, to=[actor.uri], result=stamp
        )
        # The remix may be here already (its Create came first): approved by our own answer,
        # as Mastodon's QuoteRequest handler accepts the quote it knows.
        remix = Clip.filter(uri=quoting, local=False, remix_of_id=clip.pk, deleted_at=None)
        async with events.transaction() as conn:
            await remix.using_db(conn).update(
                quote_authorization_uri=stamp,
                quote_state=QuoteState.ACCEPTED.value,
                quote_checked_at=utcnow(),
            )
            await recount_remixes(clip.pk, conn)
            for approved in await remix.using_db(conn).only("id"):
                await notify_approved(approved.pk)
    else:
        answer = objects.activity("Reject", answer_id, author.uri, request_ref, to=[actor.uri])
    await enqueue(author, answer, [actor])


# --- our remixes of remote clips (FEP-044f, the quoting side) -------------------------------


async def _remix_asking(actor: Account, inner: Any) -> Clip | None:
    """The local remix whose QuoteRequest *inner* is (an id or an embedded request) when
    *actor* is the author of the remixed clip; None when *inner* is something else."""
    request_id = objects.id_of(inner)
    if not request_id or not request_id.endswith("#quote_request"):
        if not (isinstance(inner, dict) and inner.get("type") == "QuoteRequest"):
            return None
    remix = None
    if request_id and request_id.endswith("#quote_request"):
        remix = await Clip.get_or_none(uri=request_id.removesuffix("#quote_request"), local=True)
    if remix is None and isinstance(inner, dict):
        remix = await Clip.get_or_none(uri=objects.id_of(inner.get("instrument")), local=True)
    if remix is None or remix.remix_of_id is None:
        raise Ignored("answer to an unknown quote request")
    source = await Clip.get_or_none(pk=remix.remix_of_id)
    if source is None or source.account_id != actor.pk:
        raise Ignored("a quote request can only be answered by the quoted clip's author")
    return remix


async def _quote_approved(
    fed: Federation, actor: Account, remix: Clip, activity: dict[str, Any]
) -> None:
    """Store the approval stamp once it is dereferenced and names this remix and source."""
    stamp = objects.id_of(activity.get("result"))
    if not stamp or not objects.same_origin(stamp, actor.uri):
        raise Ignored("an Accept of a quote request needs a stamp on the author's host")
    source = await Clip.get(pk=remix.remix_of_id)
    try:
        _, doc = await fed.client.get_json(stamp, auth=await fed.instance_auth())
    except FetchError as exc:
        if exc.status in (404, 410):
            raise Ignored(f"the stamp {stamp} does not exist") from exc
        raise  # transient: the InboxItem is retried
    expected = {
        "type": "QuoteAuthorization",
        "attributedTo": actor.uri,
        "interactingObject": remix.uri,
        "interactionTarget": source.uri,
    }
    if not isinstance(doc, dict) or doc.get("id") != stamp:
        raise Ignored(f"{stamp} is not the stamp it claims to be")
    for key, value in expected.items():
        if objects.id_of(doc.get(key)) != value:
            raise Ignored(f"the stamp {stamp} does not authorize this remix ({key})")
    await _set_stamp(remix, stamp, QuoteState.ACCEPTED)


async def _set_stamp(remix: Clip, stamp: str | None, state: QuoteState) -> None:
    """Record the answer to a local remix's quote request. A changed stamp federates an
    ``Update`` of the remix to its audience: with the stamp once approved; without it once
    rejected or revoked, which is how third parties learn of a revocation (FEP-044f asks the
    quoting server to pass it on; Mastodon sends this Update too)."""
    if remix.quote_authorization_uri == stamp and remix.quote_state == state:
        return
    changed = remix.quote_authorization_uri != stamp
    async with events.transaction() as conn:
        await (
            Clip.filter(pk=remix.pk)
            .using_db(conn)
            .update(quote_authorization_uri=stamp, quote_state=state.value)
        )
        await recount_remixes(remix.remix_of_id, conn)
        await events.emit(
            conn, "clip.updated", remix.account_id, clip_id=remix.pk, quote_changed=changed
        )


# --- reports (Flag) -------------------------------------------------------------------------


async def _flag(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    """A report from another instance (Mastodon sends one from its instance actor, object
    the reported account's URI and those of the reported posts, content the comment): a
    report here about each of our accounts it names (or, naming none, about the authors of
    the posts it names), with those of the named posts that are that account's, as Mastodon
    reads a ``Flag``. One about nobody of ours is ignored."""
    from fedisora.services import domain_blocks
    from fedisora.services.reports import MAX_STATUSES, receive_report

    if actor.domain and (await domain_blocks.policy(actor.domain, fed.settings)).reject_reports:
        raise Ignored(f"reports from {actor.domain} are rejected (a domain block)")
    raw = activity.get("object")
    items = raw if isinstance(raw, list) else [raw]
    uris = [u for u in (objects.id_of(i) for i in items[: MAX_STATUSES + 20]) if u]
    accounts = {a.pk: a for a in await Account.filter(uri__in=uris, domain=None)}
    posts_named: list[Clip | Comment] = [*await Clip.filter(uri__in=uris, local=True)]
    posts_named += list(await Comment.filter(uri__in=uris, local=True))
    if not accounts:
        authors = {p.account_id for p in posts_named}
        accounts = {a.pk: a for a in await Account.filter(pk__in=authors, domain=None)}
    if not accounts:
        raise Ignored("a Flag about no account of this instance")
    content = activity.get("content")
    comment = content if isinstance(content, str) else ""
    for target in accounts.values():
        await receive_report(
            actor,
            target,
            status_ids=[p.pk for p in posts_named if p.account_id == target.pk],
            comment=comment,
            uri=objects.id_of(activity.get("id")),
        )


_HANDLERS = {
    "QuoteRequest": _quote_request,
    "CameoRequest": likeness.on_cameo_request,
    "LikenessUse": likeness.on_likeness_use,
    "Offer": likeness.on_offer,
    "Follow": _follow,
    "Accept": _accept,
    "Reject": _reject,
    "Undo": _undo,
    "Like": _like,
    "EmojiReact": _like,
    "Announce": _announce,
    "Block": _block,
    "Move": _move,
    "Create": _create,
    "Update": _update,
    "Delete": _delete,
    "Flag": _flag,
}
