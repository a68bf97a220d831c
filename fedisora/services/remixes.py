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

from fedisora.models import Clip, QuoteState

__all__ = ["approved", "recount_remixes"]


def approved(source_local: bool) -> Q:
    """The remixes of a clip (local if *source_local*) that count as approved: those whose
    approval was recorded, and local remixes stored without a state, which were approved
    when they were posted if they quote a local clip (our own policy decided), or once they
    hold the quoted author's stamp if they quote a remote one."""
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
