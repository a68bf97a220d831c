"""Runners: advance due rows with bounded concurrency, in this process.

:class:`Pump` claims due rows of light machines (:attr:`Machine.is_light`) several at a time
and keeps a few claimed rows queued, so that a finished row makes room for the next one
without a query; it is shared by the in-process runner and by arq sweeps
(:mod:`fedisora.work.arq_worker`). :class:`InProcessRunner` is used by ``serve`` on embedded
defaults and by ``fedisora worker`` without ``FEDISORA_REDIS_URL``. Both call the same
:meth:`Engine.advance_claimed` as an arq ``advance`` job, so behaviour is identical; only the
wake-up differs (an in-memory event plus polling, since other processes may add rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fedisora.models import WorkerHeartbeat
from fedisora.work.engine import Engine, Machine

__all__ = ["STOP_GRACE", "InProcessRunner", "Pump", "beat", "worker_report"]

log = logging.getLogger("fedisora.work")

RENEW_AFTER = timedelta(seconds=1)
"""A claimed row that waited longer than this for a slot gets a full lease before it runs."""
STOP_GRACE = 5.0
"""Seconds a stopping runner lets its running steps finish before it cancels them (a
supervisor's stop timeout is often 10 s: Docker's, ``serve``'s for its render worker)."""
STAGGER = 0.05
"""The in-process runner's :class:`Pump` stagger on SQLite: quick rows one after another,
rows that wait longer than this (a request to a peer) side by side."""


async def beat(
    name: str, kind: str, queues: Iterable[str], clock: Any, report: dict[str, Any] | None = None
) -> None:
    r"""Record that a runner is alive (read by /healthz and the admin overview), with what
    it *report*\ s of itself (:func:`worker_report`).

    One upsert (``INSERT ... ON CONFLICT (name) DO UPDATE``, on SQLite and PostgreSQL alike):
    two beats for a name with no row yet (a worker's startup sweep and its first cron sweep)
    cannot both insert one, as an update-else-insert did. ``started_at`` is written by the
    first beat only."""
    now = clock()
    row = WorkerHeartbeat(
        name=name,
        kind=kind,
        pid=os.getpid(),
        queues=",".join(queues),
        started_at=now,
        last_seen=now,
        report=report,
    )
    await WorkerHeartbeat.bulk_create(
        [row], on_conflict=["name"], update_fields=["kind", "pid", "queues", "last_seen", "report"]
    )


async def worker_report(machines: Iterable[Machine]) -> dict[str, Any] | None:
    """What the *machines* a runner serves report for its heartbeat (:attr:`Machine.report`),
    merged; None when none reports anything. A report that fails is logged and left out:
    the beat goes on."""
    merged: dict[str, Any] = {}
    for machine in machines:
        if machine.report is None:
            continue
        try:
            part = await machine.report()
        except Exception:
            log.warning("%s: the heartbeat report failed", machine.name, exc_info=True)
            continue
        merged.update(part or {})
    return merged or None


@dataclass(frozen=True)
class _Claimed:
    machine: Machine
    row: Any
    token: str
    at: datetime  # when it was claimed (engine clock)


class Pump:
    """Claims due rows of *machines* in batches and advances them, *concurrency* at a time.

    A claim takes the free slots' worth of due rows plus *prefetch* more, in three queries
    (:meth:`Engine.claim_due`); the extra rows wait in a local queue and start as running
    ones finish. The next claim is made when that queue runs empty, and none is made once
    a claim found no more rows due, until :meth:`wake` says rows may have become due.
    Claimed rows are fenced on their token like any other: a queued row whose lease ran
    out and that another runner took is skipped, and rows never started are released on
    :meth:`close` (after a crash, their lease runs out and they are due again; claimed
    ahead under a queued token, their takeover costs them no attempt, unlike that of the
    rows that were running: :meth:`Engine.claim`).

    With *stagger* (seconds), a row starts at once only when the row started last has
    finished or has been running for *stagger*: rows that work (Python, the database) then
    run one after another, and rows that wait (an HTTP request) still overlap up to
    *concurrency*. For a runner sharing its process with the web server: on SQLite, rows
    working side by side only queue up for the one database connection, ahead of the web
    requests, and cost more in all (``bench/federation.py``: with four rows working side by
    side, the inbox answered about 40% fewer requests, and rows were not processed faster).

    *notify* is called when the pump wants :meth:`fill` called (it ran out of claimed
    rows and more may be due); with *notify_on_free*, whenever a slot frees up.
    """

    def __init__(
        self,
        engine: Engine,
        machines: Sequence[Machine],
        *,
        concurrency: int,
        prefetch: int | None = None,
        stagger: float = 0.0,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.machines = list(machines)
        self.concurrency = concurrency
        self.prefetch = concurrency if prefetch is None else prefetch
        self.stagger = stagger
        self.notify = notify
        self.notify_on_free = False
        # Running steps: the pump's and any its owner starts in the same slots.
        self.tasks: set[asyncio.Task[Any]] = set()
        self._queue: deque[_Claimed] = deque()
        self._woken = 0  # bumped by wake()
        # machine -> the _woken value at which its claims last found no more rows due
        self._dry_at: dict[str, int] = {}
        self._turn = 0  # which machine a claim asks first (round robin)
        self._need = asyncio.Event()
        self._running = False
        self._closed = False
        self._newest: asyncio.Task[Any] | None = None  # the row started last (with stagger)
        self._newest_at = 0.0
        self._poke: asyncio.TimerHandle | None = None

    @property
    def free(self) -> int:
        return self.concurrency - len(self.tasks)

    @property
    def dry(self) -> bool:
        """No rows were left due at the last claims, and nothing woke the pump since."""
        return all(self._dry_at.get(m.name) == self._woken for m in self.machines)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def wake(self) -> None:
        """Rows may have become due: claim again on the next :meth:`fill`."""
        self._woken += 1
        self._need.set()

    async def fill(self) -> int:
        """Start queued rows in free slots, claiming more while rows are due and the queue
        is empty; return how many rows were started."""
        started = self._start_queued()
        while not self._closed and not self._queue:
            woken = self._woken
            live = [m for m in self.machines if self._dry_at.get(m.name) != woken]
            if not live:
                break
            want = max(self.free, 0) + self.prefetch
            for i in range(len(live)):  # round robin: each machine gets to go first in turn
                machine = live[(self._turn + i) % len(live)]
                # The rows for the free slots start at once; the rest are claimed ahead,
                # under a queued token (a kill before they start costs them no attempt).
                start = max(self.free - len(self._queue), 0)
                claims = await self.engine.claim_due(machine, want, start=start)
                now = self.engine.clock()
                self._queue.extend(
                    _Claimed(machine, row, row.lock_token, now) for row in claims.rows
                )
                want -= len(claims.rows)
                if claims.exhausted:  # not asked again until woken
                    self._dry_at[machine.name] = woken
                if want <= 0:
                    break
            self._turn += 1
            if self._closed:
                await self._release_queued()
                break
            started += self._start_queued()
        return started

    async def run(self, until: float) -> bool:
        """Advance due rows until none is left (False) or ``time.monotonic()`` passes *until*
        (True: some may be left). Rows already started or queued run on after it returns.
        One call at a time: another caller meanwhile wakes the first one and returns False."""
        if self._running:
            self.wake()
            return False
        self._running = True
        try:
            while not self._closed:
                self._need.clear()
                await self.fill()
                if self.dry:
                    return False
                left = until - time.monotonic()
                if left <= 0:
                    return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._need.wait(), left)
            return False
        finally:
            self._running = False

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count *task* (a step its owner started) against the slots until it is done."""
        self.tasks.add(task)
        task.add_done_callback(self._done)

    async def close(self, *, cancel: bool, grace: float | None = None) -> None:
        """Stop claiming, give back queued rows, and cancel or await the running steps: at
        once with *cancel*, else after *grace* seconds (None: however long they take). A
        cancelled step gives its row back (:meth:`Engine.give_back`): no attempt lost."""
        self._closed = True
        if self._poke is not None:
            self._poke.cancel()
            self._poke = None
        await self._release_queued()
        tasks = list(self.tasks)
        if tasks and not cancel and grace is not None:
            _, late = await asyncio.wait(tasks, timeout=grace)
            if late:
                log.warning("%d steps still running after %.0f s: cancelled", len(late), grace)
            cancel = True
        if cancel:
            for task in tasks:
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start_queued(self) -> int:
        started = 0
        while self._queue and self.free > 0 and not self._closed:
            if self.stagger and self._newest is not None and not self._newest.done():
                wait = self._newest_at + self.stagger - time.monotonic()
                if wait > 0:  # the row started last is still at work: after it, or later
                    if self._poke is None:
                        self._poke = asyncio.get_running_loop().call_later(wait, self._poked)
                    break
            task = asyncio.create_task(self._advance(self._queue.popleft()))
            self.track(task)
            self._newest, self._newest_at = task, time.monotonic()
            started += 1
        return started

    def _poked(self) -> None:
        self._poke = None
        if not self._closed:
            self._start_queued()
            self._want_more()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if self._closed:
            return
        self._start_queued()
        self._want_more(freed=True)

    def _want_more(self, freed: bool = False) -> None:
        if (not self._queue and not self.dry) or (freed and self.notify_on_free):
            self._need.set()
            if self.notify is not None:
                self.notify()

    async def _advance(self, claimed: _Claimed) -> None:
        machine, row = claimed.machine, claimed.row
        try:
            if self.engine.clock() - claimed.at > RENEW_AFTER:
                # It waited for a slot: a full lease for its step, unless another runner took
                # the row over meanwhile (ours ran out), in which case the row is theirs.
                if not await self.engine.renew(machine, row.pk, claimed.token):
                    log.warning("%s:%s: lease lost while waiting for a slot", machine.name, row.pk)
                    return
            await self.engine.advance_claimed(machine, row, claimed.token)
        except Exception:
            log.exception("advancing %s:%s failed", machine.name, row.pk)

    async def _release_queued(self) -> None:
        groups: dict[tuple[str, str], list[_Claimed]] = {}
        while self._queue:
            claimed = self._queue.popleft()
            groups.setdefault((claimed.machine.name, claimed.token), []).append(claimed)
        for group in groups.values():
            machine, token = group[0].machine, group[0].token
            try:
                await self.engine.release(machine, [c.row.pk for c in group], token)
            except Exception:  # their leases run out instead
                log.warning("releasing claimed %s rows failed", machine.name, exc_info=True)


class InProcessRunner:
    """Advances rows of the given queues in this event loop until stopped.

    Light machines' rows go through a :class:`Pump`; the others (render jobs) are picked one
    by one in their machine's order (:meth:`Engine.due`) and claimed as they start. Both
    share the *concurrency* slots. *stagger* (see :class:`Pump`) defaults to
    :data:`STAGGER` on SQLite, whose one connection the runner shares with the web server
    in ``serve``, and to none on PostgreSQL, which works on rows side by side.
    """

    def __init__(
        self,
        engine: Engine,
        queues: Iterable[str] = ("default",),
        *,
        poll_interval: float = 1.0,
        concurrency: int = 4,
        prefetch: int | None = None,
        stagger: float | None = None,
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
        self._main: asyncio.Task[None] | None = None
        self._stagger_known = stagger is not None
        machines = self.machines
        self._heavy = [m for m in machines if not m.is_light]
        self._pump = Pump(
            engine,
            [m for m in machines if m.is_light],
            concurrency=concurrency,
            # Claims of 16 rows (at the default concurrency): a claim is three queries.
            prefetch=4 * concurrency if prefetch is None else prefetch,
            stagger=stagger or 0.0,
            notify=self._wake.set,
        )
        # A finished step may let a heavy row start (they are picked one by one).
        self._pump.notify_on_free = bool(self._heavy)
        engine.add_waker(self._on_wake, soon=self._on_soon)

    @property
    def machines(self) -> list[Machine]:
        return [m for m in self.engine.machines.values() if m.queue in self.queues]

    @property
    def _tasks(self) -> set[asyncio.Task[Any]]:
        return self._pump.tasks

    async def _on_wake(self, machine: Machine, row: Any) -> None:
        await self._on_soon(machine)

    async def _on_soon(self, machine: Machine) -> None:
        if machine.queue in self.queues:
            if machine.is_light:
                self._pump.wake()
            self._wake.set()

    def start(self) -> None:
        self._main = asyncio.create_task(self.run(), name=self.name)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task :meth:`start` started (it ends only when stopped)."""
        return self._main

    async def stop(self, grace: float | None = STOP_GRACE) -> None:
        """Stop claiming; claimed rows not started are released, and rows already running
        get *grace* seconds to finish (None: as long as they take) before they are cancelled
        and given back, their lease left to run out (no attempt counted)."""
        self._stop.set()
        self._wake.set()
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
        await self._pump.close(cancel=False, grace=grace)

    async def run(self) -> None:
        last_beat = None
        look_at = time.monotonic() + self.poll_interval
        while not self._stop.is_set():
            now = self.engine.clock()
            if last_beat is None or now - last_beat > timedelta(seconds=5):
                try:
                    await beat(
                        self.name,
                        "inprocess",
                        self.queues,
                        self.engine.clock,
                        await worker_report(self.machines),
                    )
                    last_beat = now
                except Exception:
                    log.warning("heartbeat failed", exc_info=True)
            self._wake.clear()  # before sweeping: a wake-up during the sweep is not lost
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep failed")
            left = look_at - time.monotonic()
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
            if time.monotonic() >= look_at:
                # Other processes may have stored rows, and leases of runners that died run
                # out: the pump looks again every poll interval, however often this
                # process's own wake-ups (a render job waiting for its slot) come.
                self._pump.wake()
                look_at = time.monotonic() + self.poll_interval

    async def sweep_once(self) -> int:
        """Start due rows (up to the concurrency limit); return how many were started."""
        if not self._stagger_known and self._pump.machines:  # the database is known by now
            db = self._pump.machines[0].model._meta.db
            self._pump.stagger = STAGGER if db.capabilities.dialect == "sqlite" else 0.0
            self._stagger_known = True
        started = await self._pump.fill()
        for machine in self._heavy:
            free = self._pump.free - self._pump.queued
            if free <= 0:
                break
            for row in await self.engine.due(machine, limit=free + len(self._running)):
                key = (machine.name, row.pk)
                if key in self._running or self._pump.free - self._pump.queued <= 0:
                    continue
                self._running.add(key)
                self._pump.track(asyncio.create_task(self._advance(machine, row.pk)))
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
                self._pump.wake()

        await asyncio.wait_for(loop(), limit_seconds)

    async def _due_within(self, horizon: float) -> bool:
        soon = self.engine.clock() + timedelta(seconds=horizon)
        for machine in self.machines:
            if await machine.model.filter(
                state__in=machine.graph.active_states, next_attempt_at__lte=soon
            ).exists():
                return True
        return False
