"""FEP-044f on a third party's side: verifying the approval stamps of remote remixes.

A remote remix (a clip quoting another clip) counts as approved only once its
``quoteAuthorization`` stamp is verified (FEP-044f, "Verifying third-party quote posts";
Mastodon's ``ActivityPub::VerifyQuoteService``): dereferenced from the quoted clip's origin,
never taken from the sender's copy, it must be a ``QuoteAuthorization`` attributed to the
quoted clip's author, with ``interactingObject`` the remix and ``interactionTarget`` the
quoted clip. A remixer quoting their own clip needs no stamp (Mastodon's fast track).

The remix is stored at once, ``pending``; the check is a durable :class:`QuoteCheck` row
(written before the remix itself, see ``ingest._store_clip``), so a peer that is down or a
crash loses nothing. Its machine fetches the quoted clip when it is not known (through
:func:`~fedisora.federation.ingest.resolve_clip`: the guarded client, and the remote-clip
path that queues the clip's provenance check), then the stamp, and writes the verdict into
the remix's ``quote_state`` in the same transaction as the row's move:

``pending`` -> ``checked`` (the verdict is in ``outcome``) | ``skipped`` (the remix is gone,
was never stored, or a later change made this check moot). A peer that is down, answers 5xx
or times out is retried with backoff for about a day; then the row is ``failed`` and the
remix stays ``pending``, as Mastodon leaves a quote it could not verify.

The verdicts are Mastodon's ``Quote`` states: ``accepted``; a stamp that cannot be
dereferenced (404, 410, a refused URL) rejects the quote (``revoked`` if it was accepted,
else ``rejected``: Mastodon's ``reject!``); a stamp that does not match leaves it ``pending``
(not approved, as Mastodon returns without a change); ``deleted`` when the quoted clip is gone.

Revocations: the quoted author ``Delete``s the stamp. Sent by that author, it is believed at
once (:func:`stamp_deleted`); anything else only makes us look again. The quoting server
tells its remix's audience by an ``Update`` of the remix without the stamp (a relayed
``Delete`` signed by someone else than its actor is refused by inboxes, ours and Mastodon's
without a JSON-LD signature); a third party then fetches the stamp it had accepted once
more (:func:`remix_changed`): gone means ``revoked``. An accepted stamp is also checked again
when its remix is shown a week or more after the last check (:func:`refresh_if_stale`,
FEP-044f's opportunistic re-verification, Mastodon's ``QuoteRefreshWorker``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from activitypub import objects
from fedisora.config import Settings
from fedisora.federation.actors import ActorError
from fedisora.federation.context import Federation, get_federation
from fedisora.federation.http import FetchError, TooLarge, UnsafeURL
from fedisora.federation.provenance_check import origin_of
from fedisora.federation.rows import create_row
from fedisora.models import Account, Clip, QuoteCheck, QuoteState, Visibility, utcnow
from fedisora.services import events
from fedisora.services.remixes import notify_approved, recount_remixes
from fedisora.services.visibility import is_blocked
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext
from fedisora.work.graph import check_graph, exponential

__all__ = [
    "MAX_DEPTH",
    "QUOTE_CHECK_GRAPH",
    "REFRESH_INTERVAL",
    "REFRESH_SPREAD",
    "RETRY_SCHEDULE",
    "machines",
    "refresh_if_stale",
    "rejected",
    "remix_changed",
    "request_verification",
    "stamp_deleted",
]

log = logging.getLogger("fedisora.federation")

RETRY_SCHEDULE = exponential(timedelta(seconds=30), 2.0, timedelta(hours=6), timedelta(days=1))
QUOTE_CHECK_GRAPH = check_graph("quote_check", RETRY_SCHEDULE)
#: A quoted clip that is not known is fetched for quotes this many levels deep at most (a
#: quote of a quote of...; Mastodon's MAX_SYNCHRONOUS_DEPTH): a chain of remixes cannot make
#: us crawl a server.
MAX_DEPTH = 2
#: An accepted stamp is verified again when its remix is shown this long after the last
#: check (Mastodon's Quote::BACKGROUND_REFRESH_INTERVAL) ...
REFRESH_INTERVAL = timedelta(days=7)
#: ... at a random moment within this much (Mastodon's REFRESH_DEADLINE), not all at once.
REFRESH_SPREAD = timedelta(hours=6)
#: How long a check written before its remix waits for the remix to be stored.
_REMIX_GRACE = timedelta(minutes=10)
_REMIX_WAIT = timedelta(seconds=15)


def rejected(current: str | None) -> QuoteState:
    """The state of a quote whose stamp turned out not to exist (Mastodon's ``reject!``):
    an accepted quote is revoked, a revoked one stays so, any other is rejected."""
    if current in (QuoteState.ACCEPTED, QuoteState.REVOKED):
        return QuoteState.REVOKED
    return QuoteState.REJECTED


def _transient(exc: FetchError) -> bool:
    """Trouble that trying later may fix (no answer, 5xx, 408, 425, 429)."""
    if isinstance(exc, UnsafeURL | TooLarge):
        return False
    return exc.status is None or exc.status >= 500 or exc.status in (408, 425, 429)


# --- requesting checks --------------------------------------------------------------------


async def request_verification(
    remix_uri: str,
    quoted_uri: str,
    stamp: str | None,
    *,
    depth: int = 0,
    withdrawn: bool = False,
    using_db: BaseDBAsyncClient | None = None,
) -> QuoteCheck:
    """Queue the verification of the remote remix *remix_uri* quoting *quoted_uri* with
    *stamp* (the stamp it presents; with *withdrawn*, one it presented and dropped)."""
    values: dict[str, Any] = {} if using_db is None else {"using_db": using_db}
    row: QuoteCheck = await create_row(
        QuoteCheck,
        QUOTE_CHECK_GRAPH.initial,
        remix_uri=remix_uri,
        quoted_uri=quoted_uri,
        stamp_uri=stamp,
        withdrawn=withdrawn,
        depth=depth,
        origin=origin_of(quoted_uri),
        **values,
    )
    return row


async def remix_changed(clip: Clip, quoted_uri: str | None, stamp: str | None) -> bool:
    """Apply an ``Update`` of the remote clip *clip* to its quote: a new quoted clip or stamp
    is verified from the start (Mastodon's ``ProcessStatusUpdateService#update_quote``); a
    dropped stamp that was accepted is fetched again (gone: ``revoked``). Whether anything
    changed."""
    if not quoted_uri:
        stamp = None  # a stamp without a quote authorizes nothing
    if quoted_uri == clip.remix_of_uri and stamp == clip.quote_authorization_uri:
        return False
    async with in_transaction() as conn:
        values: dict[str, Any]
        if quoted_uri != clip.remix_of_uri:  # quotes another clip now, or nothing
            source = None
            if quoted_uri:
                source = await Clip.filter(uri=quoted_uri, deleted_at=None).using_db(conn).first()
            values = {
                "remix_of_id": source.pk if source is not None else None,
                "remix_of_uri": quoted_uri,
                "quote_authorization_uri": stamp if quoted_uri else None,
                "quote_state": QuoteState.PENDING.value if quoted_uri else None,
            }
            if quoted_uri:
                await request_verification(clip.uri, quoted_uri, stamp, using_db=conn)
        elif stamp is not None and quoted_uri:  # another stamp: verified from the start
            values = {"quote_authorization_uri": stamp, "quote_state": QuoteState.PENDING.value}
            await request_verification(clip.uri, quoted_uri, stamp, using_db=conn)
        else:  # the stamp was dropped: not approved any more; revoked, if it is gone
            values = {"quote_authorization_uri": None}
            old = clip.quote_authorization_uri
            if clip.quote_state == QuoteState.ACCEPTED and old and quoted_uri:
                values["quote_state"] = QuoteState.PENDING.value
                await request_verification(clip.uri, quoted_uri, old, withdrawn=True, using_db=conn)
        await Clip.filter(pk=clip.pk).using_db(conn).update(**values)
        await recount_remixes(clip.remix_of_id, conn)  # it counted there only if approved
    return True


async def stamp_deleted(actor: Account, stamp: str) -> bool:
    """A ``Delete`` of *stamp* by *actor* reached us: remote remixes presenting it are
    revoked when *actor* is their quoted clip's author (the only one who can revoke);
    otherwise the stamp is only fetched again. Whether any remix presents it."""
    remixes = await Clip.filter(quote_authorization_uri=stamp, local=False, deleted_at=None)
    for remix in remixes:
        source = await Clip.get_or_none(pk=remix.remix_of_id) if remix.remix_of_id else None
        if source is None or source.account_id != actor.pk or not remix.remix_of_uri:
            if remix.remix_of_uri:  # not the author's word: look for ourselves
                await request_verification(remix.uri, remix.remix_of_uri, stamp)
            continue
        state = rejected(remix.quote_state)
        async with events.transaction() as conn:
            updated = (
                await Clip.filter(pk=remix.pk, quote_authorization_uri=stamp)
                .using_db(conn)
                .update(quote_state=state.value, quote_checked_at=utcnow())
            )
            await recount_remixes(source.pk, conn)
            if updated and remix.quote_state != state:
                await events.emit(conn, "clip.updated", remix.account_id, clip_id=remix.pk)
        if updated and remix.quote_state != state:
            log.info("%s: quote %s (its stamp was deleted by %s)", remix.uri, state, actor.uri)
    return bool(remixes)


async def refresh_if_stale(clips: Sequence[Clip], now: datetime | None = None) -> int:
    """Queue a new verification of the accepted stamps among *clips* (remixes being shown)
    last checked :data:`REFRESH_INTERVAL` ago or more. One query per stale remix, none
    otherwise; each is queued once (a conditional update of ``quote_checked_at``)."""
    now = now or utcnow()
    queued = 0
    for clip in clips:
        if (
            clip.local
            or clip.quote_state != QuoteState.ACCEPTED
            or not clip.remix_of_uri
            or not clip.quote_authorization_uri
            or (
                clip.quote_checked_at is not None and now - clip.quote_checked_at < REFRESH_INTERVAL
            )
        ):
            continue
        claimed = await Clip.filter(pk=clip.pk, quote_checked_at=clip.quote_checked_at).update(
            quote_checked_at=now
        )
        if not claimed:
            continue  # another request queued it
        due = now + timedelta(seconds=random.uniform(0, REFRESH_SPREAD.total_seconds()))
        await QuoteCheck.create(
            state=QUOTE_CHECK_GRAPH.initial,
            state_changed_at=now,
            next_attempt_at=due,  # found by a sweep then: no wake-up needed
            created_at=now,
            remix_uri=clip.uri,
            quoted_uri=clip.remix_of_uri,
            stamp_uri=clip.quote_authorization_uri,
            origin=origin_of(clip.remix_of_uri),
        )
        queued += 1
    return queued


# --- the machine ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Verdict:
    state: QuoteState
    reason: str
    source: Clip | None = None  # the quoted clip, to link the remix to


async def _quoted_clip(fed: Federation, remix: Clip, row: QuoteCheck) -> Clip | _Verdict:
    """The quoted clip, fetched and stored when unknown; a verdict when there is none."""
    from fedisora.federation.ingest import Gone, Ignored, resolve_clip

    source = await Clip.get_or_none(pk=remix.remix_of_id) if remix.remix_of_id else None
    source = source or await Clip.get_or_none(uri=row.quoted_uri)
    if source is not None:
        if source.deleted_at is not None:
            return _Verdict(QuoteState.DELETED, "the quoted clip was deleted")
        return source
    if row.depth >= MAX_DEPTH:
        return _Verdict(QuoteState.PENDING, "the quoted clip is not known here (not fetched)")
    try:
        return await resolve_clip(fed, row.quoted_uri, depth=row.depth + 1)
    except Gone as exc:
        return _Verdict(QuoteState.DELETED, str(exc))
    except Ignored as exc:
        return _Verdict(QuoteState.PENDING, f"the quoted object is not a clip: {exc}")
    except ActorError as exc:
        raise FetchError(str(exc)) from exc  # the author could not be fetched: retried
    except FetchError as exc:
        if _transient(exc):
            raise
        return _Verdict(QuoteState.PENDING, f"the quoted clip cannot be fetched: {exc}")


async def _judge(fed: Federation, remix: Clip, row: QuoteCheck) -> _Verdict:
    """Whether *row*'s stamp approves *remix*; :class:`FetchError` when that cannot be told
    for now (the quoted clip's server is down)."""
    found = await _quoted_clip(fed, remix, row)
    if isinstance(found, _Verdict):
        return found
    source = found
    if source.account_id == remix.account_id:
        return _Verdict(QuoteState.ACCEPTED, "a remix of the author's own clip", source)
    stamp = row.stamp_uri
    if not stamp:
        return _Verdict(QuoteState.PENDING, "no quoteAuthorization", source)
    author = await Account.get(pk=source.account_id)
    if not (objects.same_origin(stamp, source.uri) and objects.same_origin(stamp, author.uri)):
        return _Verdict(QuoteState.PENDING, f"{stamp} is not on the quoted clip's server", source)
    gone: str | None = None
    if source.local:  # our own stamp: what the stamp route would answer, without a request
        from fedisora.federation.ingest import quote_stamp

        if stamp != quote_stamp(source, remix.uri):
            return _Verdict(QuoteState.PENDING, f"{stamp} is not this remix's stamp", source)
        remixer = await Account.get(pk=remix.account_id)
        if source.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
            gone = "the quoted clip may not be remixed"
        elif await is_blocked(remixer, author):
            gone = "the quoted clip's author and the remixer block each other"
    else:
        try:
            final, doc = await fed.client.get_json(stamp, auth=await fed.instance_auth())
        except FetchError as exc:
            if _transient(exc):
                raise
            gone = f"the stamp cannot be dereferenced: {exc}"
        else:
            mismatch = objects.stamp_mismatch(
                doc, stamp=stamp, author=author.uri, quoting=remix.uri, quoted=source.uri
            )
            if mismatch is None and not objects.same_origin(final, stamp):
                mismatch = f"{stamp} redirected to another server ({final})"
            if mismatch is not None:
                return _Verdict(QuoteState.PENDING, mismatch, source)
    if gone is not None:
        if row.withdrawn:
            return _Verdict(QuoteState.REVOKED, gone, source)
        return _Verdict(rejected(remix.quote_state), gone, source)
    if row.withdrawn:  # valid, but the remix no longer presents it
        return _Verdict(QuoteState.PENDING, "the remix no longer presents its stamp", source)
    if remix.quote_state == QuoteState.REVOKED:
        return _Verdict(QuoteState.REVOKED, "this stamp was revoked before", source)
    return _Verdict(QuoteState.ACCEPTED, f"verified {stamp}", source)


def _moot(remix: Clip, row: QuoteCheck) -> str | None:
    """Why *row* no longer applies to *remix* as it is now (a later Update), if it does not."""
    if remix.remix_of_uri != row.quoted_uri:
        return "the remix quotes something else now"
    if row.withdrawn:
        if remix.quote_authorization_uri is not None:
            return "the remix presents a stamp again"
    elif remix.quote_authorization_uri != row.stamp_uri:
        return "the remix presents another stamp now"
    return None


async def _skip(ctx: WorkContext, reason: str) -> Outcome:
    await ctx.move("skipped", reason=reason[:1000])
    return "skipped"


async def _verify(row: QuoteCheck, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    remix = await Clip.get_or_none(uri=row.remix_uri)
    if remix is None:
        if ctx.now() - row.created_at < _REMIX_GRACE:  # written just before its remix
            return Retry("the remix is not stored yet", after=_REMIX_WAIT, counts=False)
        return await _skip(ctx, "the remix was never stored")
    if remix.local or remix.deleted_at is not None:
        return await _skip(ctx, "the remix was deleted")
    moot = _moot(remix, row)
    if moot is not None:
        return await _skip(ctx, moot)
    try:
        async with ctx.keep_lease():  # fetches of the stamp and the quoted clip
            verdict = await _judge(get_federation(settings), remix, row)
    except FetchError as exc:
        return Retry(str(exc))
    now = utcnow()
    # The events and the notification commit with the transition (the outer transaction).
    async with events.transaction(), ctx.transition("checked") as conn:
        await (
            QuoteCheck.filter(pk=row.pk)
            .using_db(conn)
            .update(outcome=verdict.state.value, reason=verdict.reason[:1000])
        )
        # Only while the remix still presents what was checked (an Update may have come).
        current = Clip.filter(
            pk=remix.pk,
            remix_of_uri=row.quoted_uri,
            quote_authorization_uri=None if row.withdrawn else row.stamp_uri,
        )
        await current.using_db(conn).update(quote_state=verdict.state.value, quote_checked_at=now)
        source = verdict.source
        if source is not None and source.deleted_at is None and remix.remix_of_id is None:
            await current.filter(remix_of_id=None).using_db(conn).update(remix_of_id=source.pk)
        await recount_remixes(source.pk if source is not None else remix.remix_of_id, conn)
        if verdict.state == QuoteState.ACCEPTED:
            await notify_approved(remix.pk)
        await events.emit(conn, "clip.updated", remix.account_id, clip_id=remix.pk)
    log.info("%s: quote %s (%s)", remix.uri, verdict.state.value, verdict.reason)
    return "checked"


def machines(settings: Settings) -> list[Machine]:
    return [Machine(QuoteCheck, QUOTE_CHECK_GRAPH, {"pending": _verify})]
