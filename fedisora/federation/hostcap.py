"""At most N requests at once to one remote host, in a process or across all of them.

Deliveries take a slot for the peer's host around each POST. Without Redis (the embedded,
single-process default) the slots are an ``asyncio.Semaphore`` per host and a delivery waits
for one as long as it takes. With Redis the cap holds across every worker process: a slot is
a member of a sorted set per host, scored by the time its lease ends. Taking one is a Lua
script that drops expired members and adds a fresh token only if fewer than the limit remain;
giving it back removes the token. A worker that dies holding slots frees them when their
leases end, so the lease must outlast the longest request (the peer client's total timeout).
Times are Redis server time, so workers on different machines need not agree on the clock.

Where no Redis slot comes free within a short wait, :class:`HostBusy` is raised: the caller
reschedules rather than hold a worker idle (other hosts' deliveries are waiting too). So it is,
as :class:`SlotsUnavailable`, when Redis does not answer (a restart): that is no failure of
the peer either, and costs a delivery no attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import AsyncIterator
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["HostBusy", "HostCap", "LocalHostCap", "RedisHostCap", "SlotsUnavailable"]


class HostBusy(Exception):
    """No slot for the host came free in time: try again a little later."""

    def __init__(self, host: str, limit: int) -> None:
        super().__init__(f"{host} already has {limit} requests in flight from this instance")
        self.host = host


class SlotsUnavailable(HostBusy):
    """Redis, which keeps the slots, did not answer: try again a little later, as when busy."""

    def __init__(self, host: str, error: BaseException) -> None:
        Exception.__init__(self, f"the request slots for {host} are unavailable: {error}")
        self.host = host


class HostCap(Protocol):
    limit: int

    def slot(self, host: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of *host*'s slots for the duration of the block."""
        ...


class LocalHostCap:
    """The per-process cap: one semaphore per host, waited on without limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: dict[str, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore = self._slots.get(host)
        if semaphore is None:
            semaphore = self._slots[host] = asyncio.Semaphore(self.limit)
        async with semaphore:
            yield


# KEYS[1] the host's sorted set; ARGV: limit, lease in ms, token. Returns 1 if taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
-- expired leases are holders that died (or hung) without giving their slot back
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  -- the key outlives its longest lease, then goes: idle hosts leave nothing behind
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], last[2])
  return 1
end
return 0
"""


class RedisHostCap:
    """The instance-wide cap, shared through Redis by every process using the same *prefix*.

    Each :meth:`slot` uses its own short-lived connection, so the object holds nothing bound
    to an event loop and needs no closing."""

    def __init__(
        self,
        url: str,
        limit: int,
        *,
        lease: float = 60.0,
        wait: float = 10.0,
        prefix: str = "fedisora",
    ) -> None:
        if limit < 1:
            raise ValueError("a host needs at least one slot")
        self.url = url
        self.limit = limit
        self.lease = lease
        self.wait = wait
        self.prefix = prefix

    def key(self, host: str) -> str:
        return f"{self.prefix}:hostcap:{host}"

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        key = self.key(host)
        token = secrets.token_hex(16)
        async with Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5) as redis:
            try:
                taken = await self._take(redis, key, token)
            except (RedisError, OSError) as exc:
                raise SlotsUnavailable(host, exc) from exc
            if not taken:
                raise HostBusy(host, self.limit)
            try:
                yield
            finally:
                # If this fails (Redis gone, task cancelled twice) the lease frees the slot.
                with contextlib.suppress(Exception):
                    await redis.zrem(key, token)

    async def _take(self, redis: Redis, key: str, token: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        pause = 0.02
        lease_ms = max(1, int(self.lease * 1000))
        while True:
            taken = await redis.eval(  # type: ignore[misc]
                _ACQUIRE, 1, key, str(self.limit), str(lease_ms), token
            )
            if taken == 1:
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            # Jittered, growing pauses: waiters from many processes do not poll in step.
            await asyncio.sleep(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(pause * 2, 0.5)

    async def holders(self, host: str) -> int:
        """How many live (unexpired) slots *host* has now (for tests and the admin pages)."""
        async with Redis.from_url(self.url) as redis:
            seconds, micros = await redis.time()
            now = seconds * 1000 + micros // 1000
            return int(await redis.zcount(self.key(host), f"({now}", "+inf"))
