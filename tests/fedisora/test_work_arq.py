"""arq on a real Redis as the executor: same rows, same handlers, Redis only wakes work."""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis
from work_machines import machine

from fedisora.models import InboxItem, Tag, WorkerHeartbeat
from fedisora.work import Engine
from fedisora.work.arq_worker import ArqWaker, build_worker, stop_worker


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
