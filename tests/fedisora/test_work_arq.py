"""arq on a real Redis as the executor: same rows, same handlers, Redis only wakes work."""

from __future__ import annotations

import asyncio
import secrets
import time

from arq.worker import Worker
from redis.asyncio import Redis
from work_machines import machine

from fedisora.models import InboxItem, Tag, WorkerHeartbeat
from fedisora.work import Engine
from fedisora.work.arq_worker import (
    SWEEP_BUCKET_MS,
    ArqWaker,
    build_worker,
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
        keys += await waker.pool.keys(f"arq:job:sweep:default:{waker._nonce}:*")
        if keys:
            await waker.pool.delete(*keys)
        await waker.pool.aclose()
