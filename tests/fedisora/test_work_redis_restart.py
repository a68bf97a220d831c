"""Redis going away and coming back (a restart: its keys lost, no persistence; a FLUSHALL):
a ``fedisora worker`` lives through it and sweeps again once Redis answers, a worker started
before Redis waits for it, and a waker (the web process's) enqueues again.

A Redis of the test's own (``redis-server`` on a free port, :func:`throwaway.redis_server`),
never the machine's; real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from arq.worker import Worker as ArqWorker
from factories import local_account
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import WatchError
from throwaway import RedisServer, redis_server
from worker_procs import ARQ_SWEEP, SLACK, Worker, start_worker, wait_until, worker_env

from fedisora.cli import _until_stopped_or_dead
from fedisora.config import load_settings
from fedisora.models import InboxItem, RenderJob, WorkerHeartbeat, utcnow
from fedisora.work import arq_worker
from fedisora.work.arq_worker import REDIS_RETRY_MAX_SECONDS, ArqWaker, build_worker, queue_name
from fedisora.work.machines import build_engine

pytestmark = pytest.mark.parametrize("db", ["postgres"], indirect=True)

RESUME = ARQ_SWEEP + REDIS_RETRY_MAX_SECONDS + SLACK
"""From Redis answering again to a row nothing woke being done: the worker's next poll (its
pause while Redis was away is at most REDIS_RETRY_MAX_SECONDS) and the next cron sweep."""


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    with redis_server(tmp_path) as server:
        yield server


async def _rows_nothing_woke(tick: int) -> tuple[InboxItem, RenderJob]:
    """An inbox item (default queue) and a render job (render queue) stored while no wake-up
    could reach a worker: only a sweep finds them. Both end at once (an unsupported
    activity is ignored; a job cancelled before it started is cancelled)."""
    alice = await local_account()
    now = utcnow()
    item = await InboxItem.create(
        activity_id=f"https://peer.example/flags/{tick}",
        actor_uri="https://peer.example/users/x",
        payload={"type": "Listen", "actor": "https://peer.example/users/x"},
        state="received",
        state_changed_at=now,
        next_attempt_at=now,
    )
    job = await RenderJob.create(
        account=alice,
        spec={"prompt": "never rendered", "seed": 1, "seconds": 0.5},
        state="queued",
        state_changed_at=now,
        next_attempt_at=now,
        cancel_requested=True,
    )
    return item, job


async def _swept(item: InboxItem, job: RenderJob, worker: Worker, what: str) -> float:
    async def done() -> bool:
        return (await InboxItem.get(pk=item.pk)).state == "ignored" and (
            await RenderJob.get(pk=job.pk)
        ).state == "cancelled"

    return await wait_until(done, 60, what, workers=(worker,))


async def _beats_since(pid: int, since: Any) -> set[str]:
    beats = await WorkerHeartbeat.filter(pid=pid, last_seen__gt=since)
    return {b.queues for b in beats}


async def test_a_worker_lives_through_redis_restarts_and_flushes(
    db: str, redis: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    env = worker_env(db, tmp_path / "data", redis_url=redis.url(0))
    worker = await start_worker(env, tmp_path / "worker.log")
    try:
        item, job = await _rows_nothing_woke(0)
        await _swept(item, job, worker, "the rows before any fault")
        for tick, fault in enumerate(("restart", "flush", "restart"), start=1):
            if fault == "restart":
                await asyncio.to_thread(redis.stop)
                await asyncio.sleep(3)  # a few of the worker's polls fail meanwhile
                item, job = await _rows_nothing_woke(tick)  # stored while Redis is down
                await asyncio.to_thread(redis.start)
            else:
                await asyncio.to_thread(redis.flush)
                item, job = await _rows_nothing_woke(tick)
            back, back_at = utcnow(), time.monotonic()
            swept_at = await _swept(item, job, worker, f"the rows after the {fault}")
            assert swept_at - back_at <= RESUME, f"{fault}: swept {swept_at - back_at:.1f} s after"

            async def beating(back: Any = back) -> bool:  # /healthz sees both queues served
                return await _beats_since(worker.pid, back) == {"default", "render"}

            await wait_until(beating, RESUME, f"heartbeats after the {fault}", workers=(worker,))
        assert worker.alive(), worker.output()
        assert "Redis is unreachable" in worker.output()
    finally:
        await worker.stop()


async def test_a_worker_started_before_redis_waits_for_it(
    db: str, redis: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    env = worker_env(db, tmp_path / "data", redis_url=redis.url(0))
    await asyncio.to_thread(redis.stop)
    item, job = await _rows_nothing_woke(0)
    starting = asyncio.create_task(start_worker(env, tmp_path / "worker.log"))
    await asyncio.sleep(4)
    assert not starting.done()  # waiting for Redis, not exited
    await asyncio.to_thread(redis.start)
    worker = await starting
    try:
        await _swept(item, job, worker, "the rows once Redis is up")
    finally:
        await worker.stop()
    assert "trying again" in worker.output()


async def test_a_waker_enqueues_again_after_redis_comes_back(
    db: str, redis: RedisServer, tmp_path: Path
) -> None:
    """The web process's waker: a wake-up while Redis is down fails (the engine logs it and
    the sweep finds the row), and the next one after Redis is back is enqueued. It is made
    while Redis is down, too: a web process starts without Redis."""
    settings = load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": str(tmp_path)}
    )
    engine = build_engine(settings)
    machine = engine.machine("inbox_items")
    item, _ = await _rows_nothing_woke(0)
    await asyncio.to_thread(redis.stop)
    waker = await ArqWaker.connect(redis.url(0), "restart-test")
    try:
        with pytest.raises(RedisConnectionError):
            await waker(machine, item)
        await asyncio.to_thread(redis.start)
        await waker(machine, item)
        queued = await waker.pool.zrange(queue_name("default", "restart-test"), 0, -1)
        assert len(queued) == 1 and f":inbox_items:{item.pk}:received:" in queued[0].decode()
        await asyncio.to_thread(redis.stop)
        await asyncio.to_thread(redis.start)  # its keys are gone; the pool reconnects
        await waker.sweep("default")
        assert await waker.pool.zcard(queue_name("default", "restart-test")) == 1
    finally:
        await waker.pool.aclose()


async def test_a_job_start_cut_by_redis_gives_its_slot_back(
    db: str, redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arq took a job slot for each job it started and kept it when Redis failed in the
    middle: after ``max_jobs`` such failures the worker started no job again."""
    settings = load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": str(tmp_path)}
    )
    worker = build_worker(build_engine(settings), redis.url(0), "default", max_jobs=2)

    async def cut(job_id: str) -> bool:
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(worker, "_start_job", cut)
    for _ in range(5):
        with pytest.raises(RedisConnectionError):
            await worker.start_jobs([b"some-job"])
    assert worker.job_counter == 0
    assert worker.sem._value == worker.max_jobs + 1  # arq's semaphore: max_jobs + 1
    # A connection cut while arq watches the job's key is a WatchError in redis-py: no job
    # started, the slot given back, nothing raised (the next command meets the cut).
    monkeypatch.undo()

    class CutWhileWatching:
        async def __aenter__(self) -> CutWhileWatching:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def watch(self, *keys: str) -> None:
            raise WatchError("A ConnectionError occurred on while watching one or more keys")

    monkeypatch.setattr(worker, "_pool", SimpleNamespace(pipeline=lambda **_: CutWhileWatching()))
    await worker.start_jobs([b"some-job"])
    assert worker.job_counter == 0 and not worker.tasks
    assert worker.sem._value == worker.max_jobs + 1


async def test_the_poll_loop_waits_out_any_redis_error(
    db: str, redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever Redis raises in a poll (a WatchError for a connection cut mid-WATCH was the
    one that ended the chaos suite's worker), the loop pauses and goes on."""
    settings = load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": str(tmp_path)}
    )
    worker = build_worker(build_engine(settings), redis.url(0), "default")
    errors = [
        WatchError("A ConnectionError occurred on while watching one or more keys"),
        RedisConnectionError("Connection closed by server."),
        ConnectionRefusedError(111, "Connection refused"),
    ]

    async def poll(self: Any) -> None:
        raise errors.pop(0)

    monkeypatch.setattr(ArqWorker, "_poll_iteration", poll)
    monkeypatch.setattr(arq_worker, "REDIS_RETRY_MAX_SECONDS", 0.01)
    for _ in range(3):
        await worker._poll_iteration()  # nothing raised
    assert not errors
    assert worker.sem._value == worker.max_jobs + 1  # arq's semaphore: max_jobs + 1


async def test_a_worker_task_that_ends_is_noticed(db: str) -> None:
    """``fedisora worker`` used to await only its stop event: a worker whose loop ended
    (arq's did on a Redis error) left the process running and doing nothing."""

    async def dies() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("the poll loop ended")

    async def lives() -> None:
        await asyncio.sleep(3600)

    stop = asyncio.Event()
    tasks = {asyncio.create_task(dies()): "default", asyncio.create_task(lives()): "render"}
    assert await _until_stopped_or_dead(stop, tasks) == "default"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    live = asyncio.create_task(lives())
    assert await _until_stopped_or_dead(stop, {live: "render"}) is None
    live.cancel()
