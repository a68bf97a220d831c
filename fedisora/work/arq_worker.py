"""arq as the executor of durable work when ``FEDISORA_REDIS_URL`` is set.

arq only wakes work. Each wake-up enqueues ``advance(table, pk)`` with a ``_job_id`` naming the
row, its state and attempt, so duplicates collapse; ``keep_result=0`` lets the same id be used
again as soon as the job is done. A ``sweep`` job (every few seconds from cron, and whenever
many rows became due at once) finds due rows, so flushing Redis, a crashed worker or a lost
message costs a few seconds, never the work itself.

A sweep advances light machines' rows (:attr:`Machine.is_light`: inbox items, deliveries)
itself, through the worker's :class:`~fedisora.work.runner.Pump`: claimed in batches, at most
``max_jobs`` at a time, while rows are due and for at most :data:`SWEEP_BUDGET_SECONDS`; then
it asks for a follow-up sweep so that the jobs queued meanwhile get their turn. A job per row
would cost a Redis round trip and a poll each, which capped a worker at about a hundred rows
a second. Heavy machines' due rows (render jobs) are re-enqueued as ``advance`` jobs, in
their machine's order, as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from fedisora.work.engine import Engine, Machine
from fedisora.work.runner import Pump, beat

__all__ = [
    "SWEEP_BUCKET_MS",
    "SWEEP_BUDGET_SECONDS",
    "ArqWaker",
    "build_worker",
    "queue_name",
    "redis_settings",
    "stop_worker",
]

log = logging.getLogger("fedisora.work")


_PUMP = "fedisora_pump"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SWEEP_BUCKET_MS = 100
SWEEP_BUDGET_SECONDS = 5.0
"""How long one sweep keeps claiming light rows before it hands over to a follow-up sweep."""
BEAT_SECONDS = 5.0


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
        self._swept: dict[str, int] = {}  # queue -> the last time bucket a sweep was asked for
        # In sweep job ids: another process's sweep of the same bucket, which may have
        # looked already, does not swallow ours.
        self._nonce = secrets.token_hex(4)

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
        queue instead of a job per row."""
        await self.sweep(machine.queue)

    async def sweep(self, queue: str) -> None:
        """Ask for a ``sweep`` of *queue* that starts after now, at most one per
        :data:`SWEEP_BUCKET_MS`: the job id names the time bucket, so a burst collapses into
        a few sweeps. The sweep asked for in this bucket may have started already, so a
        second ask in the bucket gets one deferred to the start of the next."""
        bucket = time.time_ns() // (SWEEP_BUCKET_MS * 1_000_000)
        asked = self._swept.get(queue)
        if asked is not None and asked > bucket:
            return  # one is deferred to start after now
        defer = None
        if asked == bucket:
            bucket += 1
            defer = _EPOCH + timedelta(milliseconds=bucket * SWEEP_BUCKET_MS)
        self._swept[queue] = bucket
        await self.pool.enqueue_job(
            "sweep",
            _job_id=f"sweep:{queue}:{self._nonce}:{bucket}",
            _queue_name=queue_name(queue, self.prefix),
            _defer_until=defer,
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
    sweep_budget: float = SWEEP_BUDGET_SECONDS,
    on_startup: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> Worker:
    """An arq worker for one queue; ``fedisora worker`` runs one per queue in one loop.

    Its sweeps advance the queue's light rows through a :class:`Pump` of *max_jobs* slots
    (besides arq's own *max_jobs* for ``advance`` jobs) for up to *sweep_budget* seconds.
    """
    name = f"arq:{queue}:{socket.gethostname()}:{os.getpid()}"
    machines = [m for m in engine.machines.values() if m.queue == queue]
    heavy = [m for m in machines if not m.is_light]
    pump = Pump(
        engine, [m for m in machines if m.is_light], concurrency=max_jobs, prefetch=2 * max_jobs
    )
    light = {m.name for m in pump.machines}
    last_beat: list[float] = []

    async def wake_pump(machine: Machine, row: Any) -> None:
        if machine.name in light:  # a sweep under way takes it too (its job may come later)
            pump.wake()

    engine.add_waker(wake_pump)

    async def advance(ctx: dict[str, Any], table: str, pk: Any) -> str:
        return str(await engine.advance(table, pk))

    async def sweep(ctx: dict[str, Any]) -> int:
        """Advance due light rows; re-enqueue due heavy rows: the safety net for lost or
        flushed wake-ups. Returns how many rows were re-enqueued."""
        if not last_beat or time.monotonic() - last_beat[0] > BEAT_SECONDS:
            await beat(name, "arq", [queue], engine.clock)
            last_beat[:] = [time.monotonic()]
        waker: ArqWaker = ctx["fedisora_waker"]
        count = 0
        for machine in heavy:
            for row in await engine.due(machine, limit=500):
                await waker(machine, row)
                count += 1
        if pump.machines:
            pump.wake()
            if await pump.run(time.monotonic() + sweep_budget):
                await waker.sweep(queue)  # rows are left: a follow-up, after the jobs queued
        return count

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["fedisora_waker"] = ArqWaker(ctx["redis"], prefix)
        if on_startup is not None:
            await on_startup(ctx)
        await ctx["fedisora_waker"].sweep(queue)  # the rows left from before, at once

    async def shutdown(ctx: dict[str, Any]) -> None:
        await pump.close(cancel=True)
        if on_shutdown is not None:
            await on_shutdown(ctx)

    return Worker(
        functions=[
            func(advance, name="advance", keep_result=0, max_tries=1000),
            func(sweep, name="sweep", keep_result=0, max_tries=1, timeout=sweep_budget + 60),
        ],
        cron_jobs=[
            cron(
                sweep,
                second=set(sweep_seconds),
                run_at_startup=False,
                keep_result=0,
                unique=True,
                timeout=sweep_budget + 60,
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
        ctx={_PUMP: pump},
    )


async def stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    """Stop a worker started with ``asyncio.create_task(worker.async_run())``.

    Jobs still running are cancelled, and so are the rows its sweeps started; their rows keep
    their lease until it expires and are then picked up again. Rows claimed but not started
    are given back at once. arq's ``close`` re-raises those cancellations, which is expected
    here (and skips ``on_shutdown``, hence the pump is closed here too).
    """
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.gather(worker.close(), return_exceptions=True)
    pump: Pump | None = worker.ctx.get(_PUMP)
    if pump is not None:
        await pump.close(cancel=True)
