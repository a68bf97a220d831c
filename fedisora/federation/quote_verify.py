"""The machine of the quote checks (:mod:`fedisora.federation.quote_check` writes their rows):
fetch the quoted clip when it is not known (through ingest's
:func:`~fedisora.federation.ingest.resolve_clip`), then the stamp, and write the verdict into
the remix's ``quote_state`` with the row's move. Apart from the rows' module because it runs
ingest, which writes those rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from activitypub import objects
from fedisora.config import Settings
from fedisora.federation.actors import ActorError
from fedisora.federation.context import Federation, get_federation
from fedisora.federation.http import FetchError, TooLarge, UnsafeURL
from fedisora.federation.ingest import resolve_clip
from fedisora.federation.outcomes import Gone, Ignored
from fedisora.federation.quote_check import MAX_DEPTH, QUOTE_CHECK_GRAPH, rejected
from fedisora.federation.quote_stamps import quote_stamp
from fedisora.models import Account, Clip, QuoteCheck, QuoteState, Visibility, utcnow
from fedisora.services import events
from fedisora.services.remixes import notify_approved, recount_remixes
from fedisora.services.visibility import is_blocked
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext

__all__ = ["machines"]

log = logging.getLogger("fedisora.federation")

#: How long a check written before its remix waits for the remix to be stored.
_REMIX_GRACE = timedelta(minutes=10)
_REMIX_WAIT = timedelta(seconds=15)


def _transient(exc: FetchError) -> bool:
    """Trouble that trying later may fix (no answer, 5xx, 408, 425, 429)."""
    if isinstance(exc, UnsafeURL | TooLarge):
        return False
    return exc.status is None or exc.status >= 500 or exc.status in (408, 425, 429)


@dataclass(frozen=True)
class _Verdict:
    state: QuoteState
    reason: str
    source: Clip | None = None  # the quoted clip, to link the remix to


async def _quoted_clip(fed: Federation, remix: Clip, row: QuoteCheck) -> Clip | _Verdict:
    """The quoted clip, fetched and stored when unknown; a verdict when there is none."""
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
