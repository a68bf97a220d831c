"""arq as the executor of durable work when ``FEDISORA_REDIS_URL`` is set.

arq only wakes work. Each wake-up enqueues ``advance(table, pk)`` with a ``_job_id`` naming the
row, its state and attempt, so duplicates collapse; ``keep_result=0`` lets the same id be used
again as soon as the job is done. A cron sweep re-enqueues every due row, so flushing Redis,
a crashed worker or a lost message costs a few seconds, never the work itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from fedisora.work.engine import Engine, Machine
from fedisora.work.runner import beat

__all__ = [
    "SWEEP_BUCKET_MS",
    "ArqWaker",
    "build_worker",
    "queue_name",
    "redis_settings",
    "stop_worker",
]

log = logging.getLogger("fedisora.work")


SWEEP_BUCKET_MS = 100


def queue_name(queue: str, prefix: str = "fedisora") -> str:
    return f"{prefix}:{queue}"


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def job_id(machine: Machine, row: Any) -> str:
    """Names the row's present step, so that duplicates collapse: its state, when it entered
    it, the attempt and when that attempt is due (a retry that does not count an attempt
    changes only the last)."""
    changed = int(row.state_changed_at.timestamp() * 1000) if row.state_changed_at else 0
    due = int(row.next_attempt_at.timestamp() * 1000) if row.next_attempt_at else 0
    return f"{machine.name}:{row.pk}:{row.state}:{changed}:{row.attempts}:{due}"


class ArqWaker:
    """Enqueues ``advance`` jobs on Redis when rows become due."""

    def __init__(self, pool: ArqRedis, prefix: str = "fedisora") -> None:
        self.pool = pool
        self.prefix = prefix
        self._swept: dict[str, int] = {}  # queue -> the last time bucket a sweep was asked in

    async def __call__(self, machine: Machine, row: Any) -> None:
        defer = row.next_attempt_at
        if defer is not None and defer <= datetime.now(UTC):
            defer = None
        await self.pool.enqueue_job(
            "advance",
            machine.name,
            row.pk,
            _job_id=job_id(machine, row),
            _queue_name=queue_name(machine.queue, self.prefix),
            _defer_until=defer,
        )

    async def soon(self, machine: Machine) -> None:
        """Many rows of *machine* due now (a batch of inbox items): one ``sweep`` job for its
        queue instead of a job per row. At most one per :data:`SWEEP_BUCKET_MS`: the job id
        names the time bucket, so a burst collapses into a few sweeps, and rows stored while
        a sweep runs get the next one (an id still in use would be refused)."""
        bucket = time.time_ns() // (SWEEP_BUCKET_MS * 1_000_000)
        if self._swept.get(machine.queue) == bucket:
            return  # asked for already
        self._swept[machine.queue] = bucket
        await self.pool.enqueue_job(
            "sweep",
            _job_id=f"sweep:{machine.queue}:{bucket}",
            _queue_name=queue_name(machine.queue, self.prefix),
        )

    @classmethod
    async def connect(cls, url: str, prefix: str = "fedisora") -> ArqWaker:
        return cls(await create_pool(redis_settings(url)), prefix)


def build_worker(
    engine: Engine,
    redis_url: str,
    queue: str,
    *,
    prefix: str = "fedisora",
    max_jobs: int = 10,
    sweep_seconds: Iterable[int] = range(0, 60, 5),
    on_startup: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> Worker:
    """An arq worker for one queue; ``fedisora worker`` runs one per queue in one loop."""
    name = f"arq:{queue}:{socket.gethostname()}:{os.getpid()}"
    machines = [m for m in engine.machines.values() if m.queue == queue]

    async def advance(ctx: dict[str, Any], table: str, pk: Any) -> str:
        return str(await engine.advance(table, pk))

    async def sweep(ctx: dict[str, Any]) -> int:
        """Re-enqueue every due row: the safety net for lost or flushed wake-ups."""
        await beat(name, "arq", [queue], engine.clock)
        waker: ArqWaker = ctx["fedisora_waker"]
        count = 0
        for machine in machines:
            for row in await engine.due(machine, limit=500):
                await waker(machine, row)
                count += 1
        return count

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["fedisora_waker"] = ArqWaker(ctx["redis"], prefix)
        if on_startup is not None:
            await on_startup(ctx)
        await sweep(ctx)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if on_shutdown is not None:
            await on_shutdown(ctx)

    return Worker(
        functions=[
            func(advance, name="advance", keep_result=0, max_tries=1000),
            func(sweep, name="sweep", keep_result=0, max_tries=1, timeout=60),
        ],
        cron_jobs=[
            cron(
                sweep,
                second=set(sweep_seconds),
                run_at_startup=False,
                keep_result=0,
                unique=True,
                timeout=60,
            )
        ],
        queue_name=queue_name(queue, prefix),
        redis_settings=redis_settings(redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=max_jobs,
        job_timeout=24 * 3600,
        handle_signals=False,
        poll_delay=0.2,
    )


async def stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    """Stop a worker started with ``asyncio.create_task(worker.async_run())``.

    Jobs still running are cancelled; their rows keep their lease until it expires and are then
    picked up again. arq's ``close`` re-raises those cancellations, which is expected here.
    """
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.gather(worker.close(), return_exceptions=True)
