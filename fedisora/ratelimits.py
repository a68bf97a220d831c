"""Rate limits: every named limit, its count per window, and where the counts live.

A limit is a number of hits per fixed window for one key (an account, a client IP, a remote
host), answered as a :class:`Decision` with Mastodon's ``X-RateLimit-*`` headers. The limits:

======== ======================= ====================================================
name     default                 counted per
======== ======================= ====================================================
api      300 per 5 minutes       account (or app token); address without a token
api_ip   7500 per 5 minutes      client address, every API request
signup   5 per 30 minutes        client address, sign-ups (API and web)
apps     20 per 5 minutes        client address, OAuth app registrations
render   30 per hour             account, renders queued (API and web, besides quotas)
upload   60 per 30 minutes       account, media uploads (API and the web's stills)
inbox    600 per 5 minutes       remote host (the signature's keyId), inbox POSTs
login    25 per hour             account, failed password attempts
login_ip 25 per 5 minutes        client address, failed password attempts
optout   30 per hour             client address, opt-out requests
lookup   60 per hour             client address, copies looked up (API, web and their decoding)
mail     5 per 30 minutes        client address, confirmation mails asked for again
feedback 120 per 5 minutes       account, For You's batches of player reports
======== ======================= ====================================================

``FEDISORA_RATE_LIMITS`` overrides them: ``render=10/1h,upload=100/30m`` (windows in s, m, h
or d), and so does the admin's ``/admin/settings`` (:mod:`fedisora.services.instance_settings`
hands the store its changes: :meth:`Store.set_limits`). Every counter reads the store's
limit at each hit, so a change applies at once, in memory as in Redis. Login attempts are
counted by their own guard (:mod:`fedisora.services.passwords`) in the same store, under
``login`` and ``login_ip``: only failures count there.

Where the counts live (:func:`configure`, once per process at app start, from the settings):

- :class:`MemoryStore`: in this process's memory. One web process answers a small instance;
  several would each count apart (loosening the limits by that factor); a restart forgets.
- :class:`RedisStore` when ``FEDISORA_REDIS_URL`` is set: shared by every process, in fixed
  windows aligned to the window's length (``INCR`` and ``EXPIRE`` in one transaction on
  ``fedisora:rl:<instance domain>:<name>:<window start>:<key>``). Redis failing never fails a
  request: that hit is counted in memory instead, and the failure logged once (until Redis
  answers again).

Services use :func:`current` (:func:`enforce` raises :class:`~fedisora.errors.RateLimited`
carrying the headers); the API frame and web pages use :func:`for_app`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fedisora.errors import RateLimited

if TYPE_CHECKING:
    from fedisora.config import Settings

__all__ = [
    "DEFAULTS",
    "Decision",
    "Limit",
    "Limiter",
    "MemoryStore",
    "RedisStore",
    "Store",
    "configure",
    "current",
    "enforce",
    "for_app",
    "parse_limits",
    "tighter",
]

log = logging.getLogger("fedisora.ratelimits")


@dataclass(frozen=True)
class Limit:
    count: int
    window: float  # seconds

    def __str__(self) -> str:
        return f"{self.count}/{_window_text(self.window)}"


DEFAULTS: Mapping[str, Limit] = {
    "api": Limit(300, 300.0),  # per account (or app token); per address without a token
    "api_ip": Limit(7500, 300.0),  # every API request per address (Mastodon's per-IP throttle)
    "signup": Limit(5, 1800.0),  # Mastodon's 5 per 30 minutes
    "apps": Limit(20, 300.0),
    "render": Limit(30, 3600.0),
    "upload": Limit(60, 1800.0),
    "inbox": Limit(600, 300.0),
    "login": Limit(25, 3600.0),  # failed password attempts per account
    "login_ip": Limit(25, 300.0),  # failed password attempts per address
    "optout": Limit(30, 3600.0),
    "lookup": Limit(60, 3600.0),  # copies looked up per address: each decodes a video
    "mail": Limit(5, 1800.0),  # confirmation mails asked for again, per client IP
    # For You's batches of player reports, per account (fedisora.for_you.signals): a player
    # sends one every few clips and when the page is hidden.
    "feedback": Limit(120, 300.0),
}

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ITEM = re.compile(r"^(\d{1,9})/(\d{1,9})([smhd]?)$")
MAX_COUNT = 10_000_000
MAX_WINDOW = 7 * 86400


def _window_text(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{int(seconds)}s"


def parse_limits(raw: str) -> dict[str, Limit]:
    """``name=COUNT/WINDOW`` items, comma-separated, as overrides of :data:`DEFAULTS`.
    Raises ValueError naming what is wrong (an unknown name, a malformed value)."""
    found: dict[str, Limit] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep:
            raise ValueError(f"{item!r} is not name=COUNT/WINDOW (e.g. render=30/1h)")
        if name not in DEFAULTS:
            raise ValueError(f"unknown limit {name!r}; the limits are {', '.join(DEFAULTS)}")
        if name in found:
            raise ValueError(f"limit {name!r} is given twice")
        matched = _ITEM.match(value.strip().lower().replace(" ", ""))
        if matched is None:
            raise ValueError(
                f"{name}={value.strip()!r} is not COUNT/WINDOW, e.g. {name}={DEFAULTS[name]} "
                "(the window in seconds, or with s, m, h or d)"
            )
        count = int(matched.group(1))
        window = int(matched.group(2)) * _UNITS[matched.group(3) or "s"]
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"{name}: the count must be between 1 and {MAX_COUNT}, not {count}")
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"{name}: the window must be between 1s and 7d, not {window}s")
        found[name] = Limit(count, float(window))
    return found


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix time

    def headers(self) -> dict[str, str]:
        """Mastodon's headers; a refusal also says when to retry (``Retry-After``)."""
        reset = datetime.fromtimestamp(self.reset_at, UTC).isoformat(timespec="milliseconds")
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset.replace("+00:00", "Z"),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset_at - time.time())))
        return headers


def tighter(*decisions: Decision) -> Decision:
    """The decision a client is shown of several counted at once: a refusal (the one lasting
    longest) before any allowance, else the one with the fewest requests left."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.reset_at)
    return min(decisions, key=lambda d: (d.remaining, -d.reset_at))


@dataclass
class Limiter:
    """*limit* hits per *window* seconds for each key, in this process's memory (the window
    starts at a key's first hit). A refused hit counts too, as Redis's ``INCR`` counts it
    (:class:`RedisStore`): taking it back (:meth:`release`) leaves the count as it was, in
    either store."""

    limit: int
    window: float
    clock: Callable[[], float] = time.time
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def hit(self, key: str) -> Decision:
        now = self.clock()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if len(self._windows) > 100_000:  # bound memory: forget expired windows
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
        reset_at = start + self.window
        if count >= self.limit:
            self._windows[key] = (start, count + 1)
            return Decision(False, self.limit, 0, reset_at)
        count += 1
        self._windows[key] = (start, count)
        return Decision(True, self.limit, self.limit - count, reset_at)

    def release(self, key: str) -> None:
        """Take back one hit of *key* in its current window (never below zero)."""
        found = self._windows.get(key)
        if found is not None and found[1] > 0 and self.clock() - found[0] < self.window:
            self._windows[key] = (found[0], found[1] - 1)


# --------------------------------------------------------------------------- stores


class Store:
    """Where counts live. :meth:`hit` counts one hit of limit *name* for *key*."""

    clock: Callable[[], float] = staticmethod(time.time)  # the windows' time (unix seconds)

    def __init__(self, limits: Mapping[str, Limit] | None = None) -> None:
        self.limits: dict[str, Limit] = {**DEFAULTS, **(limits or {})}

    def limit(self, name: str) -> Limit:
        return self.limits[name]

    def set_limits(self, limits: Mapping[str, Limit]) -> None:
        """Count against *limits* (over :data:`DEFAULTS`) from now on: the admin settings
        page changed them (:mod:`fedisora.services.instance_settings`)."""
        self.limits = {**DEFAULTS, **limits}

    async def hit(self, name: str, key: str) -> Decision:
        raise NotImplementedError

    async def release(self, name: str, key: str) -> None:
        """Take back one earlier hit of *name* for *key* (a reservation not spent: a login
        that was not a failure). Nothing happens once its window has passed."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections (at app shutdown)."""


class MemoryStore(Store):
    def __init__(
        self, limits: Mapping[str, Limit] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(limits)
        self.clock = clock
        self._limiters: dict[str, Limiter] = {}

    def hit_now(self, name: str, key: str) -> Decision:
        limiter = self._limiters.get(name)
        if limiter is None:
            limit = self.limit(name)
            limiter = self._limiters[name] = Limiter(limit.count, limit.window, self.clock)
        return limiter.hit(key)

    async def hit(self, name: str, key: str) -> Decision:
        return self.hit_now(name, key)

    def release_now(self, name: str, key: str) -> None:
        limiter = self._limiters.get(name)
        if limiter is not None:
            limiter.release(key)

    async def release(self, name: str, key: str) -> None:
        self.release_now(name, key)

    def set_limits(self, limits: Mapping[str, Limit]) -> None:
        before = self.limits
        super().set_limits(limits)
        for name in [n for n in self._limiters if before.get(n) != self.limits.get(n)]:
            del self._limiters[name]  # a changed limit counts afresh

    def clear(self) -> None:
        """Forget every count."""
        self._limiters.clear()


KEY_PREFIX = "fedisora:rl:"
_RELEASE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""
"""Take one back from a count that exists and is positive (a bare DECR would make a missing
key -1, and a count past its window would come back as a negative credit)."""


class RedisStore(Store):
    """Counts in Redis, shared by every process; a :class:`MemoryStore` when Redis fails."""

    def __init__(
        self,
        redis_url: str,
        limits: Mapping[str, Limit] | None = None,
        *,
        timeout: float = 0.5,
        clock: Callable[[], float] = time.time,
        namespace: str = "",
    ) -> None:
        super().__init__(limits)
        self.redis_url = redis_url
        # Two instances on one Redis (their accounts' ids overlap) count apart.
        self.prefix = f"{KEY_PREFIX}{namespace}:" if namespace else KEY_PREFIX
        self.timeout = timeout
        self.clock = clock
        self.fallback = MemoryStore(self.limits, clock)
        self._failing = False
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def set_limits(self, limits: Mapping[str, Limit]) -> None:
        super().set_limits(limits)
        self.fallback.set_limits(limits)

    def _redis(self) -> Any:
        # A client's connections belong to the event loop that made them: one per loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from redis.asyncio import Redis

            self._client = Redis.from_url(
                self.redis_url,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
            )
            self._loop = loop
        return self._client

    def _key(self, name: str, key: str) -> tuple[str, int, int]:
        window = int(self.limit(name).window)
        start = int(self.clock() // window) * window
        return f"{self.prefix}{name}:{start}:{key}", start, window

    async def hit(self, name: str, key: str) -> Decision:
        limit = self.limit(name)
        redis_key, start, window = self._key(name, key)
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.incr(redis_key)
                pipe.expire(redis_key, window + 1)
                count, _ = await pipe.execute()
        except Exception as exc:  # never a failed request for a counter: count here instead
            if not self._failing:
                self._failing = True
                log.warning(
                    "rate limits: Redis failed (%s: %s); counting in this process until it "
                    "answers again",
                    type(exc).__name__,
                    exc,
                )
            return self.fallback.hit_now(name, key)
        if self._failing:
            self._failing = False
            log.warning("rate limits: Redis answers again; counting there")
        count = int(count)
        reset_at = float(start + window)
        if count > limit.count:
            return Decision(False, limit.count, 0, reset_at)
        return Decision(True, limit.count, limit.count - count, reset_at)

    async def release(self, name: str, key: str) -> None:
        redis_key, _, _ = self._key(name, key)
        try:
            await self._redis().eval(_RELEASE, 1, redis_key)
        except Exception:  # as in hit: the count was kept here, or is lost with Redis
            self.fallback.release_now(name, key)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()


# --------------------------------------------------------------------------- the process's


_current: Store | None = None


def build(settings: Settings) -> Store:
    """The store *settings* ask for: Redis when configured, memory otherwise."""
    if settings.redis_url:
        return RedisStore(settings.redis_url, settings.rate_limits, namespace=settings.domain)
    return MemoryStore(settings.rate_limits)


def configure(settings: Settings) -> Store:
    """Make the process's store from *settings* (at app start) and return it."""
    global _current
    _current = build(settings)
    return _current


def current() -> Store:
    """The process's store (the defaults in memory until :func:`configure`)."""
    global _current
    if _current is None:
        _current = MemoryStore()
    return _current


def for_app(app: Any) -> Store:
    """The store of a Starlette *app* (set by ``create_app``), else the process's."""
    store = getattr(app.state, "rate_limits", None)
    return store if isinstance(store, Store) else current()


def refusal(name: str) -> str:
    return {
        "render": "Too many renders started; try again later",
        "upload": "Too many uploads; try again later",
        "signup": "Too many sign-ups from your network; try again later",
        "optout": "Too many opt-out requests from your network; try again later",
        "lookup": "Too many lookups from your network; try again later",
        "feedback": "Too many feedback reports; try again later",
    }.get(name, "Too many requests")


async def enforce(name: str, key: str, store: Store | None = None) -> Decision:
    """Count a hit of *name* for *key*; raise :class:`RateLimited` (with the decision's
    headers) when it is over the limit."""
    decision = await (store or current()).hit(name, key)
    if not decision.allowed:
        raise RateLimited(refusal(name), headers=decision.headers())
    return decision
