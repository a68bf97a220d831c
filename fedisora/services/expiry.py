"""Rows that are dead once old, deleted in bounded batches (the ``expired_rows`` chore).

Each would otherwise pile up for good: an ``Idempotency-Key`` is only looked at within
:data:`~fedisora.services.idempotency.TTL` of its post, an OAuth authorization code is
single-use and short-lived (kept a day past its expiry), and a runner's heartbeat row is
named after its process, so each restart leaves one behind (kept a week after it was last
seen; the health check looks at the last minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.models import Model
from tortoise.transactions import in_transaction

from fedisora.models import IdempotencyKey, OAuthAuthorizationCode, WorkerHeartbeat
from fedisora.services import idempotency
from fedisora.services.retention import BATCH, Fence

__all__ = ["Expiry", "delete_expired", "expiries"]


@dataclass(frozen=True)
class Expiry:
    """Rows of *model* whose *column* is more than *after* in the past are deleted."""

    model: type[Model]
    column: str
    after: timedelta


def expiries() -> list[Expiry]:
    return [
        Expiry(IdempotencyKey, "created_at", idempotency.TTL),
        Expiry(OAuthAuthorizationCode, "expires_at", timedelta(days=1)),
        Expiry(WorkerHeartbeat, "last_seen", timedelta(days=7)),
    ]


async def delete_expired(
    found: list[Expiry], *, now: datetime, fence: Fence
) -> tuple[dict[str, int], bool]:
    """One batch of each expiry: rows deleted per table, and whether a batch was full."""
    done: dict[str, int] = {}
    more = False
    for expiry in found:
        model = expiry.model
        pk = model._meta.pk_attr
        old = {f"{expiry.column}__lt": now - expiry.after}
        pks = await model.filter(**old).limit(BATCH).values_list(pk, flat=True)
        if not pks:
            continue
        async with in_transaction() as conn:
            n = await model.filter(pk__in=list(pks), **old).using_db(conn).delete()
            await fence(conn)
        if n:
            done[str(model._meta.db_table)] = n
        more = more or len(pks) == BATCH
    return done, more
