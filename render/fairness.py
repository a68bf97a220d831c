"""Which render job runs next: priority, then fair share between users.

arq has no priorities, and a column order cannot express fairness, so the render machine
picks its due rows itself (``Machine.select_due``):

1. jobs already in flight (rendering, encoding, signing: admitted earlier, or resumed after
   a crash) before new ones, so admitted work finishes and frees its resources;
2. queued jobs by descending ``priority`` (admins' CLI renders), then by the owner's load:
   the jobs the owner has in flight plus the owner's earlier queued jobs ahead of this one
   (so users take turns, round robin), then by the GPU-seconds the owner used in the last
   24 hours (who got least goes first when turns tie), then oldest first.

So one user's ten queued jobs cannot starve another user's single job: that job's load is
0 while the first user's second job already counts one turn.

Ordering the sweep is not enough on its own: arq runs its wake-ups first come, first
served, and a runner with spare concurrency would move every queued job to ``rendering``
at once, where they would wait for the GPU in arbitrary order. So ``queued`` is also an
admission gate (:func:`admission`): a job starts rendering only while fewer than
``render_slots`` jobs render instance-wide and it is among the fairest queued jobs; the
others wait in ``queued``, where their queue position is true.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count, Sum
from tortoise.queryset import QuerySet

from fedisora.models import RenderJob, utcnow
from render.states import ACTIVE, QUEUED, RENDERING

__all__ = [
    "admission",
    "fair_order",
    "next_in_line",
    "one_admission_at_a_time",
    "queue_position",
    "select_due",
]

WINDOW = 1000
"""Due rows considered per pick. Per-user concurrency quotas keep queues far smaller."""
USAGE_WINDOW = timedelta(hours=24)


def _jobs(conn: BaseDBAsyncClient | None, exclude: int | None) -> QuerySet[RenderJob]:
    """Render jobs, read on *conn* (a transaction) if given, without job *exclude*."""
    query = RenderJob.all() if conn is None else RenderJob.all().using_db(conn)
    return query if exclude is None else query.exclude(pk=exclude)


async def _load(
    account_ids: Iterable[int], conn: BaseDBAsyncClient | None = None, exclude: int | None = None
) -> tuple[dict[int, int], dict[int, float]]:
    ids = sorted(set(account_ids))
    if not ids:
        return {}, {}
    running_rows = (
        await _jobs(conn, exclude)
        .filter(account_id__in=ids, state__in=ACTIVE)
        .annotate(n=Count("id"))
        .group_by("account_id")
        .values("account_id", "n")
    )
    usage_rows = (
        await _jobs(conn, None)
        .filter(account_id__in=ids, created_at__gte=utcnow() - USAGE_WINDOW)
        .annotate(s=Sum("gpu_seconds"))
        .group_by("account_id")
        .values("account_id", "s")
    )
    running = {int(r["account_id"]): int(r["n"]) for r in running_rows}
    usage = {int(r["account_id"]): float(r["s"] or 0.0) for r in usage_rows}
    return running, usage


async def fair_order(
    rows: Sequence[Any], conn: BaseDBAsyncClient | None = None, exclude: int | None = None
) -> list[Any]:
    """*rows* (RenderJobs) in the order they should run; see the module docstring. The
    owners' loads are read on *conn* if given, leaving job *exclude* out."""
    started = sorted((r for r in rows if r.state != QUEUED), key=lambda r: (-r.priority, r.id))
    queued = sorted((r for r in rows if r.state == QUEUED), key=lambda r: r.id)
    running, usage = await _load((r.account_id for r in queued), conn, exclude)
    turns: dict[int, int] = defaultdict(int)
    keyed = []
    for row in queued:
        account = row.account_id
        load = running.get(account, 0) + turns[account]
        turns[account] += 1
        keyed.append(((-row.priority, load, usage.get(account, 0.0), row.id), row))
    keyed.sort(key=lambda pair: pair[0])
    return started + [row for _, row in keyed]


async def select_due(query: QuerySet[Any], limit: int) -> list[Any]:
    rows = await query.order_by("next_attempt_at", "id").limit(WINDOW)
    return (await fair_order(rows))[: max(limit, 0)]


async def queue_position(job: RenderJob) -> int | None:
    """1 for the queued job that starts next, 2 after it...; None once the job has started."""
    if job.state != QUEUED:
        return None
    queued = await RenderJob.filter(state=QUEUED).order_by("id").limit(WINDOW)
    for position, row in enumerate(await fair_order(queued), 1):
        if row.pk == job.pk:
            return position
    return None


async def admission(job: RenderJob, slots: int, conn: BaseDBAsyncClient | None = None) -> int:
    """How many jobs must start before *job* (a queued job) may (0: it may start rendering
    now).

    The render queue asks inside the transaction that moves *job* to rendering (*conn*),
    with admissions serialized (:func:`one_admission_at_a_time`): counted and moved at once,
    two jobs cannot both take the last slot. *job* itself is counted as the queued job it was,
    whatever the transaction already wrote to its row.
    """
    others = _jobs(conn, job.pk)
    rendering = await others.filter(state=RENDERING).count()
    free = slots - rendering
    queued = await others.filter(state=QUEUED).order_by("id").limit(WINDOW)
    ordered = await fair_order([*queued, job], conn, exclude=job.pk)
    ahead = next(i for i, row in enumerate(ordered) if row.pk == job.pk)
    return 0 if ahead < free else ahead - free + 1


_ADMISSION_LOCK = 0x66656469736F7261 & 0x7FFFFFFFFFFFFFFF  # "fedisora", a bigint key


async def one_admission_at_a_time(conn: BaseDBAsyncClient) -> None:
    """Hold the render admission lock until the transaction on *conn* ends.

    On PostgreSQL a transaction-level advisory lock: another admission waits here until this
    one committed, then counts what it wrote. SQLite needs none: the transaction's first write
    (the fenced move of the row) took the database's only write lock already.
    """
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_ADMISSION_LOCK])


async def next_in_line() -> RenderJob | None:
    """The queued job that starts next (to wake it as soon as a slot frees)."""
    queued = await RenderJob.filter(state=QUEUED).order_by("id").limit(WINDOW)
    ordered = await fair_order(queued)
    return ordered[0] if ordered else None
