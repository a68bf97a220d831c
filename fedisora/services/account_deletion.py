"""Suspending, unsuspending and deleting accounts, the way Mastodon does.

A local account is in one of three states, told apart with existing columns:

==========  ================  ============  ================================================
state       ``suspended_at``  ``User`` row  its actor URL
==========  ================  ============  ================================================
active      null              present       the actor document
suspended   set               present       to ActivityPub clients the minimal actor with
                                            ``suspended: true`` (browsers 403); WebFinger
                                            still resolves it; hidden from the API and pages,
                                            no token or login works
deleted     set               absent        410 Gone with a ``Tombstone`` (WebFinger too)
==========  ================  ============  ================================================

The instance actor has no ``User`` row either but is never suspended, and remote accounts are
never deleted here (only suspended), so *local, suspended, without a User row* means deleted:
:func:`is_deleted`.

A remote account its own server deleted (an incoming ``Delete`` of the actor) keeps its row,
marked ``origin_deleted_at`` and suspended both here and by its server
(:func:`mark_remote_deleted`); :func:`is_remote_deleted` tells it from an account suspended
here, whose activities that undo or remove things are still processed (see
:mod:`fedisora.federation.ingest`). Nothing brings it back: it cannot be unsuspended here.

Suspension is reversible (:func:`unsuspend_account`); deletion is not. They federate only for
local accounts, each as one activity to every inbox that knew the account: suspending sends
Mastodon's actor ``Update`` carrying ``suspended: true`` (event ``account.suspended``),
unsuspending the full actor in an ``Update`` again (``account.unsuspended``), deleting the
``Delete`` of the actor (``account.deleted``). Each event is emitted in the transaction that
changes the state (the transactional outbox, :mod:`fedisora.services.events`): it commits or
rolls back with the change, and its Delivery rows are written when the outbox processes it.

Remote accounts have two suspensions, kept apart: ``suspended_at`` is this instance's
moderators' (nothing federates; an incoming ``Delete`` of the actor sets it too), and
``origin_suspended_at`` is their own server's, followed from the ``suspended`` flag of their
actor whenever it comes in (an ``Update`` or a fetch, see
:mod:`fedisora.federation.actors`). Either hides the account (``Account.suspended``); the
origin lifting its suspension never lifts a local moderator's, and a moderator here can lift
only their own.

:func:`delete_local_account` works in two steps:

1. One short transaction is the point of no return. It deletes the ``User`` row (the claim:
   of two concurrent deletions only the one whose DELETE removed the row goes on with this
   step), marks the account suspended, scrubs the profile, deletes its OAuth tokens and codes,
   and emits ``account.deleted``, recording in the event the remote accounts that follow it
   or that it follows: the outbox may process the event after step 2 removed those follows,
   and the actor's ``Delete`` goes to the accounts it recorded. The event commits with the
   state change, so it is recorded exactly once and cannot be lost between a commit and an
   emit.
2. Then the content goes, each kind through the service that removes it elsewhere: clips are
   tombstoned by :func:`fedisora.services.posts.delete_clip` (their URLs answer 410), comments
   by :func:`~fedisora.services.interactions.delete_comment`, likes and boosts are undone,
   follows both ways end with their counters, blocks, mutes, bookmarks, notifications and
   the home feed are deleted, live render jobs are cancelled and finished ones removed, and
   media files leave the disk. Every part is idempotent: calling this again on a deleted
   account finishes an interrupted clean-up and emits nothing.

Federation sends only the actor's ``Delete``, as Mastodon does: the per-object events of
step 2 (``clip.deleted``, ``like.deleted``, ``follow.deleted``...) come from a suspended actor,
which federation drops, while streaming still tells open clients the clips went.

Web sessions are signed cookies naming the account; every page acting for a user loads its
``User`` row, so a deleted account's cookie authenticates nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from fedisora import urls
from fedisora.config import Settings
from fedisora.errors import Conflict, Forbidden, Invalid
from fedisora.media_store import MediaStore, check_key, media_store
from fedisora.models import (
    Account,
    Block,
    Bookmark,
    Boost,
    Clip,
    Comment,
    Delivery,
    Follow,
    IdempotencyKey,
    Like,
    Marker,
    MediaFile,
    Mute,
    Notification,
    OAuthAccessToken,
    OAuthAuthorizationCode,
    RenderJob,
    TimelineEntry,
    User,
    utcnow,
)
from fedisora.services import audit, events, follows, interactions, posts
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.sessions import end_account_sessions
from fedisora.work import Engine

__all__ = [
    "AccountDeletion",
    "delete_activity_id",
    "delete_local_account",
    "disable_login",
    "is_deleted",
    "is_remote_deleted",
    "mark_remote_deleted",
    "suspend_account",
    "unsuspend_account",
]


@dataclass(frozen=True)
class AccountDeletion:
    """What a call of :func:`delete_local_account` did (for the CLI, the admin pages, logs)."""

    account_id: int
    username: str
    already_deleted: bool
    """True when the account was deleted before: this call only finished the clean-up."""
    deliveries: int
    """Delivery rows of the actor's ``Delete`` written so far (one per remote inbox that knew
    the account): all of them once the outbox processed the event, which a process without
    runners (the CLI) does before this returns."""
    clips: int
    comments: int
    likes: int
    boosts: int
    follows: int
    render_jobs_cancelled: int
    media_files: int


def delete_activity_id(account: Account) -> str:
    """The id of the ``Delete`` of *account*'s actor (as federation writes it)."""
    return f"{account.uri}#delete"


def _refuse_special(account: Account) -> None:
    if account.local and account.username == INSTANCE_ACTOR:
        raise Invalid("the instance actor cannot be suspended or deleted")


async def is_deleted(account: Account) -> bool:
    """Whether *account* is a deleted local account (see the table in the module docstring)."""
    if not account.local or account.suspended_at is None:
        return False
    return not await User.filter(account_id=account.pk).exists()


def is_remote_deleted(account: Account) -> bool:
    """Whether *account* is a remote account its own server deleted (no query: the inbox asks
    it of the signer it has in hand)."""
    return not account.local and account.origin_deleted_at is not None


async def mark_remote_deleted(account: Account) -> None:
    """Record that the remote *account*'s server deleted it (see :func:`is_remote_deleted`);
    it is suspended too, so that everything that hides suspended accounts hides it, and an
    unsuspension here does not bring it back."""
    if account.local:
        raise Invalid("only a remote account is deleted by its server")
    now = utcnow()
    await Account.filter(pk=account.pk).update(
        suspended_at=now, origin_suspended_at=now, origin_deleted_at=now
    )


async def suspend_account(account: Account, *, by: audit.Actor | None = None) -> Account:
    """Suspend *account* (local or remote) by a moderator of this instance: it disappears
    from this instance's API and pages, and its tokens stop working. The content stays until
    it is deleted; :func:`unsuspend_account` undoes this. A local account's browser sessions
    end (its tokens are refused while it is suspended, and work again if it is unsuspended).

    A local account's suspension federates as Mastodon's does: one actor ``Update`` whose
    document says ``suspended: true`` goes to every inbox that knew the account (the set its
    ``Delete`` would go to). The event ``account.suspended`` is emitted in the transaction
    that suspends it, so it commits with the state change. A remote account's suspension is
    local moderation: nothing is sent. Suspending again keeps the first suspension time and
    sends nothing.
    """
    _refuse_special(account)
    async with events.transaction() as conn:
        changed = await (
            Account.filter(pk=account.pk, suspended_at=None)
            .using_db(conn)
            .update(suspended_at=utcnow())
        )
        if changed and account.local:
            await end_account_sessions(account.pk)  # logged out everywhere
            await events.emit(conn, "account.suspended", account.pk, suspended=True)
    if changed and by is not None:
        await audit.record(by, "account.suspend", account)
    return await Account.get(pk=account.pk)


async def unsuspend_account(account: Account, *, by: audit.Actor | None = None) -> Account:
    """Lift this instance's suspension of *account* (Mastodon's ``unsuspend``).

    A local account is visible again, its tokens work again, and the full actor goes out in
    an ``Update`` (event ``account.unsuspended``) to the inboxes the suspension went to. For a
    remote account only the local moderator's suspension goes: one its own server imposed
    (``origin_suspended_at``) stays until that server lifts it, and the account is marked for
    a refetch (its server may have changed its state while the suspension here refused its
    activities). Raises :class:`Forbidden` for a deleted account (its data is gone for good;
    a remote one deleted by its server too) and for an account this instance has not suspended.
    """
    _refuse_special(account)
    async with events.transaction() as conn:
        account = await Account.filter(pk=account.pk).using_db(conn).get()
        if is_remote_deleted(account):
            raise Forbidden(f"@{account.acct} was deleted by its server: it cannot be unsuspended")
        if account.local:
            # Locks the login row against a concurrent deletion (PostgreSQL; SQLite
            # transactions run one at a time): a deleted account never comes back.
            user = await User.filter(account_id=account.pk).using_db(conn).select_for_update()
            if account.suspended_at is not None and not user:
                raise Forbidden(f"@{account.username} was deleted: it cannot be unsuspended")
        if account.suspended_at is None:
            if account.origin_suspended_at is not None:
                raise Forbidden(
                    f"@{account.acct} is suspended by its own server, not here: "
                    "only that server can lift it"
                )
            raise Forbidden(f"@{account.acct} is not suspended")
        values: dict[str, Any] = {"suspended_at": None}
        if not account.local:
            values["fetched_at"] = None  # refetched on next use (or at once by the caller)
        changed = await (
            Account.filter(pk=account.pk, suspended_at__not_isnull=True)
            .using_db(conn)
            .update(**values)
        )
        if changed and account.local:
            await events.emit(conn, "account.unsuspended", account.pk, suspended=False)
    if changed and by is not None:
        await audit.record(by, "account.unsuspend", account)
    return await Account.get(pk=account.pk)


async def disable_login(account: Account, *, by: audit.Actor | None = None) -> None:
    """Mastodon's ``disable``: the local user can no longer log in or use tokens (reversible);
    their browser sessions end."""
    if not account.local:
        raise Invalid("only local accounts have a login to disable")
    _refuse_special(account)
    await User.filter(account_id=account.pk).update(disabled=True)
    await end_account_sessions(account.pk)
    if by is not None:
        await audit.record(by, "account.disable", account)


async def delete_local_account(
    account: Account,
    *,
    settings: Settings,
    engine: Engine | None = None,
    by: audit.Actor | None = None,
) -> AccountDeletion:
    """Delete the local *account*: its login and content go, the row and username stay.

    Files are removed from the media store (:mod:`fedisora.media_store`); *engine* is the
    caller's work engine if it has one (the app's): its runners hear of cancelled render jobs
    at once. *by*, an admin (or the CLI), is written to the audit log; the owner deleting
    their own account is not moderation and passes nothing. Raises :class:`Invalid` for a
    remote account or the instance actor. See the module docstring.
    """
    account = await Account.get(pk=account.pk)
    if not account.local:
        raise Invalid("only local accounts can be deleted here; suspend remote accounts instead")
    _refuse_special(account)
    profile_files = _profile_files(account)  # read before step 1 clears the URLs
    claimed = await _mark_deleted(account)
    account = await Account.get(pk=account.pk)
    cancelled = await _cancel_render_jobs(account, settings, engine)
    clips = await _tombstone_clips(account)
    comments = await _tombstone_comments(account)
    likes, boosts = await _undo_interactions(account)
    ended = await _end_follows(account)
    await _delete_private_rows(account)
    from fedisora.services import likeness  # its reference images are private files

    await likeness.forget(account, settings=settings, engine=engine)
    media = await _delete_media(account, media_store(settings), profile_files)
    await Account.filter(pk=account.pk).update(
        followers_count=0, following_count=0, clips_count=0, last_clip_at=None
    )
    deliveries = await Delivery.filter(
        sender_id=account.pk, activity_id=delete_activity_id(account)
    ).count()
    if claimed and by is not None:
        await audit.record(by, "account.delete", account, f"{clips} clips, {comments} comments")
    return AccountDeletion(
        account_id=account.pk,
        username=account.username,
        already_deleted=not claimed,
        deliveries=deliveries,
        clips=clips,
        comments=comments,
        likes=likes,
        boosts=boosts,
        follows=ended,
        render_jobs_cancelled=cancelled,
        media_files=media,
    )


async def _mark_deleted(account: Account) -> bool:
    """Step 1, in one transaction; False if another call already did it."""
    async with events.transaction() as conn:
        if not await User.filter(account_id=account.pk).using_db(conn).delete():
            return False
        await (
            Account.filter(pk=account.pk, suspended_at=None)
            .using_db(conn)
            .update(suspended_at=utcnow())
        )
        await (
            Account.filter(pk=account.pk)
            .using_db(conn)
            .update(
                display_name="",
                note="",
                avatar_url=None,
                header_url=None,
                locked=False,
                discoverable=False,
                indexable=False,
                updated_at=utcnow(),
            )
        )
        await OAuthAccessToken.filter(account_id=account.pk).using_db(conn).delete()
        await OAuthAuthorizationCode.filter(account_id=account.pk).using_db(conn).delete()
        # Who knew the account, read before step 2 ends its follows: the Delete goes to them.
        known = await follows.remote_contacts(account.pk, conn)
        await events.emit(conn, "account.deleted", account.pk, uri=account.uri, known_ids=known)
    return True


async def _cancel_render_jobs(account: Account, settings: Settings, engine: Engine | None) -> int:
    """Cancel live render jobs; remove finished ones with their input stills.

    A job a worker holds gets ``cancel_requested`` and is cancelled by that worker at its
    next step; it is removed by the next call on this account.
    """
    from render.service import cancel_render
    from render.states import CANCELLED, FAILED, PUBLISHED

    over = (PUBLISHED, FAILED, CANCELLED)
    live = await RenderJob.filter(account_id=account.pk).exclude(state__in=over)
    if live and engine is None:
        from render.queue import build_render_machine

        # Moves need the graph, and the cancel hook this instance's media root.
        engine = Engine([build_render_machine(settings)])
    cancelled = 0
    for job in live:
        with contextlib.suppress(Conflict):  # it ended meanwhile
            await cancel_render(account, job, engine=engine)
            cancelled += 1
    finished = await RenderJob.filter(account_id=account.pk, state__in=over)
    stills = [str(j.spec.get("input_image") or "") for j in finished]
    await RenderJob.filter(pk__in=[j.pk for j in finished]).delete()
    await media_store(settings).delete(_stored_keys([s for s in stills if s]))
    return cancelled


async def _tombstone_clips(account: Account) -> int:
    count = 0
    for clip in await Clip.filter(account_id=account.pk, deleted_at=None).order_by("id"):
        await posts.delete_clip(account, clip)
        count += 1
    await Clip.filter(account_id=account.pk, pinned=True).update(pinned=False)
    return count


async def _tombstone_comments(account: Account) -> int:
    count = 0
    for row in await Comment.filter(account_id=account.pk, deleted_at=None).order_by("id"):
        await interactions.delete_comment(account, row)
        count += 1
    return count


async def _undo_interactions(account: Account) -> tuple[int, int]:
    """Unlike and unboost, so the counters of other people's posts stay right."""
    likes = 0
    for like in await Like.filter(account_id=account.pk):
        target: Clip | Comment | None = (
            await Clip.get_or_none(pk=like.clip_id)
            if like.clip_id is not None
            else await Comment.get_or_none(pk=like.comment_id)
        )
        if target is None or not await interactions.unlike(account, target):
            await Like.filter(pk=like.pk).delete()
        likes += 1
    boosts = 0
    for boost in await Boost.filter(account_id=account.pk):
        clip = await Clip.get_or_none(pk=boost.clip_id)
        if clip is None or not await interactions.unboost(account, clip):
            await Boost.filter(pk=boost.pk).delete()
        boosts += 1
    return likes, boosts


async def _end_follows(account: Account) -> int:
    """Both directions, through the follow service (counters, home feeds)."""
    ended = 0
    for row in await Follow.filter(follower_id=account.pk):
        target = await Account.get(pk=row.target_id)
        ended += int(await follows.unfollow(account, target))
    for row in await Follow.filter(target_id=account.pk):
        await follows.reject_follow(account, row)
        ended += 1
    return ended


async def _delete_private_rows(account: Account) -> None:
    pk = account.pk
    await Block.filter(Q(account_id=pk) | Q(target_id=pk)).delete()
    await Mute.filter(Q(account_id=pk) | Q(target_id=pk)).delete()
    await Bookmark.filter(account_id=pk).delete()
    await IdempotencyKey.filter(account_id=pk).delete()
    await Notification.filter(Q(recipient_id=pk) | Q(from_account_id=pk)).delete()
    await TimelineEntry.filter(owner_id=pk).delete()
    await Marker.filter(account_id=pk).delete()


async def _delete_media(account: Account, store: MediaStore, extra: list[str]) -> int:
    """The account's media rows (clips, stills, uploads) and their files, plus *extra* files.
    Files first: a store that cannot be reached fails the deletion before a row goes (run
    again, it finishes), never leaving objects no row names."""
    rows = await MediaFile.filter(account_id=account.pk)
    files = [f for m in rows for f in (m.file, m.poster_file) if f]
    await store.delete(_stored_keys(files + extra))
    await MediaFile.filter(pk__in=[m.pk for m in rows]).delete()
    return len(rows)


def _profile_files(account: Account) -> list[str]:
    """The avatar and header files (not MediaFile rows) and the previews stored beside them."""
    base = urls.current().media("")
    found: list[str] = []
    for url in (account.avatar_url, account.header_url):
        if url and url.startswith(base):
            rel = url.removeprefix(base)
            stem, dot, _ext = rel.rpartition(".")
            found += [rel, f"{stem}-small.jpg"] if dot else [rel]
    return found


def _stored_keys(relative: list[str]) -> list[str]:
    """The names that are media keys (a stored path never leaves the store; one that would
    is left alone)."""
    keys = []
    for rel in relative:
        with contextlib.suppress(ValueError):
            keys.append(check_key(rel))
    return keys
