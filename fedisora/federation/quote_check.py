"""FEP-044f on a third party's side: verifying the approval stamps of remote remixes.

A remote remix (a clip quoting another clip) counts as approved only once its
``quoteAuthorization`` stamp is verified (FEP-044f, "Verifying third-party quote posts";
Mastodon's ``ActivityPub::VerifyQuoteService``): dereferenced from the quoted clip's origin,
never taken from the sender's copy, it must be a ``QuoteAuthorization`` attributed to the
quoted clip's author, with ``interactingObject`` the remix and ``interactionTarget`` the
quoted clip. A remixer quoting their own clip needs no stamp (Mastodon's fast track).

The remix is stored at once, ``pending``; the check is a durable :class:`QuoteCheck` row
(written before the remix itself, see ``ingest._store_clip``), so a peer that is down or a
crash loses nothing. Its machine (:mod:`fedisora.federation.quote_verify`) fetches the
quoted clip when it is not known (through
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
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from fedisora.federation.provenance_check import origin_of
from fedisora.federation.rows import create_row
from fedisora.models import Account, Clip, QuoteCheck, QuoteState, utcnow
from fedisora.services import events
from fedisora.services.remixes import recount_remixes
from fedisora.work.graph import check_graph, exponential

__all__ = [
    "MAX_DEPTH",
    "QUOTE_CHECK_GRAPH",
    "REFRESH_INTERVAL",
    "REFRESH_SPREAD",
    "RETRY_SCHEDULE",
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


def rejected(current: str | None) -> QuoteState:
    """The state of a quote whose stamp turned out not to exist (Mastodon's ``reject!``):
    an accepted quote is revoked, a revoked one stays so, any other is rejected."""
    if current in (QuoteState.ACCEPTED, QuoteState.REVOKED):
        return QuoteState.REVOKED
    return QuoteState.REJECTED


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
