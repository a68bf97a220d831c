"""Outgoing activities: the outbox's effect writes Delivery rows, a machine sends them.

One row per inbox, and one inbox per peer host where it has a shared inbox: a clip to
10,000 followers on 500 servers is 500 rows. Each row retries with exponential backoff for
a little over two days, then fails; 4xx answers other than 401/408/429 fail at once.
Requests are signed with RFC 9421, falling back to draft-cavage on a 401 (remembered per
host by :class:`~fedisora.federation.http.SchemeMemory`). At most
:data:`PER_HOST_CONCURRENCY` requests per host run at once: in the process without Redis,
across every worker process with it (:mod:`fedisora.federation.hostcap`). A delivery that
finds its host's slots taken for a while is rescheduled a few seconds later without counting
an attempt: throttling is not the peer failing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from activitypub import integrity, objects
from activitypub.keys import load_private_key_pem
from fedisora.config import Settings
from fedisora.federation import likeness
from fedisora.federation.actors import domain_of
from fedisora.federation.context import Federation, get_federation
from fedisora.federation.delivery_graph import DELIVERY_GRAPH, RETRY_SCHEDULE
from fedisora.federation.hostcap import HostBusy, HostCap, LocalHostCap, RedisHostCap
from fedisora.federation.http import FetchError, UnsafeURL
from fedisora.federation.quote_stamps import quote_stamp
from fedisora.federation.render import actor_document, clip_note, comment_note, iso
from fedisora.federation.rows import create_row
from fedisora.ids import new_id
from fedisora.models import (
    Account,
    Block,
    Boost,
    Cameo,
    Clip,
    Comment,
    Delivery,
    Follow,
    FollowState,
    Like,
    Mention,
    Report,
    Visibility,
    utcnow,
)
from fedisora.services import domain_blocks, events, relays
from fedisora.services.events import Event
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext

__all__ = [
    "DELIVERY_GRAPH",
    "PER_HOST_CONCURRENCY",
    "RETRY_SCHEDULE",
    "delivery_stats",
    "enqueue",
    "host_cap",
    "machines",
    "on_event",
    "quote_request_id",
]

log = logging.getLogger("fedisora.federation")

PER_HOST_CONCURRENCY = 4
#: When a host's slots stay taken, the delivery is tried again this many seconds later.
THROTTLED_RETRY_SECONDS = (5.0, 15.0)
#: Hosts a process remembers as down at most (see :func:`_back_off_host`).
MAX_DOWN_HOSTS = 10_000
_local_cap = LocalHostCap(PER_HOST_CONCURRENCY)
_redis_caps: dict[str, RedisHostCap] = {}

Audience = tuple[dict[str, Any], list[Account]]


def host_cap(settings: Settings) -> HostCap:
    """The per-host request cap for *settings*: shared through Redis when there is one.

    An engine may bring its own as ``engine.context["host_cap"]`` (tests do)."""
    if not settings.redis_url:
        return _local_cap
    cap = _redis_caps.get(settings.redis_url)
    if cap is None:
        cap = _redis_caps[settings.redis_url] = RedisHostCap(
            settings.redis_url, PER_HOST_CONCURRENCY
        )
    return cap


# --- who receives what -----------------------------------------------------------------------


async def _remote_followers(account: Account) -> list[Account]:
    return await Account.filter(
        following_rel__target_id=account.pk,
        following_rel__state=FollowState.ACCEPTED,
        domain__not_isnull=True,
        suspended_at=None,
        origin_suspended_at=None,
    )


async def _remote(ids: Iterable[int]) -> list[Account]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return []
    return await Account.filter(
        pk__in=wanted, domain__not_isnull=True, suspended_at=None, origin_suspended_at=None
    )


def inboxes(recipients: Iterable[Account]) -> list[str]:
    """Each remote recipient's shared inbox (or its own), once."""
    found: dict[str, None] = {}
    for account in recipients:
        inbox = account.shared_inbox_uri or account.inbox_uri
        if inbox and not account.local:
            found.setdefault(inbox, None)
    return list(found)


async def _clip_audience(clip: Clip, author: Account) -> list[Account]:
    mentioned = [m.account_id for m in await Mention.filter(clip_id=clip.pk)]
    # The people in it (cameos) hear of it too: their instance checks and lists the use.
    extra = list(mentioned) + [c.account_id for c in await Cameo.filter(clip_id=clip.pk)]
    if clip.remix_of_id is not None and clip.visibility != Visibility.DIRECT:
        source = await Clip.get_or_none(pk=clip.remix_of_id)
        if source is not None:
            extra.append(source.account_id)
    recipients = await _remote(extra)
    if clip.visibility != Visibility.DIRECT:
        recipients += await _remote_followers(author)
    if clip.visibility == Visibility.PUBLIC:
        recipients += await relays.inboxes()  # the relays this instance subscribes to
    return recipients


async def _comment_audience(comment: Comment, author: Account) -> list[Account]:
    clip = await Clip.get(pk=comment.clip_id)
    extra = [clip.account_id] + [m.account_id for m in await Mention.filter(comment_id=comment.pk)]
    if comment.parent_id is not None:
        parent = await Comment.get_or_none(pk=comment.parent_id)
        if parent is not None:
            extra.append(parent.account_id)
    recipients = await _remote(extra)
    if comment.visibility != Visibility.DIRECT:
        recipients += await _remote_followers(author)
    return recipients


def _create(kind: str, actor: Account, note: dict[str, Any], suffix: str) -> dict[str, Any]:
    return objects.activity(
        kind,
        f"{note['id']}/{suffix}",
        actor.uri,
        {k: v for k, v in note.items() if k != "@context"},
        to=note["to"],
        cc=note["cc"],
        published=note.get("updated") or note["published"],
    )


async def _clip_created(actor: Account, data: dict[str, Any]) -> Audience | None:
    clip = await Clip.get_or_none(pk=data["clip_id"], local=True, deleted_at=None)
    if clip is None:
        return None
    note = await clip_note(clip)
    return _create("Create", actor, note, "activity"), await _clip_audience(clip, actor)


async def _clip_updated(actor: Account, data: dict[str, Any]) -> Audience | None:
    quote_changed = data.get("quote_changed")
    if quote_changed is False:
        return None  # only the remix's quote state changed here: its Note is the same
    clip = await Clip.get_or_none(pk=data["clip_id"], local=True, deleted_at=None)
    if clip is None:
        return None
    note = await clip_note(clip)
    if quote_changed:
        # Its quoteAuthorization came or went (FEP-044f): an id of its own, since a stamp
        # and its revocation may come within a second and peers drop a known activity id.
        suffix = f"updates/quote/{new_id()}"
    else:
        suffix = _update_suffix(clip, data)
    return _create("Update", actor, note, suffix), await _clip_audience(clip, actor)


def _update_suffix(row: Clip | Comment, data: dict[str, Any]) -> str:
    if data.get("fingerprint"):
        # Its fingerprint, computed after its Create (fedisora.services.fingerprints): once.
        return "updates/fingerprint"
    if data.get("moderated"):
        # A moderator marked it sensitive or an appeal lifted that (services.moderation): an
        # id of its own, since both may come within a second of each other or of an edit,
        # and peers drop a known activity id.
        return f"updates/moderation/{new_id()}"
    return f"updates/{int((row.edited_at or utcnow()).timestamp())}"


def _delete(actor: Account, uri: str, to: list[str], cc: list[str]) -> dict[str, Any]:
    return objects.activity(
        "Delete", f"{uri}#delete", actor.uri, objects.tombstone(uri), to=to, cc=cc
    )


async def _clip_deleted(actor: Account, data: dict[str, Any]) -> Audience | None:
    clip = await Clip.get_or_none(pk=data["clip_id"], local=True)
    if clip is None:
        return None
    to, cc = objects.addressing("public", actor.followers_uri or "", [])
    return _delete(actor, data["uri"], to, cc), await _clip_audience(clip, actor)


async def _comment_created(actor: Account, data: dict[str, Any]) -> Audience | None:
    comment = await Comment.get_or_none(pk=data["comment_id"], local=True, deleted_at=None)
    if comment is None:
        return None
    note = await comment_note(comment)
    return (
        _create("Create", actor, note, "activity"),
        await _comment_audience(comment, actor),
    )


async def _comment_updated(actor: Account, data: dict[str, Any]) -> Audience | None:
    """A local comment edited (:mod:`fedisora.services.comment_edits`) or its sensitive flag
    changed by a moderator: an ``Update`` of its Note to the audience of its ``Create``."""
    comment = await Comment.get_or_none(pk=data["comment_id"], local=True, deleted_at=None)
    if comment is None:
        return None
    note = await comment_note(comment)
    update = _create("Update", actor, note, _update_suffix(comment, data))
    return update, await _comment_audience(comment, actor)


async def _comment_deleted(actor: Account, data: dict[str, Any]) -> Audience | None:
    comment = await Comment.get_or_none(pk=data["comment_id"], local=True)
    if comment is None:
        return None
    to, cc = objects.addressing("public", actor.followers_uri or "", [])
    return _delete(actor, data["uri"], to, cc), await _comment_audience(comment, actor)


async def _target_of(key: str) -> Clip | Comment | None:
    kind, _, pk = key.partition(":")
    if not pk.isdigit():
        return None
    model: type[Clip] | type[Comment] = Clip if kind == "clip" else Comment
    return await model.get_or_none(pk=int(pk))


async def _like_created(actor: Account, data: dict[str, Any]) -> Audience | None:
    like = await Like.get_or_none(pk=data["like_id"])
    target = await _target_of(data["target"])
    if like is None or target is None:
        return None
    author = await _remote([target.account_id])
    return objects.activity(
        "Like", like.uri, actor.uri, target.uri, to=[a.uri for a in author]
    ), author


async def _like_deleted(actor: Account, data: dict[str, Any]) -> Audience | None:
    target = await _target_of(data["target"])
    if target is None:
        return None
    author = await _remote([target.account_id])
    inner = objects.activity("Like", data["like_uri"], actor.uri, target.uri, context=False)
    undo = objects.activity("Undo", f"{data['like_uri']}#undo", actor.uri, inner)
    return undo, author


async def _boost_audience(actor: Account, clip: Clip) -> tuple[list[str], list[str], list[Account]]:
    author = await Account.get(pk=clip.account_id)
    recipients = await _remote([clip.account_id]) + await _remote_followers(actor)
    return [objects.PUBLIC], [author.uri, actor.followers_uri or ""], recipients


async def _boost_created(actor: Account, data: dict[str, Any]) -> Audience | None:
    boost = await Boost.get_or_none(pk=data["boost_id"])
    if boost is None:
        return None
    clip = await Clip.get(pk=boost.clip_id)
    to, cc, recipients = await _boost_audience(actor, clip)
    announce = objects.activity(
        "Announce", boost.uri, actor.uri, clip.uri, to=to, cc=cc, published=iso(boost.created_at)
    )
    return announce, recipients


async def _boost_deleted(actor: Account, data: dict[str, Any]) -> Audience | None:
    clip = await Clip.get_or_none(pk=data["clip_id"])
    if clip is None:
        return None
    to, cc, recipients = await _boost_audience(actor, clip)
    inner = objects.activity("Announce", data["boost_uri"], actor.uri, clip.uri, context=False)
    undo = objects.activity("Undo", f"{data['boost_uri']}#undo", actor.uri, inner, to=to, cc=cc)
    return undo, recipients


def _follow_doc(
    row: Follow, follower: Account, target: Account, *, context: bool
) -> dict[str, Any]:
    return objects.activity("Follow", row.uri, follower.uri, target.uri, context=context)


async def _follow_requested(actor: Account, data: dict[str, Any]) -> Audience | None:
    row = await Follow.get_or_none(pk=data["follow_id"])
    if row is None or row.follower_id != actor.pk:
        return None
    target = await _remote([row.target_id])
    if not target:
        return None
    return _follow_doc(row, actor, target[0], context=True), target


async def _follow_answered(actor: Account, data: dict[str, Any], kind: str) -> Audience | None:
    if "follow_id" in data:
        row = await Follow.get_or_none(pk=data["follow_id"])
        if row is None:
            return None
        follower_id, follow_uri = row.follower_id, row.uri
    else:
        follower_id, follow_uri = data["follower_id"], data["follow_uri"]
    follower = await _remote([follower_id])
    if not follower:
        return None
    inner = objects.activity("Follow", follow_uri, follower[0].uri, actor.uri, context=False)
    answer = objects.activity(
        kind,
        # One id per Follow answered (named by it, not by the second it was answered in: two
        # Follows answered in one second got one id, and a peer that remembers ids, as Fedify
        # does, took the second Accept for the first); a retried delivery keeps it.
        f"{actor.uri}#{kind.lower()}s/{follower_id}/{_digest(follow_uri)}",
        actor.uri,
        inner,
        to=[follower[0].uri],
    )
    return answer, follower


def _digest(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:32]


async def _follow_accepted(actor: Account, data: dict[str, Any]) -> Audience | None:
    return await _follow_answered(actor, data, "Accept")


async def _follow_rejected(actor: Account, data: dict[str, Any]) -> Audience | None:
    return await _follow_answered(actor, data, "Reject")


async def _follow_deleted(actor: Account, data: dict[str, Any]) -> Audience | None:
    if data.get("follower_id") != actor.pk:
        return None  # the follower is remote: undoing is theirs to send
    target = await _remote([data["target_id"]])
    if not target:
        return None
    inner = objects.activity("Follow", data["follow_uri"], actor.uri, target[0].uri, context=False)
    return objects.activity("Undo", f"{data['follow_uri']}#undo", actor.uri, inner), target


async def _block_created(actor: Account, data: dict[str, Any]) -> Audience | None:
    row = await Block.get_or_none(pk=data["block_id"])
    if row is None or not row.uri:
        return None
    target = await _remote([row.target_id])
    if not target:
        return None
    return objects.activity("Block", row.uri, actor.uri, target[0].uri), target


async def _block_deleted(actor: Account, data: dict[str, Any]) -> Audience | None:
    target = await _remote([data["target_id"]])
    if not target or not data.get("block_uri"):
        return None
    inner = objects.activity("Block", data["block_uri"], actor.uri, target[0].uri, context=False)
    return objects.activity("Undo", f"{data['block_uri']}#undo", actor.uri, inner), target


def _actor_update(actor: Account) -> dict[str, Any]:
    """An ``Update`` carrying *actor*'s current document (the suspended one while it is
    suspended), in the actor's context so that ``publicKey`` and ``suspended`` are defined.
    Each has an id of its own: a peer drops a second activity with a known id."""
    doc = actor_document(actor)
    doc.pop("@context", None)
    update = objects.activity(
        "Update",
        f"{actor.uri}#updates/{new_id()}",
        actor.uri,
        doc,
        to=[objects.PUBLIC],
        context=False,
    )
    return objects.with_context(update, objects.ACTOR_CONTEXT)


async def _account_updated(actor: Account, data: dict[str, Any]) -> Audience | None:
    return _actor_update(actor), await _remote_followers(actor)


# --- remixes of remote clips (FEP-044f) and deleted or suspended accounts -------------------


async def _quote_requested(actor: Account, data: dict[str, Any]) -> list[Audience]:
    """A new local remix of a remote clip asks the source's author for approval."""
    clip = await Clip.get_or_none(pk=data["clip_id"], local=True, deleted_at=None)
    if clip is None or clip.remix_of_id is None or clip.visibility == Visibility.DIRECT:
        return []
    source = await Clip.get_or_none(pk=clip.remix_of_id, local=False)
    author = await _remote([source.account_id]) if source is not None else []
    if source is None or not author:
        return []
    request = objects.activity(
        "QuoteRequest",
        quote_request_id(clip),
        actor.uri,
        source.uri,
        to=[author[0].uri],
        instrument=await clip_note(clip, context=False),
    )
    return [(request, author)]


def quote_request_id(clip: Clip) -> str:
    """The id of the QuoteRequest sent for the local remix *clip*."""
    return f"{clip.uri}#quote_request"


async def _quote_authorizations_revoked(actor: Account, data: dict[str, Any]) -> list[Audience]:
    """A deleted local clip withdraws the stamps of its remote remixes: one ``Delete`` of each
    QuoteAuthorization (FEP-044f revocation) to the remix's author, who passes it on to the
    remix's audience, and to everyone we have reason to think saw the remix (FEP-044f's
    SHOULD; Mastodon's RevokeQuoteService sends it to the reach of both posts): the clip's
    followers and the remote accounts that liked, commented on or boosted it."""
    clip = await Clip.get_or_none(pk=data["clip_id"], local=True)
    if clip is None:
        return []
    remixes = await Clip.filter(remix_of_id=clip.pk, local=False)
    if not remixes:
        return []
    interacted: set[int] = set()
    for model in (Like, Comment, Boost):
        rows = await model.filter(clip_id=clip.pk).values("account_id")
        interacted.update(row["account_id"] for row in rows)
    watchers = await _remote(interacted) + await _remote_followers(actor)
    out: list[Audience] = []
    for remix in remixes:
        author = await _remote([remix.account_id])
        if not author:
            continue
        stamp = quote_stamp(clip, remix.uri)
        revoke = objects.activity(
            "Delete",
            f"{stamp}#delete",
            actor.uri,
            # Neither the remix nor the clip embedded: FEP-044f forbids it (leaks).
            {"id": stamp, "type": "QuoteAuthorization"},
            to=[author[0].uri],
            cc=[actor.followers_uri] if actor.followers_uri else [],
        )
        out.append((revoke, author + watchers))
    return out


async def _known_inboxes_of(actor: Account) -> list[Account]:
    """Everyone who should hear that *actor* is gone (its ``Delete``) or was suspended or
    unsuspended (its ``Update``): remote followers and followees, and the
    authors this account interacted with (one account per shared inbox is enough)."""
    followees = await Account.filter(
        followers_rel__follower_id=actor.pk,
        domain__not_isnull=True,
        suspended_at=None,
        origin_suspended_at=None,
    )
    return await _remote_followers(actor) + list(followees)


async def _account_deleted(actor: Account, data: dict[str, Any]) -> list[Audience]:
    """A local account deleted: ``Delete`` of the actor, signed by its (kept) key, to the
    accounts that knew it as the event recorded them (``known_ids``: its follows are gone by
    the time the event is processed), or as they are now for an event without the record."""
    delete = objects.activity(
        "Delete",
        f"{actor.uri}#delete",
        actor.uri,
        actor.uri,
        to=[objects.PUBLIC],
    )
    known = data.get("known_ids")
    if isinstance(known, list):
        return [(delete, await _remote(int(i) for i in known if isinstance(i, int)))]
    return [(delete, await _known_inboxes_of(actor))]


async def _account_suspension_changed(actor: Account, data: dict[str, Any]) -> Audience | None:
    """A local account suspended or unsuspended: Mastodon's actor ``Update`` (with
    ``suspended: true``, or the full actor again) to every inbox that knew it, the same set
    its ``Delete`` would go to."""
    if data.get("suspended") != (actor.suspended_at is not None):
        return None  # changed again since: that change's own event sends the state
    return _actor_update(actor), await _known_inboxes_of(actor)


async def _report_forwarded(actor: Account, data: dict[str, Any]) -> Audience | None:
    """A report forwarded to a remote account's instance: Mastodon's ``Flag`` from this
    instance's actor, its object the account and the reported clips and comments, its
    content the reporter's comment (the reporter is not named)."""
    report = await Report.get_or_none(pk=data["report_id"])
    if report is None or not report.forwarded or not report.uri:
        return None
    target = await _remote([report.target_account_id])
    if not target:
        return None
    ids = list(report.status_ids)
    uris = [c.uri for c in await Clip.filter(pk__in=ids).order_by("id")]
    uris += [c.uri for c in await Comment.filter(pk__in=ids).order_by("id")]
    flag = objects.activity(
        "Flag", report.uri, actor.uri, [target[0].uri, *uris], content=report.comment
    )
    return flag, target


#: Builders of further activities for an event (none, one or several each).
FORWARDED = "activity.forwarded"
"""The event of a remote activity this server forwards as received (:func:`forward_reply`)."""


async def forward_reply(
    conn: BaseDBAsyncClient, activity: dict[str, Any], comment: Comment, clip: Clip
) -> None:
    """Forward a remote reply in a thread this server holds, as received (its actor's proof
    unchanged), to the remote followers of the local clip's author and the thread's remote
    people not on the reply's own server: Mastodon's inbox forwarding, so that a thread
    reads the same everywhere. Only an activity carrying its actor's FEP-8b32 proof or
    Mastodon's ``RsaSignature2017`` Linked Data signature is forwarded (what another server
    can verify without asking us), only for a public or unlisted reply to a local clip.
    Written in *conn*, the transaction that stores the reply: it is forwarded exactly once."""
    if not clip.local or comment.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        return
    if not isinstance(activity.get("proof"), dict) and not isinstance(
        activity.get("signature"), dict
    ):
        return
    author = await Account.get(pk=clip.account_id, using_db=conn)
    people = [m.account_id for m in await Mention.filter(comment_id=comment.pk).using_db(conn)]
    if comment.parent_id is not None:
        parent = await Comment.get_or_none(pk=comment.parent_id, using_db=conn)
        if parent is not None:
            people.append(parent.account_id)
    await events.emit(
        conn,
        FORWARDED,
        author.pk,
        activity=activity,
        people=people,
        origin=domain_of(comment.uri),
    )


async def _forwarded(actor: Account, data: dict[str, Any]) -> list[Audience]:
    activity = data.get("activity")
    if not isinstance(activity, dict):
        return []
    origin = data.get("origin")
    recipients = await _remote([int(i) for i in data.get("people") or ()])
    recipients += await _remote_followers(actor)
    kept = {a.pk: a for a in recipients if a.domain != origin}
    return [(activity, list(kept.values()))] if kept else []


_MORE: dict[str, Callable[[Account, dict[str, Any]], Awaitable[list[Audience]]]] = {
    FORWARDED: _forwarded,
    "clip.created": _quote_requested,
    "clip.deleted": _quote_authorizations_revoked,
    "account.deleted": _account_deleted,
    likeness.EVENT: likeness.outbound,
}

_BUILDERS: dict[str, Callable[[Account, dict[str, Any]], Awaitable[Audience | None]]] = {
    "clip.created": _clip_created,
    "clip.updated": _clip_updated,
    "clip.deleted": _clip_deleted,
    "comment.created": _comment_created,
    "comment.updated": _comment_updated,
    "comment.deleted": _comment_deleted,
    "like.created": _like_created,
    "like.deleted": _like_deleted,
    "boost.created": _boost_created,
    "boost.deleted": _boost_deleted,
    "follow.requested": _follow_requested,
    "follow.accepted": _follow_accepted,
    "follow.rejected": _follow_rejected,
    "follow.deleted": _follow_deleted,
    "block.created": _block_created,
    "block.deleted": _block_deleted,
    "account.updated": _account_updated,
    "account.suspended": _account_suspension_changed,
    "account.unsuspended": _account_suspension_changed,
    "report.forwarded": _report_forwarded,
}

#: Events a suspended local actor still federates (everything else from it is dropped).
_WHILE_SUSPENDED = frozenset({"account.deleted", "account.suspended"})


def proven(sender: Account, activity: dict[str, Any]) -> dict[str, Any]:
    """*activity* with *sender*'s FEP-8b32 proof (``eddsa-jcs-2022`` by its Ed25519 key,
    the ``assertionMethod`` of its actor document), made once for all its inboxes: a server
    that reads proofs (Fedify) can then accept it when it reaches it by another way (a
    relay, forwarding). Unchanged when it has a proof or a Linked Data signature already
    (forwarded as received: anything added would break the signature) or the sender has no
    Ed25519 key here."""
    if "proof" in activity or "signature" in activity or "@context" not in activity:
        return activity
    if not sender.ed25519_private_pem:
        return activity
    key = load_private_key_pem(sender.ed25519_private_pem)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        return activity
    return integrity.sign_activity(activity, key, f"{sender.uri}#ed25519-key", created=utcnow())


async def enqueue(
    sender: Account,
    activity: dict[str, Any],
    recipients: Iterable[Account],
    conn: BaseDBAsyncClient | None = None,
) -> int:
    """Write one Delivery row per inbox; return how many. With *conn* (a transaction: the
    outbox's) the rows are written in it and nobody is woken, which is the caller's to do
    once it commits; without, each row wakes this process's runner. Inboxes on a domain
    this instance suspends get none (:mod:`fedisora.services.domain_blocks`)."""
    policy = await domain_blocks.current()
    targets = [i for i in inboxes(recipients) if not policy.suspends(domain_of(i))]
    if targets:
        activity = proven(sender, activity)
    if conn is None:
        for inbox in targets:
            await create_row(
                Delivery,
                DELIVERY_GRAPH.initial,
                sender=sender,
                inbox_url=inbox,
                host=domain_of(inbox),
                activity_id=activity["id"],
                payload=activity,
            )
        return len(targets)
    now = utcnow()
    await Delivery.bulk_create(
        [
            Delivery(
                sender_id=sender.pk,
                inbox_url=inbox,
                host=domain_of(inbox),
                activity_id=activity["id"],
                payload=activity,
                state=DELIVERY_GRAPH.initial,
                state_changed_at=now,
                next_attempt_at=now,
                created_at=now,
            )
            for inbox in targets
        ],
        using_db=conn,
    )
    return len(targets)


async def on_event(event: Event, conn: BaseDBAsyncClient) -> int:
    """The outbox's federation effect: a local actor's action becomes Delivery rows, written
    in *conn* (the transaction of the event's move to done). Returns how many."""
    builder = _BUILDERS.get(event.kind)
    more = _MORE.get(event.kind)
    if builder is None and more is None:
        return 0
    actor = await Account.get_or_none(pk=event.actor_id)
    if actor is None or not actor.local:
        return 0
    if actor.suspended_at is not None and event.kind not in _WHILE_SUSPENDED:
        return 0
    built: list[Audience] = []
    if builder is not None:
        one = await builder(actor, event.data)
        built += [one] if one is not None else []
    if more is not None:
        built += await more(actor, event.data)
    total = 0
    for activity, recipients in built:
        count = await enqueue(actor, activity, recipients, conn)
        if count:
            log.debug("%s by %s: %d deliveries", event.kind, actor.acct, count)
        total += count
    return total


# --- the machine -----------------------------------------------------------------------------


async def _fail(ctx: WorkContext, row: Delivery, reason: str) -> Outcome:
    async with ctx.transition(DELIVERY_GRAPH.failed) as conn:
        await Delivery.filter(pk=row.pk).using_db(conn).update(last_error=reason[:1000])
    return DELIVERY_GRAPH.failed


async def _deliver(row: Delivery, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    fed = get_federation(settings)
    sender = await Account.get_or_none(pk=row.sender_id)
    if sender is None or not sender.local:
        return await _fail(ctx, row, "the sender no longer exists")
    body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    cap: HostCap = ctx.engine.context.get("host_cap") or host_cap(settings)
    try:
        asked = ctx.now()
        # The lease is renewed while the slot is waited for and the request runs (up to
        # the slot's wait and the client's total timeout): with a lease shorter than that, a
        # live worker lost its row mid-request, and another posted the activity again.
        async with ctx.keep_lease(), cap.slot(row.host):
            down = _down_until(fed, row.host, ctx.now())
            if down is not None:
                # Claimed (or waiting for the slot) before the host was found down: wait with
                # the host rather than knock on it once more.
                return Retry(f"{row.host} is down", after=down - ctx.now(), counts=False)
            if ctx.now() - asked > timedelta(seconds=1):
                await ctx.heartbeat()  # waited for the slot: still ours? (raises if not)
            response = await fed.client.post_activity(row.inbox_url, body, fed.auth_for(sender))
    except HostBusy as exc:
        return _throttled(exc)
    except UnsafeURL as exc:
        return await _fail(ctx, row, str(exc))
    except FetchError as exc:
        if exc.status is None:  # no answer at all: the host is down, not just this request
            await _back_off_host(row, ctx, fed)
        return Retry(str(exc))
    fed.down_hosts.pop(row.host, None)  # it answered
    status = response.status_code
    if 200 <= status < 300:
        async with ctx.transition("delivered") as conn:
            await Delivery.filter(pk=row.pk).using_db(conn).update(delivered_at=utcnow())
        return "delivered"
    if status in (401, 408, 425, 429) or status >= 500:
        return Retry(f"HTTP {status}")
    return await _fail(ctx, row, f"HTTP {status}: refused by the peer")


def _throttled(busy: HostBusy) -> Retry:
    """Try again soon, without using up an attempt: throttling is not the peer failing.
    Counted, a big fan-out to one slow host would climb the backoff schedule and could even
    fail rows that never got to knock. The jitter spreads the rows' next tries apart."""
    after = timedelta(seconds=random.uniform(*THROTTLED_RETRY_SECONDS))
    return Retry(f"throttled: {busy}", after=after, counts=False)


async def _back_off_host(row: Delivery, ctx: WorkContext, fed: Federation) -> None:
    """A dead host is backed off as a whole: its other due rows wait as long as this one.

    Rows already claimed (by a batch claim ahead of time, or waiting for the host's slot)
    are not updated here; this process remembers the host as down until then, and its
    deliveries that get there skip the request (:func:`_down_until`). Another process's
    claimed rows knock once each before they learn it from their own failure."""
    later = ctx.now() + DELIVERY_GRAPH["pending"].delay(row.attempts + 1)
    if len(fed.down_hosts) >= MAX_DOWN_HOSTS:
        now = ctx.now()
        for host in [h for h, until in fed.down_hosts.items() if until <= now]:
            del fed.down_hosts[host]
        if len(fed.down_hosts) >= MAX_DOWN_HOSTS:
            del fed.down_hosts[next(iter(fed.down_hosts))]  # the oldest entry
    fed.down_hosts[row.host] = later
    await (
        Delivery.filter(
            host=row.host, state="pending", locked_until=None, next_attempt_at__lt=later
        )
        .exclude(pk=row.pk)
        .update(next_attempt_at=later)
    )


def _down_until(fed: Federation, host: str, now: datetime) -> datetime | None:
    """When *host*'s back-off ends, if this process found it down and that is still ahead."""
    until = fed.down_hosts.get(host)
    if until is None:
        return None
    if until <= now:
        del fed.down_hosts[host]
        return None
    return until


async def delivery_stats() -> list[dict[str, Any]]:
    """Delivery counts per host and state, for the admin pages (busiest hosts first)."""
    rows = (
        await Delivery.annotate(count=Count("id"))
        .group_by("host", "state")
        .order_by("-count", "host")
        .values("host", "state", "count")
    )
    return [dict(r) for r in rows]


def machines(settings: Settings) -> list[Machine]:
    return [Machine(Delivery, DELIVERY_GRAPH, {"pending": _deliver})]
