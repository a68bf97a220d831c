"""Housekeeping as durable work: a table of chores, one row per chore, that never ends.

A :class:`~fedisora.models.Chore` row stays in its one automatic state, ``due``. Its handler
does one bounded batch of its chore and reschedules the row with
``Retry(counts=False, after=...)``: a second later when a batch was full (more is due at
once), the chore's interval otherwise. So the runners that advance every other work row run
the chores too, the arq worker's sweeps and the in-process runner alike, with nothing of
their own: a chore is claimed like any row (one runner at a time holds it; another takes it
over when the lease runs out), a Redis flush loses nothing (the row says when it is due),
and an exception is retried with the state's backoff (a chore never fails for good).

Each chore writes its *progress* (cursors, the last run's counts) to its row in the same
transaction as each change it makes, fenced on the row's lock token: a runner whose lease ran
out rolls its batch back. The rows are seeded by migration 0011; :func:`ensure_chores` adds
any that are missing.

Chores:

- ``work_retention`` (every minute): :mod:`fedisora.services.retention` over every
  durable-work table the engine runs;
- ``media_gc`` (every 10 minutes): :mod:`fedisora.services.media_gc`;
- ``expired_rows`` (every 10 minutes): :mod:`fedisora.services.expiry`;
- ``cameo_recheck`` (every 10 minutes): the consents of shown remote clips with cameos,
  last verified more than ``cameo_recheck_hours`` ago, asked about again at the owners'
  servers (:func:`fedisora.federation.cameo_clips.recheck_shown`; seeded by migration
  0017).
- ``likeness_checks`` (every minute, and woken by each likeness registration): the
  automatic likeness check of ``FEDISORA_LIKENESS_CHECK``, one likeness a run
  (:mod:`fedisora.services.likeness_check`); the row is added by :func:`ensure_chores`, which
  the first registration calls when it is missing.
- ``domain_purge`` (every minute): the remote accounts of suspended domains suspended here
  and their clips deleted, :data:`~fedisora.services.domain_blocks.PURGE_BATCH` of each a run
  (:func:`fedisora.services.domain_blocks.purge_step`); the row is added by
  :func:`ensure_chores`, which each suspension of a domain calls.
- ``optout_lists`` (every hour): each subscribed opt-out list fetched, verified and applied
  or kept for review (:func:`fedisora.services.optouts.run_chore`), except a list whose last
  fetch (an admin's "Fetch now") began less than ten minutes ago; the row is added by
  :func:`ensure_chores`, which each subscription calls (so the first subscription's list is
  fetched at once).
- ``for_you_aging`` (every hour): For You's view rows unseen for 90 days and its interests
  decayed to nothing deleted (:func:`fedisora.for_you.signals.age_out`), and once a day the
  instance's recency half-life fitted from its views and kept in the row's progress
  (:func:`fedisora.for_you.signals.refit_half_life`); the row is added by
  :func:`ensure_chores`, which the first recorded signal of a process calls.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from fedisora.config import Settings
from fedisora.media_store import media_store
from fedisora.models import Chore, utcnow
from fedisora.services.expiry import delete_expired, expiries
from fedisora.services.media_gc import collect_unattached
from fedisora.services.retention import Fence, policies, run_policies
from fedisora.work.engine import LeaseLost, Machine, Outcome, Retry, WorkContext
from fedisora.work.graph import State, StateGraph, exponential

__all__ = ["AGAIN", "CHORES", "CHORE_GRAPH", "ChoreSpec", "ensure_chores", "machines"]

log = logging.getLogger("fedisora.housekeeping")

CHORE_GRAPH = StateGraph(
    "chores",
    [
        State(
            "due",
            retry=exponential(timedelta(seconds=30), 2.0, timedelta(hours=1), timedelta(days=1)),
        ),
        State("failed", terminal=True),  # every graph has one; a chore never gets there
    ],
    initial="due",
    failed="failed",
)
AGAIN = timedelta(seconds=1)
"""When a chore runs again after a full batch (more is due): soon, but not in the same
claim, so that other rows get their turn."""

Run = Callable[
    [WorkContext, Settings, dict[str, Any], Fence], Awaitable[tuple[dict[str, int], bool]]
]


@dataclass(frozen=True)
class ChoreSpec:
    """A chore: *run* does one bounded step (returns its counts and whether more is due at
    once); it runs again *every* when not."""

    run: Run
    every: timedelta


async def _work_retention(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    return await run_policies(
        policies(settings, ctx.engine.machines.values()),
        now=ctx.now(),
        progress=progress,
        fence=fence,
        store=media_store(settings),
        between=ctx.heartbeat,
    )


async def _media_gc(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    removed, more = await collect_unattached(
        now=ctx.now(),
        older_than=timedelta(hours=settings.media_unattached_hours),
        store=media_store(settings),
        progress=progress,
        fence=fence,
    )
    return ({"media_removed": removed} if removed else {}), more


async def _expired_rows(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    return await delete_expired(expiries(), now=ctx.now(), fence=fence)


#: How many cameos one ``cameo_recheck`` batch asks about (one request to an owner's server
#: each).
CAMEO_RECHECK_BATCH = 50


async def _cameo_recheck(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    from fedisora.federation.cameo_clips import recheck_shown
    from fedisora.federation.context import get_federation

    async with ctx.keep_lease():  # requests to other servers
        done = await recheck_shown(
            get_federation(settings),
            now=ctx.now(),
            older_than=timedelta(hours=settings.cameo_recheck_hours),
            limit=CAMEO_RECHECK_BATCH,
        )
    return done.counts(), done.full


async def _likeness_checks(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    from fedisora.services.likeness_check import run_chore

    return await run_chore(ctx, settings, progress, fence)


async def _domain_purge(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    from fedisora.services.domain_blocks import purge_step

    return await purge_step(progress)


async def _optout_lists(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    from fedisora.services.optouts import run_chore

    return await run_chore(ctx, settings, progress, fence)


async def _for_you_aging(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    from fedisora.for_you.signals import age_out, refit_half_life

    counts, more = await age_out(now=ctx.now(), fence=fence)
    await refit_half_life(progress, ctx.now())  # (daily; kept in progress by the fence)
    return counts, more


CHORES: dict[str, ChoreSpec] = {
    "work_retention": ChoreSpec(_work_retention, timedelta(minutes=1)),
    # Registration wakes it; the regular run catches a lost wake-up (and a check configured
    # after likenesses were registered).
    "likeness_checks": ChoreSpec(_likeness_checks, timedelta(minutes=1)),
    "media_gc": ChoreSpec(_media_gc, timedelta(minutes=10)),
    "expired_rows": ChoreSpec(_expired_rows, timedelta(minutes=10)),
    "cameo_recheck": ChoreSpec(_cameo_recheck, timedelta(minutes=10)),
    # A suspended domain's accounts and clips, a bounded batch a run (the row is added by
    # ensure_chores, which a suspension calls).
    "domain_purge": ChoreSpec(_domain_purge, timedelta(minutes=1)),
    # The subscribed opt-out lists (the row is added by ensure_chores, which a subscription
    # calls).
    "optout_lists": ChoreSpec(_optout_lists, timedelta(hours=1)),
    # For You's old view rows and faded interests (the row is added by ensure_chores, which
    # the first signal a process records calls).
    "for_you_aging": ChoreSpec(_for_you_aging, timedelta(hours=1)),
}


async def _run(row: Chore, ctx: WorkContext) -> Outcome:
    spec = CHORES.get(row.name)
    if spec is None:  # a row of a version that had more chores
        return Retry(f"no chore named {row.name!r} here", after=timedelta(days=1), counts=False)
    settings: Settings = ctx.engine.context["settings"]
    progress: dict[str, Any] = dict(row.progress or {})

    async def fence(conn: BaseDBAsyncClient | None = None) -> None:
        query = Chore.filter(pk=row.pk, lock_token=ctx.token)
        if conn is not None:
            query = query.using_db(conn)
        if await query.update(progress=progress) != 1:
            raise LeaseLost(f"chores:{row.pk}")

    counts, more = await spec.run(ctx, settings, progress, fence)
    if counts:
        log.info("%s: %s", row.name, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    progress["last"] = {"at": ctx.now().isoformat(), "counts": counts, "more": more}
    await fence()
    return Retry("", after=AGAIN if more else spec.every, counts=False)


async def ensure_chores() -> int:
    """Add the rows of chores that have none (due at once); return how many were added."""
    added = 0
    known: set[Any] = set(await Chore.all().values_list("name", flat=True))
    for name in CHORES:
        if name in known:
            continue
        now = utcnow()
        try:
            await Chore.create(
                name=name,
                state=CHORE_GRAPH.initial,
                state_changed_at=now,
                next_attempt_at=now,
                created_at=now,
            )
        except IntegrityError:  # another process added it meanwhile
            continue
        added += 1
    return added


def machines(settings: Settings) -> list[Machine]:
    """The provider listed in ``fedisora.work.machines.PROVIDERS``."""
    return [Machine(Chore, CHORE_GRAPH, {"due": _run})]
