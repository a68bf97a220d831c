"""What the admin pages read of the render queue: outcomes per day, the queue's depth by
state, and pages of jobs.

Every query is bounded whatever the size of ``render_jobs``: counts are grouped over a range
of the ``(state, state_changed_at)`` or ``(state, next_attempt_at)`` index (live states, or
one day of finished ones), and pages of jobs are keyset pages on the primary key (by owner:
the ``(account_id, id)`` index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.functions import Count

from fedisora.models import RenderJob, utcnow
from render.states import CANCELLED, ENCODING, FAILED, PUBLISHED, QUEUED, READY, RENDERING, SIGNING

__all__ = [
    "DAYS",
    "LIVE",
    "STATES",
    "DayOutcome",
    "JobPage",
    "daily_outcomes",
    "jobs_page",
    "queue_depth",
]

DAYS = 14
"""Days of outcomes on the admin overview."""
LIVE = (QUEUED, RENDERING, ENCODING, SIGNING, READY)
"""The states counted as the queue's depth (ready: rendered, waiting for its owner)."""
STATES = (QUEUED, RENDERING, ENCODING, SIGNING, READY, PUBLISHED, FAILED, CANCELLED)
DONE = (READY, PUBLISHED)
PAGE = 50


@dataclass(frozen=True)
class DayOutcome:
    day: date
    done: int
    """Renders that finished that day (UTC) and are ready or published."""
    failed: int


async def daily_outcomes(days: int = DAYS, now: datetime | None = None) -> list[DayOutcome]:
    """Renders done and failed per UTC day, the last *days* days (today last). A job counts
    on the day it reached the state it is in now (a render published later counts on the day
    it was published)."""
    today = (now or utcnow()).astimezone(UTC).date()
    out = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(), tzinfo=UTC)
        rows = (
            await RenderJob.filter(
                state__in=(*DONE, FAILED),
                state_changed_at__gte=start,
                state_changed_at__lt=start + timedelta(days=1),
            )
            .annotate(n=Count("id"))
            .group_by("state")
            .values("state", "n")
        )
        counts = {str(r["state"]): int(r["n"]) for r in rows}
        out.append(DayOutcome(day, sum(counts.get(s, 0) for s in DONE), counts.get(FAILED, 0)))
    return out


async def queue_depth() -> dict[str, int]:
    """Jobs in each live state (:data:`LIVE`, every one listed, 0 included)."""
    rows = (
        await RenderJob.filter(state__in=LIVE)
        .annotate(n=Count("id"))
        .group_by("state")
        .values("state", "n")
    )
    counts = {str(r["state"]): int(r["n"]) for r in rows}
    return {state: counts.get(state, 0) for state in LIVE}


@dataclass(frozen=True)
class JobPage:
    jobs: list[RenderJob]
    """Newest first, with their ``account`` loaded."""
    older: int | None
    """The ``max_id`` of the next (older) page, or None at the end."""


async def jobs_page(
    *,
    state: str = "",
    account_id: int | None = None,
    max_id: int | None = None,
    limit: int = PAGE,
) -> JobPage:
    """A page of render jobs, newest first, in *state* and of *account_id* if given."""
    query = RenderJob.all()
    if state:
        query = query.filter(state=state)
    if account_id is not None:
        query = query.filter(account_id=account_id)
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    rows = await query.order_by("-id").limit(limit + 1).select_related("account")
    older = rows[limit - 1].pk if len(rows) > limit else None
    return JobPage(list(rows[:limit]), older)
