"""Delivery health for the admins: the outbox's state overall and per peer host, and
"retry now" for a host.

Every query is bounded by what retention keeps, whatever the number of hosts this instance
knows: delivered rows go after a day and failed ones after a few days
(:mod:`fedisora.services.retention`), pending ones fail after about two days. Hosts are
listed a page at a time (keyset on the host name), and a page's numbers are one grouped
query over its hosts' rows (the ``(host, state)`` index).

:func:`retry_host` makes a host's pending deliveries due now (those backing off included)
and queues its failed ones again as new rows (``failed`` is a final state: those rows stay as
history, and a failed delivery whose activity is pending or delivered again is not queued a
second time). It is audited as ``federation.retry``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count, Max, Min

from fedisora.config import Settings
from fedisora.errors import Invalid
from fedisora.federation.context import get_federation
from fedisora.federation.delivery import DELIVERY_GRAPH
from fedisora.models import Account, Delivery, utcnow
from fedisora.services import audit, domain_blocks
from fedisora.work.engine import Engine

__all__ = [
    "HOSTS_PAGE",
    "MAX_REQUEUE",
    "DeliveryHealth",
    "HostHealth",
    "HostPage",
    "RetryResult",
    "delivery_health",
    "hosts_page",
    "retry_host",
]

HOSTS_PAGE = 50
MAX_REQUEUE = 1000
"""Failed deliveries queued again by one "retry now" (the newest first)."""
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class DeliveryHealth:
    pending: int
    failed: int
    """Failed deliveries retention still keeps (a few days' worth)."""
    oldest_pending: datetime | None
    """When the oldest pending delivery was queued."""


async def delivery_health() -> DeliveryHealth:
    """The outbox overall: pending and failed deliveries, and the oldest pending one."""
    rows = (
        await Delivery.filter(state__in=(PENDING, FAILED))
        .annotate(n=Count("id"))
        .group_by("state")
        .values("state", "n")
    )
    counts = {str(r["state"]): int(r["n"]) for r in rows}
    # A pending row never changed state: its state_changed_at is when it was queued.
    oldest: list[Any] = list(
        await Delivery.filter(state=PENDING)
        .order_by("state_changed_at")
        .limit(1)
        .values_list("state_changed_at", flat=True)
    )
    return DeliveryHealth(
        pending=counts.get(PENDING, 0),
        failed=counts.get(FAILED, 0),
        oldest_pending=oldest[0] if oldest else None,
    )


@dataclass(frozen=True)
class HostHealth:
    host: str
    pending: int = 0
    failed: int = 0
    delivered: int = 0
    """Deliveries that reached the host and that retention still keeps (the last day)."""
    last_success: datetime | None = None
    """The latest delivery that reached it, among those retention keeps."""
    next_attempt: datetime | None = None
    """When its next pending delivery is due."""
    attempts: int = 0
    """The most attempts any of its pending deliveries made (its back-off's step)."""
    oldest_pending: datetime | None = None
    down_until: datetime | None = None
    """When this process's back-off of the host ends, if it found the host down."""

    def backing_off(self, now: datetime) -> bool:
        return self.next_attempt is not None and self.next_attempt > now


@dataclass(frozen=True)
class HostPage:
    hosts: list[HostHealth]
    after: str | None
    """The ``after`` of the next page, or None at the end."""


async def hosts_page(
    *,
    settings: Settings | None = None,
    search: str = "",
    after: str = "",
    limit: int = HOSTS_PAGE,
) -> HostPage:
    """A page of hosts by name: those with pending or failed deliveries, or with *search*
    every host whose name contains it (healthy ones too)."""
    query = Delivery.all()
    if search:
        query = query.filter(host__icontains=search.strip().lower())
    else:
        query = query.filter(state__in=(PENDING, FAILED))
    if after:
        query = query.filter(host__gt=after)
    names = [
        str(h)
        for h in await query.distinct()
        .order_by("host")
        .limit(limit + 1)
        .values_list("host", flat=True)
    ]
    more = len(names) > limit
    names = names[:limit]
    stats: dict[str, dict[str, Any]] = {name: {} for name in names}
    if names:
        rows = (
            await Delivery.filter(host__in=names)
            .annotate(
                n=Count("id"),
                last=Max("state_changed_at"),
                due=Min("next_attempt_at"),
                tries=Max("attempts"),
                first=Min("state_changed_at"),
            )
            .group_by("host", "state")
            .values("host", "state", "n", "last", "due", "tries", "first")
        )
        for r in rows:
            stats[str(r["host"])][str(r["state"])] = r
    down = get_federation(settings).down_hosts if settings is not None else {}
    now = utcnow()
    hosts = []
    for name in names:
        by_state = stats[name]
        pending = by_state.get(PENDING, {})
        delivered = by_state.get(DELIVERED, {})
        until = down.get(name)
        hosts.append(
            HostHealth(
                host=name,
                pending=int(pending.get("n") or 0),
                failed=int(by_state.get(FAILED, {}).get("n") or 0),
                delivered=int(delivered.get("n") or 0),
                last_success=delivered.get("last"),
                next_attempt=pending.get("due"),
                attempts=int(pending.get("tries") or 0),
                oldest_pending=pending.get("first"),
                down_until=until if until is not None and until > now else None,
            )
        )
    return HostPage(hosts, names[-1] if more else None)


@dataclass(frozen=True)
class RetryResult:
    made_due: int
    """Pending deliveries made due now."""
    requeued: int
    """Failed deliveries queued again (new rows)."""


async def retry_host(
    by: Account,
    host: str,
    *,
    settings: Settings,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> RetryResult:
    """Make *host*'s deliveries due now: its pending ones (backing off or not; those a
    runner holds right now are left to it) and its failed ones, queued again as new rows
    (at most :data:`MAX_REQUEUE`, newest first; their attempts start over). This process
    forgets that the host was down. :class:`Invalid` for a host this instance suspends or
    knows nothing about. Audited as ``federation.retry``."""
    host = host.strip().lower()
    if not host or not await Delivery.filter(host=host).exists():
        raise Invalid(f"no deliveries to {host or 'that host'} are known here")
    if (await domain_blocks.current()).suspends(host):
        raise Invalid(f"{host} is suspended (a domain block): nothing is delivered to it")
    now = now or (engine.clock() if engine is not None else utcnow())
    made_due = await Delivery.filter(
        Q(host=host)
        & Q(state=PENDING)
        & Q(next_attempt_at__gt=now)
        & (Q(locked_until=None) | Q(locked_until__lt=now))
    ).update(next_attempt_at=now)
    failed = (
        await Delivery.filter(host=host, state=FAILED)
        .order_by("-state_changed_at")
        .limit(MAX_REQUEUE)
    )
    live = {
        (str(r["activity_id"]), str(r["inbox_url"]))
        for r in await Delivery.filter(
            host=host,
            state__in=(PENDING, DELIVERED),
            activity_id__in=list({row.activity_id for row in failed}),
        ).values("activity_id", "inbox_url")
    }
    fresh: list[Delivery] = []
    for row in failed:
        key = (row.activity_id, row.inbox_url)
        if key in live:
            continue
        live.add(key)
        fresh.append(
            Delivery(
                sender_id=row.sender_id,
                inbox_url=row.inbox_url,
                host=host,
                activity_id=row.activity_id,
                payload=row.payload,
                state=DELIVERY_GRAPH.initial,
                state_changed_at=now,
                next_attempt_at=now,
                created_at=now,
            )
        )
    if fresh:
        await Delivery.bulk_create(fresh)
    get_federation(settings).down_hosts.pop(host, None)
    await audit.record(
        by,
        "federation.retry",
        audit.target("host", host, host),
        f"{made_due} pending made due, {len(fresh)} failed queued again",
    )
    if engine is not None and (made_due or fresh):
        with contextlib.suppress(KeyError):  # an engine without the delivery machine
            await engine.wake_soon(engine.machine_for(Delivery))
    return RetryResult(made_due, len(fresh))
