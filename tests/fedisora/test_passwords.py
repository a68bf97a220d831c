"""Passwords: scrypt runs off the event loop on a bounded hasher; one guard limits failed
attempts per client IP and per account; and every password check in the code goes through
it (read from the source, so that a new check cannot skip it)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from fedisora.services import passwords
from fedisora.services.passwords import (
    Hasher,
    PasswordChecksBusy,
    PasswordGuard,
    TooManyAttempts,
    hash_password,
    verify_guarded,
    verify_password,
)

ROOT = Path(__file__).resolve().parents[2]
STORED = hash_password("correct horse battery")


def test_hash_and_verify() -> None:
    assert verify_password("correct horse battery", STORED)
    assert not verify_password("wrong", STORED)
    assert not verify_password("\ud800", STORED)  # a lone surrogate cannot be encoded
    assert not verify_password("x", "md5$nope")
    assert not verify_password("x", passwords._DUMMY_HASH)
    assert hash_password("x") != hash_password("x")  # salted


async def test_the_hasher_runs_off_the_loop_and_refuses_beyond_its_queue() -> None:
    hasher = Hasher(threads=1, waiting=2)
    ticks = 0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    assert await hasher.verify("correct horse battery", STORED)
    stop.set()
    await ticker
    assert ticks > 1  # the loop kept running while scrypt ran (on the loop it would be 1)

    results = await asyncio.gather(
        *(hasher.verify("wrong", STORED) for _ in range(10)), return_exceptions=True
    )
    busy = [r for r in results if isinstance(r, PasswordChecksBusy)]
    assert len(busy) == 7 and results.count(False) == 3  # 1 running + 2 waiting
    assert busy[0].status == 503
    assert hasher.pending == 0
    assert await hasher.hash("x") != ""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_guard_counts_failures_per_ip_and_per_account() -> None:
    clock = Clock()
    guard = PasswordGuard(per_ip=3, ip_window=60, per_account=2, account_window=600, clock=clock)

    async def check(password: str, ip: str, account: str) -> bool:
        return await verify_guarded(guard, password, STORED, ip=ip, account=account)

    # Successes never count.
    for _ in range(5):
        assert await check("correct horse battery", "10.0.0.1", "user:1")
    # Two failures spend user:1's budget, from any address.
    assert not await check("wrong", "10.0.0.1", "user:1")
    assert not await check("wrong", "10.0.0.2", "user:1")
    with pytest.raises(TooManyAttempts) as refused:
        await check("correct horse battery", "10.0.0.3", "user:1")  # refused before hashing
    assert refused.value.status == 429 and 599 <= refused.value.retry_after <= 600
    assert refused.value.headers() == {"Retry-After": str(refused.value.retry_after)}
    assert "10 minutes" in refused.value.message
    # 10.0.0.1 has one failure; two more on other accounts spend its budget.
    assert not await check("wrong", "10.0.0.1", "user:2")
    assert not await check("wrong", "10.0.0.1", "login:nobody")
    with pytest.raises(TooManyAttempts):
        await check("correct horse battery", "10.0.0.1", "user:3")
    # Windows end: the address first, the account later.
    clock.now += 61
    assert await check("correct horse battery", "10.0.0.1", "user:3")
    with pytest.raises(TooManyAttempts):
        await check("correct horse battery", "10.0.0.1", "user:1")
    clock.now += 600
    assert await check("correct horse battery", "10.0.0.1", "user:1")


async def test_concurrent_attempts_cannot_overshoot_the_limit() -> None:
    guard = PasswordGuard(per_ip=100, per_account=3, hasher=Hasher(threads=2, waiting=50))
    results = await asyncio.gather(
        *(
            verify_guarded(guard, "wrong", STORED, ip="10.0.0.9", account="user:9")
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    assert results.count(False) == 3
    assert sum(isinstance(r, TooManyAttempts) for r in results) == 7


async def test_an_unknown_account_costs_a_hash_and_fails() -> None:
    guard = PasswordGuard(per_ip=5, per_account=1)
    assert not await verify_guarded(guard, "anything", None, ip="10.0.0.5", account="login:x")
    with pytest.raises(TooManyAttempts):
        await verify_guarded(guard, "anything", None, ip="10.0.0.5", account="login:x")


# --- every password check goes through verify_guarded -----------------------------------------

SOURCES = ("fedisora", "web", "activitypub", "render")
CALLERS_OF_VERIFY_GUARDED = {
    "fedisora/services/accounts.py",  # authenticate: web login, OAuth password grant
    "web/sessions.py",  # password_refusal: deleting one's account
    "fedisora/services/credentials.py",  # change_password
}


def _python_files() -> list[Path]:
    return [p for d in SOURCES for p in (ROOT / d).rglob("*.py")]


def test_no_code_checks_a_password_outside_the_guard() -> None:
    """Reading the code: the raw checks (``verify_password``, ``hashlib.scrypt``) appear only
    in passwords.py, where only :func:`verify_guarded` reaches them from async code; and the
    callers of ``verify_guarded`` are the known ones (a new one is added here knowingly)."""
    raw = re.compile(r"\bverify_password\b|\bscrypt\(|\.verify\(\s*password|hasher\.verify")
    outside = {
        str(p.relative_to(ROOT))
        for p in _python_files()
        if raw.search(p.read_text()) and p.name != "passwords.py"
    }
    assert outside == set()
    source = (ROOT / "fedisora/services/passwords.py").read_text()
    body = source.split("async def verify_guarded", 1)[1]
    assert "guard.reserve(" in body.split("hasher.verify", 1)[0]  # limited before hashing
    callers = {
        str(p.relative_to(ROOT))
        for p in _python_files()
        if "verify_guarded(" in p.read_text() and p.name != "passwords.py"
    }
    assert callers == CALLERS_OF_VERIFY_GUARDED
    # authenticate is the only other door, and every caller hands it the app's guard.
    for path in _python_files():
        text = path.read_text()
        for call in re.finditer(r"await authenticate\((.*?)\)\n", text, re.S):
            assert "guard=" in call.group(1), (path, call.group(0))


def test_no_code_hashes_a_password_on_the_event_loop() -> None:
    hashing = re.compile(r"\bhash_password\(")
    outside = {
        str(p.relative_to(ROOT))
        for p in _python_files()
        if hashing.search(p.read_text()) and p.name != "passwords.py"
    }
    assert outside == set()


async def test_a_guard_on_redis_counts_failures_across_processes(redis_url: str) -> None:
    """Two web processes' guards on one Redis share the counts of failures (not of
    successes); a refused attempt reserves nothing; the app's guard counts in the app's
    store, Redis or memory alike."""
    from types import SimpleNamespace
    from uuid import uuid4

    from fedisora.ratelimits import Limit, MemoryStore, RedisStore

    limits = {"login": Limit(2, 3600.0), "login_ip": Limit(3, 300.0)}

    # One instant for both "processes", in the middle of both windows: the counts are in
    # fixed windows, and a window ending mid-test would start the counts afresh.
    def now() -> float:
        return 1_000_000_000.0 + 150

    one, two = RedisStore(redis_url, limits, clock=now), RedisStore(redis_url, limits, clock=now)
    ip, elsewhere = f"ip-{uuid4().hex}", f"ip-{uuid4().hex}"  # unique keys, run after run
    user, other = f"user:{uuid4().hex}", f"user:{uuid4().hex}"
    first = PasswordGuard(store=one, per_ip=1, per_account=1)  # a store's limits, not these
    second = PasswordGuard(store=two)
    try:
        assert await verify_guarded(first, "correct horse battery", STORED, ip=ip, account=user)
        assert not await verify_guarded(first, "wrong", STORED, ip=ip, account=user)
        assert not await verify_guarded(second, "wrong", STORED, ip=ip, account=user)
        for guard in (first, second):  # user has spent its two failures, in both processes
            with pytest.raises(TooManyAttempts) as refused:
                await verify_guarded(guard, "correct horse battery", STORED, ip=ip, account=user)
            assert 0 < refused.value.retry_after <= 3600
        # The address has two failures: a third on another account spends it; the refusals
        # above counted nothing.
        assert not await verify_guarded(second, "wrong", STORED, ip=ip, account=other)
        with pytest.raises(TooManyAttempts):
            await verify_guarded(first, "correct horse battery", STORED, ip=ip, account=other)
        assert await verify_guarded(
            first, "correct horse battery", STORED, ip=elsewhere, account=other
        )  # another address: other has one failure of two
    finally:
        await one.aclose()
        await two.aclose()
    redis_store, memory_store = RedisStore(redis_url, limits), MemoryStore(limits)
    assert passwords.guard_for(SimpleNamespace(rate_limits=redis_store)).store is redis_store
    assert passwords.guard_for(SimpleNamespace(rate_limits=memory_store)).store is memory_store
