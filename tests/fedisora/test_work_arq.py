"""arq on a real Redis as the executor: same rows, same handlers, Redis only wakes work."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.worker import Worker
from redis.asyncio import Redis
from work_machines import IN_FLIGHT, machine

from fedisora.models import InboxItem, Tag, WorkerHeartbeat, utcnow
from fedisora.work import Engine
from fedisora.work.arq_worker import (
    SWEEP_BUCKET_MS,
    ArqWaker,
    build_worker,
    job_id,
    queue_name,
    stop_worker,
)


async def _run_until_done(engine: Engine, redis_url: str, prefix: str, count: int) -> None:
    worker = build_worker(
        engine, redis_url, "default", prefix=prefix, sweep_seconds=range(60), max_jobs=4
    )
    task = asyncio.create_task(worker.async_run())
    try:
        deadline = time.monotonic() + 30
        while await InboxItem.filter(state="done").count() < count:
            assert time.monotonic() < deadline, "arq worker did not finish the rows"
            assert not task.done(), task.exception() if task.done() else None
            await asyncio.sleep(0.1)
    finally:
        await stop_worker(worker, task)


async def test_arq_worker_advances_rows(db: str, redis_url: str) -> None:
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    engine = Engine([machine()])
    waker = await ArqWaker.connect(redis_url, prefix)
    engine.add_waker(waker)
    try:
        for i in range(5):
            await engine.create(InboxItem, activity_id=f"arq{i}", actor_uri="x", payload={})
        queued = await waker.pool.zcard(f"{prefix}:default")
        assert queued == 5  # one wake-up per row, deduplicated by job id
        await _run_until_done(engine, redis_url, prefix, 5)
    finally:
        await waker.pool.aclose()
    assert await Tag.filter(name__startswith="effect-arq").count() == 5
    assert await WorkerHeartbeat.filter(kind="arq", queues="default").exists()


async def test_flushing_redis_loses_no_work(db: str, redis_url: str) -> None:
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    engine = Engine([machine()])
    waker = await ArqWaker.connect(redis_url, prefix)
    engine.add_waker(waker)
    try:
        for i in range(5):
            await engine.create(InboxItem, activity_id=f"flush{i}", actor_uri="x", payload={})
    finally:
        await waker.pool.aclose()
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        assert await redis.dbsize() == 0
    finally:
        await redis.aclose()
    # Every queued job is gone; the cron sweep finds the rows again.
    await _run_until_done(Engine([machine()]), redis_url, prefix, 5)
    assert await Tag.filter(name__startswith="effect-flush").count() == 5


async def _drain_with_worker(worker: Worker, count: int) -> None:
    task = asyncio.create_task(worker.async_run())
    try:
        deadline = time.monotonic() + 30
        while await InboxItem.filter(state="done").count() < count:
            assert time.monotonic() < deadline, "arq worker did not finish the rows"
            assert not task.done(), task.exception() if task.done() else None
            await asyncio.sleep(0.05)
    finally:
        await stop_worker(worker, task)


async def test_a_sweep_advances_due_rows_itself(db: str, redis_url: str) -> None:
    """Rows stored with no wake-up at all (say, while Redis was down): the worker's first
    sweep advances them itself, with no job per row."""
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    engine = Engine([machine()])  # no waker: nothing is enqueued for these rows
    for i in range(30):
        await engine.create(InboxItem, activity_id=f"swept{i}", actor_uri="x", payload={})
    worker = build_worker(engine, redis_url, "default", prefix=prefix, max_jobs=4)
    await _drain_with_worker(worker, 30)
    assert await Tag.filter(name__startswith="effect-swept").count() == 30
    # 60 steps (received -> processing -> done), yet only a few sweep jobs ran.
    assert worker.jobs_complete < 10, worker.jobs_complete


async def test_a_sweep_past_its_budget_hands_over_to_another(db: str, redis_url: str) -> None:
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    engine = Engine([machine()])
    for i in range(30):
        await engine.create(InboxItem, activity_id=f"budget{i}", actor_uri="x", payload={})
    worker = build_worker(engine, redis_url, "default", prefix=prefix, max_jobs=2, sweep_budget=0.0)
    await _drain_with_worker(worker, 30)
    assert await Tag.filter(name__startswith="effect-budget").count() == 30
    assert worker.jobs_complete >= 2  # each sweep claimed once and asked for the next


async def test_sweep_requests_collapse_and_start_after_they_are_made(redis_url: str) -> None:
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    waker = await ArqWaker.connect(redis_url, prefix)
    try:
        into_bucket = time.time() * 1000 % SWEEP_BUCKET_MS
        await asyncio.sleep((SWEEP_BUCKET_MS * 1.05 - into_bucket) / 1000)  # a bucket's start
        asked = time.time()
        for _ in range(3):
            await waker.sweep("default")
        jobs = await waker.pool.zrange(queue_name("default", prefix), 0, -1, withscores=True)
        # One at once; the ones asked for after it share one that starts with the next
        # time bucket (the first may have looked already by then).
        assert len(jobs) == 2, jobs
        scores = sorted(score for _, score in jobs)
        assert scores[0] <= time.time() * 1000
        assert scores[1] == (int(asked * 1000) // SWEEP_BUCKET_MS + 1) * SWEEP_BUCKET_MS
    finally:
        keys = await waker.pool.keys(f"{prefix}*")
        keys += await waker.pool.keys(f"arq:job:{prefix}:sweep:default:{waker._nonce}:*")
        if keys:
            await waker.pool.delete(*keys)
        await waker.pool.aclose()


# --- whatever Redis still holds, a due row runs ------------------------------------------------


async def _until(predicate: Callable[[], Awaitable[bool]], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


LEASE = timedelta(seconds=2)
SWEEP = 1.0  # the workers below sweep every second


async def _held_by_a_dead_runner(engine: Engine, name: str, **payload: object) -> InboxItem:
    """A heavy row in "processing" whose runner died: its lease ran out, its token is
    still there."""
    now = utcnow()
    row: InboxItem = await InboxItem.create(
        activity_id=name,
        actor_uri="https://x/a",
        payload=payload,
        state="processing",
        state_changed_at=now - timedelta(seconds=30),
        next_attempt_at=now - timedelta(seconds=30),
        locked_until=now - timedelta(seconds=1),
        lock_token="the-dead-runner",
    )
    return row


async def _plant(redis: Redis, left: str, ident: str, queue: str) -> None:
    """What a worker of the older kind left in Redis under the row's job id."""
    job, result, running = (
        p + ident for p in (job_key_prefix, result_key_prefix, in_progress_key_prefix)
    )
    if left == "flushed":
        return
    if left == "result":  # a result kept (arq's default keeps them an hour, failures too)
        await redis.set(result, b"stale", px=3600_000)
        return
    await redis.psetex(job, 86400_000, b"stale job")  # never read: the job's row is the truth
    if left == "in-progress":  # killed mid-job: queued, marked running for a day
        await redis.zadd(queue, {ident: time.time() * 1000 - 30_000})
        await redis.psetex(running, 86400_000, b"1")
    # "orphan": a job key without its queue entry (one and the other went apart)


@pytest.mark.parametrize("left", ["in-progress", "result", "orphan", "flushed"])
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_due_row_runs_whatever_redis_holds_under_its_id(
    db: str, redis_url: str, left: str
) -> None:
    """A due heavy row, re-enqueued by a sweep under the id of its step, runs within a lease
    and a sweep of the worker's start, however stuck its id is in Redis; once."""
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    m = machine(light=False)
    engine = Engine([m], lease=LEASE)
    row = await _held_by_a_dead_runner(engine, f"stuck-{left}")
    ident = job_id(m, row, prefix)
    redis = Redis.from_url(redis_url)
    try:
        await _plant(redis, left, ident, queue_name("default", prefix))
        worker = build_worker(engine, redis_url, "default", prefix=prefix, sweep_seconds=range(60))
        started = time.monotonic()
        task = asyncio.create_task(worker.async_run())
        try:
            while (await InboxItem.get(pk=row.pk)).state != "done":
                assert time.monotonic() - started < 30, f"{left}: the row never ran"
                assert not task.done(), task.exception() if task.done() else None
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
        finally:
            await stop_worker(worker, task)
        keys = await redis.keys(f"*{prefix}*")
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    assert took <= LEASE.total_seconds() + SWEEP + 1.5, f"{left}: ran {took:.1f} s after the start"
    assert await Tag.filter(name=f"effect-stuck-{left}").count() == 1


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_running_jobs_in_progress_marker_is_a_renewed_lease(
    db: str, redis_url: str
) -> None:
    """The marker lives a lease, renewed while the job runs (three leases here): never
    startable twice while its worker lives, startable within a lease once it died."""
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    m = machine(light=False)
    engine = Engine([m], lease=LEASE)
    waker = await ArqWaker.connect(redis_url, prefix)
    engine.add_waker(waker)
    pause = 3 * LEASE.total_seconds()
    row = await engine.create(
        InboxItem, activity_id="long", actor_uri="x", payload={"pause": pause}
    )
    worker = build_worker(engine, redis_url, "default", prefix=prefix, sweep_seconds=range(60))
    task = asyncio.create_task(worker.async_run())
    try:

        async def processing() -> bool:
            return await InboxItem.filter(pk=row.pk, state="processing").exists()

        await _until(processing, 20)
        row = await InboxItem.get(pk=row.pk)
        marker = in_progress_key_prefix + job_id(m, row, prefix)

        async def started() -> bool:
            return bool(await waker.pool.exists(marker))

        await _until(started, 10)
        ttls = []
        while await InboxItem.filter(pk=row.pk, state="processing").exists():
            ttls.append(await waker.pool.pttl(marker))
            await asyncio.sleep(0.1)
        if ttls[-1] == -2:  # the step ended between the two looks
            ttls.pop()
    finally:
        await stop_worker(worker, task)
        keys = await waker.pool.keys(f"*{prefix}*")
        if keys:
            await waker.pool.delete(*keys)
        await waker.pool.aclose()
    assert len(ttls) > 40  # sampled through the whole step
    assert all(0 < ttl <= LEASE.total_seconds() * 1000 for ttl in ttls), ttls
    assert await Tag.filter(name="effect-long").count() == 1
    assert (await InboxItem.get(pk=row.pk)).state == "done"


class _SlowGiveBack(Engine):
    """An engine whose give-back takes a while, as it does on a loaded database."""

    async def give_back(self, machine: Any, pk: Any, token: str) -> None:
        await asyncio.sleep(0.5)
        await super().give_back(machine, pk, token)


async def test_a_stopped_worker_returns_only_once_its_cancelled_steps_gave_their_rows_back(
    db: str, redis_url: str
) -> None:
    """arq's own close returns when its first cancelled job ends (here a quick one beside the
    step); the caller then closes the database. stop_worker waits for the step's give-back,
    so the row is free for the next worker without an attempt counted."""
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    m = machine(light=False)
    engine = _SlowGiveBack([m], lease=LEASE)
    waker = await ArqWaker.connect(redis_url, prefix)
    engine.add_waker(waker)
    row = await engine.create(InboxItem, activity_id="given", actor_uri="x", payload={"pause": 60})
    worker = build_worker(engine, redis_url, "default", prefix=prefix, sweep_seconds=range(60))
    task = asyncio.create_task(worker.async_run())
    try:

        async def pausing() -> bool:
            return IN_FLIGHT["now"] == 1  # the step is in its pause, its row claimed

        await _until(pausing, 20)
        worker.tasks["quick"] = asyncio.create_task(asyncio.sleep(60))
    finally:
        await stop_worker(worker, task, grace=0)
        keys = await waker.pool.keys(f"*{prefix}*")
        if keys:
            await waker.pool.delete(*keys)
        await waker.pool.aclose()
    given = await InboxItem.get(pk=row.pk)
    assert (given.state, given.lock_token, given.attempts) == ("processing", None, 0)
