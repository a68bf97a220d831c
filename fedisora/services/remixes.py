"""How many approved remixes a clip has: what Mastodon clients read as ``quotes_count``.

As Mastodon's ``Quote`` counter caches, only approved quotes count: a remix whose FEP-044f
approval is pending, rejected or revoked, or that was deleted, does not. Rather than adding
and subtracting on each of the many ways a remix's approval changes (a stamp verified,
rejected, revoked, a remix that quotes another clip after an edit...), the count is computed
again from the rows by :func:`recount_remixes`, in the transaction that made the change and
with the quoted clip's row locked (PostgreSQL), so two concurrent changes cannot leave it
stale; a change retried after a crash recounts to the same number.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from fedisora.models import Account, Clip, NotificationType, QuoteState
from fedisora.services.notify import notify

__all__ = ["approved", "notify_approved", "quote_state", "recount_remixes"]


def quote_state(remix: Clip, source_local: bool) -> str:
    """The approval state of *remix*, a remix of a clip (local if *source_local*): its stored
    :class:`~fedisora.models.QuoteState`, or, for a remix stored without one, the state its
    other columns imply. A local remix of a local clip was allowed when it was posted (our own
    policy decided), one of a remote clip once it holds the quoted author's stamp; a remote
    remix is not approved until its stamp is verified. :func:`approved` is the same rule as a
    query (``tests/fedisora/test_services.py`` holds them to each other)."""
    if remix.quote_state:
        return remix.quote_state
    if remix.local and (source_local or remix.quote_authorization_uri):
        return QuoteState.ACCEPTED.value
    return QuoteState.PENDING.value


def approved(source_local: bool) -> Q:
    """The remixes of a clip (local if *source_local*) whose :func:`quote_state` is
    ``accepted``, as a query."""
    stored = Q(quote_state=QuoteState.ACCEPTED.value)
    unrecorded = Q(quote_state__isnull=True, local=True)
    if not source_local:
        unrecorded &= Q(quote_authorization_uri__isnull=False)
    return stored | unrecorded


async def recount_remixes(source_id: int | None, conn: BaseDBAsyncClient) -> None:
    """Set the ``remixes_count`` of the clip *source_id* (None: nothing to do) to its
    approved, undeleted remixes, as seen by the transaction *conn*."""
    if source_id is None:
        return
    # Locked first, then counted in a statement of its own: a concurrent transaction that
    # changed a remix of this clip has committed by then, and the count sees its change.
    source = await Clip.filter(pk=source_id).select_for_update().using_db(conn).first()
    if source is None:
        return
    count = (
        await Clip.filter(approved(source.local), remix_of_id=source_id, deleted_at=None)
        .using_db(conn)
        .count()
    )
    if count != source.remixes_count:
        await Clip.filter(pk=source_id).using_db(conn).update(remixes_count=count)


async def notify_approved(remix_id: int) -> None:
    """Tell the local author of the clip a remote remix quotes that it is approved now.

    As Mastodon notifies of a quote once it is accepted, not while it waits: a remix the
    author's policy refuses (a followers-only clip, a blocked remixer) or that never presents
    a valid stamp notifies no one. Called after each change that can approve a remote remix;
    the remix is read again, and the notification is keyed by the remix, so it is sent once
    however many times it is approved."""
    remix = await Clip.get_or_none(pk=remix_id)
    if (
        remix is None
        or remix.local
        or remix.deleted_at is not None
        or remix.remix_of_id is None
        or remix.quote_state != QuoteState.ACCEPTED
    ):
        return
    source = await Clip.get_or_none(pk=remix.remix_of_id, local=True)
    if source is None:
        return
    author = await Account.get(pk=source.account_id)
    remixer = await Account.get(pk=remix.account_id)
    await notify(
        author,
        NotificationType.REMIX,
        dedupe_key=f"clip:{remix.pk}",
        from_account=remixer,
        clip=remix,
    )
