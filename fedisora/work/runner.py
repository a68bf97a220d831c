"""The in-process runner: sweeps due rows and advances them, with no Redis.

Used by ``serve`` on embedded defaults and by ``fedisora worker`` without ``FEDISORA_REDIS_URL``.
It calls the same :meth:`Engine.advance` as the arq worker, so behaviour is identical; only the
wake-up differs (an in-memory event plus polling, since other processes may add rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from fedisora.models import WorkerHeartbeat
from fedisora.work.engine import Engine, Machine

__all__ = ["InProcessRunner", "beat"]

log = logging.getLogger("fedisora.work")


async def beat(name: str, kind: str, queues: Iterable[str], clock: Any) -> None:
    """Record that a runner is alive (read by /healthz)."""
    now = clock()
    updated = await WorkerHeartbeat.filter(name=name).update(last_seen=now, pid=os.getpid())
    if not updated:
        await WorkerHeartbeat.create(
            name=name,
            kind=kind,
            pid=os.getpid(),
            queues=",".join(queues),
            started_at=now,
            last_seen=now,
        )


class InProcessRunner:
    """Advances rows of the given queues in this event loop until stopped."""

    def __init__(
        self,
        engine: Engine,
        queues: Iterable[str] = ("default",),
        *,
        poll_interval: float = 1.0,
        concurrency: int = 4,
        name: str | None = None,
    ) -> None:
        self.engine = engine
        self.queues = tuple(queues)
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.name = name or f"inprocess:{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._running: set[tuple[str, Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        engine.add_waker(self._on_wake, soon=self._on_soon)

    @property
    def machines(self) -> list[Machine]:
        return [m for m in self.engine.machines.values() if m.queue in self.queues]

    async def _on_wake(self, machine: Machine, row: Any) -> None:
        if machine.queue in self.queues:
            self._wake.set()

    async def _on_soon(self, machine: Machine) -> None:
        if machine.queue in self.queues:
            self._wake.set()

    def start(self) -> None:
        self._main = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._main is not None:
            await self._main
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run(self) -> None:
        last_beat = None
        while not self._stop.is_set():
            now = self.engine.clock()
            if last_beat is None or now - last_beat > timedelta(seconds=5):
                try:
                    await beat(self.name, "inprocess", self.queues, self.engine.clock)
                    last_beat = now
                except Exception:
                    log.warning("heartbeat failed", exc_info=True)
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def sweep_once(self) -> int:
        """Start due rows (up to the concurrency limit); return how many were started."""
        started = 0
        for machine in self.machines:
            free = self.concurrency - len(self._tasks)
            if free <= 0:
                break
            for row in await self.engine.due(machine, limit=free + len(self._running)):
                key = (machine.name, row.pk)
                if key in self._running or len(self._tasks) >= self.concurrency:
                    continue
                self._running.add(key)
                task = asyncio.create_task(self._advance(machine, row.pk))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started += 1
        return started

    async def _advance(self, machine: Machine, pk: Any) -> None:
        try:
            await self.engine.advance(machine.name, pk)
        except Exception:
            log.exception("advancing %s:%s failed", machine.name, pk)
        finally:
            self._running.discard((machine.name, pk))
            self._wake.set()

    async def drain(self, limit_seconds: float = 30.0, horizon: float = 5.0) -> None:
        """Run until no row of our queues is due within *horizon* seconds (tests, one-shots).

        Rows backing off for longer than the horizon are left for later; a row that keeps being
        due past *limit_seconds* raises ``TimeoutError``.
        """

        async def loop() -> None:
            while True:
                await self.sweep_once()
                if self._tasks:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not await self._due_within(horizon):
                    return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(loop(), limit_seconds)

    async def _due_within(self, horizon: float) -> bool:
        soon = self.engine.clock() + timedelta(seconds=horizon)
        for machine in self.machines:
            if await machine.model.filter(
                state__in=machine.graph.active_states, next_attempt_at__lte=soon
            ).exists():
                return True
        return False
