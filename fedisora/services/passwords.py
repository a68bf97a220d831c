"""Passwords: scrypt hashing off the event loop, and the one limiter of every password check.

Hashing is the standard library's scrypt, hand-rolled on purpose: ``hashlib.scrypt`` is a
memory-hard KDF already in the standard library, so a dependency (passlib is unmaintained,
argon2-cffi needs a C build) buys nothing. Format: ``scrypt$n$r$p$salt_b64$hash_b64``.

One hash costs tens of milliseconds of CPU and 16 MB of memory, so it never runs on the event
loop: :class:`Hasher` runs it on a few threads of its own (OpenSSL's scrypt releases the GIL),
and refuses at once (:class:`PasswordChecksBusy`, a 503) when more calls wait than it allows,
so a flood of logins can exhaust neither threads nor memory.

Every password check (web login, the OAuth password grant, the confirmation of an account
deletion, a password change, any future one) goes through :func:`verify_guarded`, which asks
the app's :class:`PasswordGuard` first: per client IP and per account, a number of failed
attempts in a window; past it the check is refused before any hashing
(:class:`TooManyAttempts`, a 429 saying when to retry). A success does not count. The counts
live where the rate limits' do (:mod:`fedisora.ratelimits`, limits ``login`` and
``login_ip``): in Redis when the instance has one, shared by every web process, else in this
process's memory (a restart forgets them, and each web process counts apart). Either way the
limits are the store's as they are at each attempt: changed at ``/admin/settings``, they apply
at once, without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fedisora import ratelimits
from fedisora.errors import FedisoraError, RateLimited

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "Hasher",
    "PasswordChecksBusy",
    "PasswordGuard",
    "TooManyAttempts",
    "default_hasher",
    "guard_for",
    "hash_password",
    "hash_password_off_loop",
    "user_key",
    "verify_guarded",
    "verify_password",
]

_N, _R, _P = 2**14, 8, 1
MIN_LENGTH = 8
MAX_LENGTH = 1024
_DUMMY_HASH = f"scrypt${_N}${_R}${_P}${'A' * 22}==${'A' * 43}="
"""Checked against when there is no account, so that an unknown login takes as long."""

# Mastodon's sign-in throttles (Rack::Attack): 25 per IP in 5 minutes, 25 per account an hour.
PER_IP, IP_WINDOW = ratelimits.DEFAULTS["login_ip"].count, ratelimits.DEFAULTS["login_ip"].window
PER_ACCOUNT, ACCOUNT_WINDOW = (
    ratelimits.DEFAULTS["login"].count,
    ratelimits.DEFAULTS["login"].window,
)

T = TypeVar("T")


def hash_password(password: str) -> str:
    """The stored form of *password*. CPU-bound: call :func:`hash_password_off_loop` from
    async code."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether *password* matches *stored*. CPU-bound, and not rate-limited: async code checks
    passwords with :func:`verify_guarded` only."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(hash_b64)
        digest = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt_b64),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(digest, expected)


class PasswordChecksBusy(FedisoraError):
    """More password checks wait than the hasher allows: try again in a moment."""

    status = 503
    retry_after = 1


class TooManyAttempts(RateLimited):
    """The client IP or the account has no failed password attempts left for now."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        minutes = math.ceil(self.retry_after / 60)
        when = f"{minutes} minute{'s' if minutes != 1 else ''}"
        super().__init__(f"Too many failed password attempts; try again in {when}.")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Hasher:
    """Runs scrypt on *threads* threads of its own; at most *waiting* more calls queue, and
    any call beyond raises :class:`PasswordChecksBusy` without queueing."""

    def __init__(self, threads: int, waiting: int) -> None:
        self.threads = threads
        self.waiting = waiting
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scrypt")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls running or queued (a cancelled caller's call counts until its thread ends)."""
        return self._pending

    def _release(self, _future: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._pending >= self.threads + self.waiting:
                raise PasswordChecksBusy("Too many password checks at once; try again in a moment.")
            self._pending += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    async def verify(self, password: str, stored: str) -> bool:
        return await self.run(verify_password, password, stored)

    async def hash(self, password: str) -> str:
        return await self.run(hash_password, password)


_default_hasher: Hasher | None = None


def default_hasher() -> Hasher:
    """The process's hasher: half the CPUs (at least one thread), so that the event loop keeps
    a core under a login flood, and 32 calls waiting at most."""
    global _default_hasher
    if _default_hasher is None:
        _default_hasher = Hasher(threads=max(1, (os.cpu_count() or 2) // 2), waiting=32)
    return _default_hasher


async def hash_password_off_loop(password: str) -> str:
    """:func:`hash_password` on the process's :class:`Hasher`."""
    return await default_hasher().hash(password)


@dataclass
class PasswordGuard:
    """Failed password attempts per client IP (the rate limit ``login_ip``) and per account
    (``login``), counted in a rate-limit *store* (:mod:`fedisora.ratelimits`), whose limits
    in force are read at each attempt.

    An attempt reserves one failure in both counts before its check runs (so concurrent
    attempts cannot overshoot the limit); a success gives the reservation back. The app's
    guard (:func:`guard_for`) counts in the app's store, Redis or memory alike, so a limit
    the admin changes at ``/admin/settings`` applies to the next attempt in both. A guard
    made without a store counts in a :class:`~fedisora.ratelimits.MemoryStore` of its own,
    with the limits given here (*per_ip* per *ip_window* seconds, *per_account* per
    *account_window*).
    """

    per_ip: int = PER_IP
    ip_window: float = IP_WINDOW
    per_account: int = PER_ACCOUNT
    account_window: float = ACCOUNT_WINDOW
    hasher: Hasher = field(default_factory=default_hasher)
    clock: Callable[[], float] = time.monotonic
    store: ratelimits.Store | None = None

    def __post_init__(self) -> None:
        if self.store is None:
            own = {
                "login_ip": ratelimits.Limit(self.per_ip, self.ip_window),
                "login": ratelimits.Limit(self.per_account, self.account_window),
            }
            self.store = ratelimits.MemoryStore(own, clock=self.clock)

    @property
    def counts(self) -> ratelimits.Store:
        """Where the attempts are counted (the store given, or the guard's own)."""
        assert self.store is not None  # set in __post_init__
        return self.store

    async def reserve(self, *, ip: str, account: str) -> None:
        """Reserve one failed attempt for *ip* and *account*, or raise :class:`TooManyAttempts`
        (nothing reserved) when either has none left under the store's current limits."""
        store = self.counts
        hits = (("login_ip", ip), ("login", account))
        decisions = [await store.hit(name, key) for name, key in hits]
        refused = [d for d in decisions if not d.allowed]
        if refused:
            for name, key in hits:  # a refused attempt reserves nothing
                await store.release(name, key)
            raise TooManyAttempts(max(d.reset_at for d in refused) - store.clock())

    async def give_back(self, *, ip: str, account: str) -> None:
        """Give back the reservation of an attempt that was not a failure."""
        await self.counts.release("login_ip", ip)
        await self.counts.release("login", account)


def user_key(user_id: int) -> str:
    """The *account* of :func:`verify_guarded` for a login row."""
    return f"user:{user_id}"


def guard_for(state: Any) -> PasswordGuard:
    """The :class:`PasswordGuard` of an app (its ``app.state``), made on first use: it counts
    in the app's rate-limit store (Redis, shared by every process, or this process's memory)
    under its ``login`` and ``login_ip`` limits as they are at each attempt."""
    guard = getattr(state, "password_guard", None)
    if not isinstance(guard, PasswordGuard):
        store = getattr(state, "rate_limits", None)
        guard = PasswordGuard(store=store if isinstance(store, ratelimits.Store) else None)
        state.password_guard = guard
    return guard


async def verify_guarded(
    guard: PasswordGuard, password: str, stored: str | None, *, ip: str, account: str
) -> bool:
    """The one way to check a password: whether *password* matches *stored* (None: there is
    no such account; a dummy hash is checked so that it takes as long).

    *account* names what is being logged into (``user:<id>``, or the login name given when
    it names nobody), *ip* the client. Raises :class:`TooManyAttempts` before hashing when
    either has no failed attempts left, :class:`PasswordChecksBusy` when the hasher is full.
    """
    await guard.reserve(ip=ip, account=account)
    try:
        ok = await guard.hasher.verify(password, stored or _DUMMY_HASH) and stored is not None
    except BaseException:
        await guard.give_back(ip=ip, account=account)  # not checked: not a failure
        raise
    if ok:
        await guard.give_back(ip=ip, account=account)
    return ok
