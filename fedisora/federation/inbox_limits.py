"""Per-actor and per-host inbox limits: one remote actor, or one host, cannot fill the database.

What is limited is the payload the inbox *holds* for an actor and for its host: the items
(:class:`~fedisora.models.InboxItem`) whose activity is still stored, i.e. those not processed
yet and those processed whose payload retention has not dropped yet
(:mod:`fedisora.services.retention`: 10 minutes for an ignored activity, an hour for a
processed one by default). A cap on unprocessed items alone would not bound storage: an actor
whose activities are ignored at once (the 0.9 MB ``Flag`` of the review) would never reach
it. Counting held payloads bounds what one actor or host can store to its caps, whatever it
sends: ``FEDISORA_INBOX_ACTOR_MAX_ITEMS`` / ``_MB`` and ``FEDISORA_INBOX_HOST_MAX_ITEMS`` /
``_MB``. One activity is at most :data:`~fedisora.federation.routes.MAX_INBOX_BYTES`
(413 past it, read once at the inbox); the byte caps are whole megabytes, so an empty budget
always takes the largest activity.

Past a cap the inbox answers **429** with ``Retry-After``, storing nothing. A 429 is what
peers retry: Mastodon redelivers on 401, 408, 429 and 5xx (its other 4xx are "unsalvageable"
and dropped) 16 times over two to three days, and fedisora's deliveries retry 429 for two
days. An actor over its budget is thus slowed down, not silenced, and loses nothing a
well-behaved peer sends; a 202-and-drop would lose a legitimate burst for good.

Counting each POST would cost a query on the inbox's hot path. Instead each process keeps an
estimate per host: the counts it last read from the database plus what it admitted since.
The database is asked again (one indexed query over the host's held items, ``(host, size)``)
only when an admission would take the actor or the host past half a cap, and then at most
every :data:`RECHECK` seconds per host; under half, nothing is queried. Several web
processes each admit against their own estimate, so together they may overshoot a cap by
at most what each admits between two counts (bounded: a process never admits past a cap by
its own estimate).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from tortoise.functions import Count, Sum

from fedisora.config import Settings
from fedisora.models import InboxItem

__all__ = ["RECHECK", "RETRY_AFTER", "Caps", "InboxLimits", "limits_for"]

RECHECK = 1.0
"""Seconds between two counts of one host's held items, when it is near a cap."""
RETRY_AFTER = 60
"""The ``Retry-After`` of a 429 (Mastodon ignores it and backs off on its own schedule)."""
_MAX_HOSTS = 10_000  # hosts whose estimates a process keeps (least recently seen dropped)
_MB = 1024 * 1024


@dataclass(frozen=True)
class Caps:
    actor_items: int
    actor_bytes: int
    host_items: int
    host_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Caps:
        return cls(
            actor_items=settings.inbox_actor_max_items,
            actor_bytes=settings.inbox_actor_max_mb * _MB,
            host_items=settings.inbox_host_max_items,
            host_bytes=settings.inbox_host_max_mb * _MB,
        )


@dataclass
class _Host:
    items: int = 0
    bytes: int = 0
    actors: dict[str, list[int]] = field(default_factory=dict)  # actor -> [items, bytes]
    counted_at: float | None = None  # when the database was last asked (monotonic)
    counting: asyncio.Future[None] | None = None


class InboxLimits:
    """The inbox limits of one process (see the module)."""

    def __init__(
        self, caps: Caps, *, recheck: float = RECHECK, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.caps = caps
        self.recheck = recheck
        self.clock = clock
        self._hosts: OrderedDict[str, _Host] = OrderedDict()

    async def admit(self, host: str, actor: str, size: int) -> str | None:
        """Count an activity of *size* bytes from *actor* on *host* as held, or say why not
        (the reason for the 429; nothing is counted then)."""
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host()
            if len(self._hosts) > _MAX_HOSTS:
                self._hosts.popitem(last=False)
        else:
            self._hosts.move_to_end(host)
        if self._near(entry, actor, size) and (
            entry.counted_at is None or self.clock() - entry.counted_at >= self.recheck
        ):
            await self._count(host, entry)
        refused = self._over(entry, host, actor, size)
        if refused is None:
            held = entry.actors.setdefault(actor, [0, 0])
            held[0] += 1
            held[1] += size
            entry.items += 1
            entry.bytes += size
        return refused

    def _near(self, entry: _Host, actor: str, size: int) -> bool:
        caps = self.caps
        items, held = entry.actors.get(actor, (0, 0))
        return (
            2 * (items + 1) > caps.actor_items
            or 2 * (held + size) > caps.actor_bytes
            or 2 * (entry.items + 1) > caps.host_items
            or 2 * (entry.bytes + size) > caps.host_bytes
        )

    def _over(self, entry: _Host, host: str, actor: str, size: int) -> str | None:
        caps = self.caps
        items, held = entry.actors.get(actor, (0, 0))
        if items + 1 > caps.actor_items or held + size > caps.actor_bytes:
            return (
                f"too many activities from {actor} are waiting here "
                f"(at most {caps.actor_items} or {caps.actor_bytes // _MB} MB): retry later"
            )
        if entry.items + 1 > caps.host_items or entry.bytes + size > caps.host_bytes:
            return (
                f"too many activities from {host} are waiting here "
                f"(at most {caps.host_items} or {caps.host_bytes // _MB} MB): retry later"
            )
        return None

    async def _count(self, host: str, entry: _Host) -> None:
        """Replace the estimate by the database's counts (one query per host at a time)."""
        if entry.counting is not None:
            await asyncio.shield(entry.counting)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.counting = done
        try:
            rows = (
                await InboxItem.filter(host=host, size__gt=0)
                .annotate(n=Count("id"), b=Sum("size"))
                .group_by("actor_uri")
                .values("actor_uri", "n", "b")
            )
            entry.actors = {r["actor_uri"]: [int(r["n"]), int(r["b"] or 0)] for r in rows}
            entry.items = sum(v[0] for v in entry.actors.values())
            entry.bytes = sum(v[1] for v in entry.actors.values())
            entry.counted_at = self.clock()
            done.set_result(None)
        except BaseException as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: waiters get it, a lone counter does not warn
            raise
        finally:
            entry.counting = None


_limits: weakref.WeakKeyDictionary[object, InboxLimits] = weakref.WeakKeyDictionary()


def limits_for(owner: object, settings: Settings) -> InboxLimits:
    """The inbox limits kept for *owner* (the process's federation context)."""
    limits = _limits.get(owner)
    if limits is None:
        limits = _limits[owner] = InboxLimits(Caps.from_settings(settings))
    return limits
