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

What Redis remembers about a job id must never keep a due row from running, since the id of
a row's step does not change when only its lease runs out (the runner holding it died):

- arq marks a running job with an in-progress key that it sets for the job timeout (+10 s)
  and that keeps the id from starting anywhere else; a worker killed mid-job leaves it, and
  the job (still queued under that id, which the sweep's re-enqueue then collapses into) ran
  again only when it expired: a day later. Here that key is a lease like the row's
  (:class:`LeasedWorker`): it lives for the engine's lease and the live worker renews it, so
  a dead worker's job runs again within a lease, and the row is then claimed (or, if the
  row's own lease has not run out yet, the next sweep enqueues it again).
- A wake-up that collapses into an id Redis holds no runnable job for (a result kept by
  some earlier configuration, a job key whose queue entry was lost, an in-progress key left
  with a day to live by an older worker) repairs that id and is enqueued again
  (:meth:`ArqWaker.__call__`).
- Job ids start with the deployment's prefix: arq's job, result and in-progress keys are not
  per queue, so two deployments on one Redis database would otherwise share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker, func
from redis.exceptions import RedisError, ResponseError, WatchError

from fedisora.work.engine import Engine, Machine
from fedisora.work.runner import STOP_GRACE, Pump, beat, worker_report

__all__ = [
    "SWEEP_BUCKET_MS",
    "SWEEP_BUDGET_SECONDS",
    "ArqWaker",
    "LeasedWorker",
    "build_worker",
    "queue_name",
    "redis_settings",
    "stop_worker",
    "wait_for_redis",
]

log = logging.getLogger("fedisora.work")


_PUMP = "fedisora_pump"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SWEEP_BUCKET_MS = 100
SWEEP_BUDGET_SECONDS = 5.0
"""How long one sweep keeps claiming light rows before it hands over to a follow-up sweep."""
REDIS_DOWN = (RedisError, OSError)
"""What a Redis that went away (or misbehaves) raises: a ``ConnectionError`` mostly (so is
``BusyLoadingError``, a Redis starting up), but a connection cut during a ``WATCH`` is a
``WatchError``; any of them is waited out, never the end of a worker."""
REDIS_RETRY_MAX_SECONDS = 5.0
"""The longest pause between a worker's polls while Redis is unreachable: it resumes within
this of Redis coming back."""
BEAT_SECONDS = 5.0
"""How often a worker records that it serves its queue (read by /healthz)."""
JOB_TIMEOUT = timedelta(hours=24)
"""The longest an ``advance`` job may run before arq cancels it. It must outlast any step
(a render renews its row's lease for as long as it takes), so it has nothing to do with
leases; nor, in a :class:`LeasedWorker`, with how long a dead worker's job stays marked
running, which arq would otherwise derive from it."""


def queue_name(queue: str, prefix: str = "fedisora") -> str:
    return f"{prefix}:{queue}"


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def job_id(machine: Machine, row: Any, prefix: str = "fedisora") -> str:
    """Names the row's present step, so that duplicates collapse: its state, when it entered
    it, the attempt and when that attempt is due (a retry that does not count an attempt
    changes only the last)."""
    changed = int(row.state_changed_at.timestamp() * 1000) if row.state_changed_at else 0
    due = int(row.next_attempt_at.timestamp() * 1000) if row.next_attempt_at else 0
    return f"{prefix}:{machine.name}:{row.pk}:{row.state}:{changed}:{row.attempts}:{due}"


# KEYS: the job, its result, its in-progress marker, its queue; ARGV: the job id, a lease in
# ms (0: leave the in-progress marker's time alone). Run when an enqueue collapsed into an
# existing id. Returns 1 if the id was freed (enqueue again), 0 if a job is there to run.
_REPAIR = """
local freed = 0
if redis.call('EXISTS', KEYS[2]) == 1 then
  -- a result: this step ran, yet the row is due in it again (it did not get to finish)
  redis.call('DEL', KEYS[2])
  freed = 1
end
if redis.call('EXISTS', KEYS[1]) == 1 and not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  -- a job nothing will run: its queue entry is gone (arq adds and removes both at once)
  redis.call('DEL', KEYS[1], KEYS[3])
  freed = 1
end
local lease = tonumber(ARGV[2])
if lease > 0 then
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl == -1 or ttl > lease then
    -- marked running for longer than a lease: a live worker renews it, a dead one does not
    redis.call('PEXPIRE', KEYS[3], lease)
  end
end
return freed
"""


class ArqWaker:
    """Enqueues ``advance`` jobs on Redis when rows become due.

    *lease* (the workers' lease, as a worker's own waker knows it) also bounds how long an
    existing job's in-progress marker may keep a due row's id from running; without it, such
    markers are left to the workers renewing them (:class:`LeasedWorker`).
    """

    def __init__(
        self, pool: ArqRedis, prefix: str = "fedisora", *, lease: timedelta | None = None
    ) -> None:
        self.pool = pool
        self.prefix = prefix
        self.lease = lease
        self._swept: dict[str, int] = {}  # queue -> the last time bucket a sweep was asked for
        # In sweep job ids: another process's sweep of the same bucket, which may have
        # looked already, does not swallow ours.
        self._nonce = secrets.token_hex(4)

    async def __call__(self, machine: Machine, row: Any) -> None:
        defer = row.next_attempt_at
        if defer is not None and defer <= datetime.now(UTC):
            defer = None
        ident = job_id(machine, row, self.prefix)
        queue = queue_name(machine.queue, self.prefix)
        for _ in range(2):
            job = await self.pool.enqueue_job(
                "advance",
                machine.name,
                row.pk,
                _job_id=ident,
                _queue_name=queue,
                _defer_until=defer,
            )
            if job is not None or not await self._repair(ident, queue):
                return

    async def _repair(self, ident: str, queue: str) -> bool:
        """An enqueue of *ident* collapsed into what Redis holds under that id: free the id
        if no job will run under it (True: enqueue again); see ``_REPAIR``."""
        lease_ms = int(self.lease.total_seconds() * 1000) if self.lease is not None else 0
        keys = (
            job_key_prefix + ident,
            result_key_prefix + ident,
            in_progress_key_prefix + ident,
            queue,
        )
        freed = await self.pool.eval(_REPAIR, len(keys), *keys, ident, str(lease_ms))  # type: ignore[misc]
        if freed:
            log.warning("arq job %s was stuck in Redis; enqueued again", ident)
        return bool(freed)

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
            _job_id=f"{self.prefix}:sweep:{queue}:{self._nonce}:{bucket}",
            _queue_name=queue_name(queue, self.prefix),
            _defer_until=defer,
        )

    @classmethod
    async def connect(
        cls, url: str, prefix: str = "fedisora", *, lease: timedelta | None = None
    ) -> ArqWaker:
        """A waker on Redis at *url*. Its pool connects on first use, and again after Redis
        went away (a restart): a process starts, and goes on waking, whether Redis answers
        now or not; a wake-up that fails meanwhile is logged (:meth:`Engine.wake`) and the
        row left to a sweep. The timeouts keep a Redis that does not answer (a network cut)
        from holding up the request that wakes a row."""
        pool = ArqRedis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return cls(pool, prefix, lease=lease)


class LeasedWorker(Worker):
    """An arq :class:`~arq.worker.Worker` whose in-progress markers are leases.

    arq sets a job's in-progress key for the job timeout (+10 s) when the job starts, deletes
    it when the job ends, and starts no job whose key exists: a worker killed mid-job leaves
    the key, and with it the job, for as long as the timeout. Here the key lives for *lease*
    and the poll loop renews it, every third of a lease, for the jobs still running: a killed
    worker's jobs are startable again within *lease*, a live worker's never are. A marker
    that lapsed anyway (a stalled loop) costs one more start of the job, whose claim of its
    row then finds it held (arq's own docs warn that a job may run twice).

    The poll loop also calls *on_beat* every :data:`BEAT_SECONDS`: a heartbeat from the loop
    that picks up jobs says that the queue is served, whatever those jobs do.
    """

    def __init__(
        self,
        *args: Any,
        lease: timedelta,
        on_beat: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lease_s = lease.total_seconds()
        self.in_progress_timeout_s = self.lease_s
        self.on_beat = on_beat
        self._renewed_at = 0.0
        self._beat_at = 0.0
        self._redis_down = 0  # polls in a row that found Redis unreachable

    async def _poll_iteration(self) -> None:
        """One poll of arq's loop, surviving Redis going away (a restart, a network cut):
        arq's own loop ends on the first connection error, and with it every job the
        worker would ever take, while the process lives on. Here the poll is tried again
        with a growing pause (up to :data:`REDIS_RETRY_MAX_SECONDS`); the jobs running
        meanwhile go on (their rows are leased in the database, not in Redis), and once
        Redis answers again the cron sweeps find every row whose wake-up was lost."""
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            self._redis_down += 1
            pause = min(REDIS_RETRY_MAX_SECONDS, 0.5 * 2 ** (self._redis_down - 1))
            log.warning(
                "%s: Redis is unreachable (%s); trying again in %.1f s",
                self.queue_name,
                exc,
                pause,
            )
            await asyncio.sleep(pause)
            return
        if self._redis_down:
            log.warning("%s: Redis answers again; sweeping", self.queue_name)
            self._redis_down = 0

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's ``start_jobs``, giving back the job slot it took for a job whose start a
        Redis error cut short: arq's own keeps it taken, and after ``max_jobs`` such errors
        the worker starts no job again."""
        for job_id_b in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return None
            self.job_counter = self.job_counter + 1
            started = False
            try:
                started = await self._start_job(job_id_b.decode())
            finally:
                if not started:
                    self.job_counter = self.job_counter - 1
                    self.sem.release()

    async def _start_job(self, job_id: str) -> bool:
        """Mark *job_id* running and start it, unless it runs elsewhere, is gone or is not
        due (arq's checks); whether it was started."""
        in_progress_key = in_progress_key_prefix + job_id
        async with self.pool.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(in_progress_key)
                ongoing_exists = await pipe.exists(in_progress_key)
                score = await pipe.zscore(self.queue_name, job_id)
                if ongoing_exists or not score or score > timestamp_ms():
                    return False  # running elsewhere, done, or deferred again meanwhile
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.psetex(in_progress_key, int(self.in_progress_timeout_s * 1000), b"1")
                await pipe.execute()
            except (ResponseError, WatchError):
                # Started elsewhere since; or (redis-py's WatchError for a connection cut
                # while watching) Redis went away, which the next command says as such.
                return False
        task = self.loop.create_task(self.run_job(job_id, int(score)))
        task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        self.tasks[job_id] = task
        return True

    async def heart_beat(self) -> None:
        await super().heart_beat()
        now = time.monotonic()
        if now - self._renewed_at >= self.lease_s / 3:
            self._renewed_at = now
            try:
                await self.renew_in_progress()
            except Exception:  # the next poll tries again; a lapse costs one more start
                log.warning("renewing arq in-progress markers failed", exc_info=True)
        if self.on_beat is not None and now - self._beat_at >= BEAT_SECONDS:
            self._beat_at = now
            try:
                await self.on_beat()
            except Exception:
                log.warning("worker heartbeat failed", exc_info=True)

    async def renew_in_progress(self) -> None:
        """Give the jobs this worker runs a full lease on their in-progress markers."""
        running = [job for job, task in self.tasks.items() if not task.done()]
        if not running:
            return
        ms = int(self.lease_s * 1000)
        async with self.pool.pipeline(transaction=False) as pipe:
            for job in running:
                pipe.pexpire(in_progress_key_prefix + job, ms)  # none if it just ended
            await pipe.execute()


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
) -> LeasedWorker:
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

    async def wake_pump(machine: Machine, row: Any) -> None:
        if machine.name in light:  # a sweep under way takes it too (its job may come later)
            pump.wake()

    engine.add_waker(wake_pump)

    async def advance(ctx: dict[str, Any], table: str, pk: Any) -> str:
        return str(await engine.advance(table, pk))

    async def sweep(ctx: dict[str, Any]) -> int:
        """Advance due light rows; re-enqueue due heavy rows: the safety net for lost or
        flushed wake-ups, and for rows whose runner died. Returns how many rows were
        re-enqueued."""
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
        ctx["fedisora_waker"] = ArqWaker(ctx["redis"], prefix, lease=engine.lease)
        if on_startup is not None:
            await on_startup(ctx)
        try:
            await ctx["fedisora_waker"].sweep(queue)  # the rows left from before, at once
        except REDIS_DOWN:
            log.warning("%s: Redis went away; the first cron sweep finds the rows", queue)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await pump.close(cancel=True)
        if on_shutdown is not None:
            await on_shutdown(ctx)

    async def on_beat() -> None:
        await beat(name, "arq", [queue], engine.clock, await worker_report(machines))

    return LeasedWorker(
        lease=engine.lease,
        on_beat=on_beat,
        functions=[
            func(advance, name="advance", keep_result=0, max_tries=1000),
            func(sweep, name="sweep", keep_result=0, max_tries=1, timeout=sweep_budget + 60),
        ],
        cron_jobs=[
            cron(
                sweep,
                # Also the job id's stem (with the tick): arq's job keys are not per queue,
                # so each queue's (and deployment's) sweep needs a name of its own, or one
                # queue's sweep of a tick collapses into another's and never runs.
                name=f"cron:{prefix}:sweep:{queue}",
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
        job_timeout=JOB_TIMEOUT,
        keep_result=0,  # also for jobs arq fails itself (expired, unknown function)
        handle_signals=False,
        poll_delay=0.2,
        ctx={_PUMP: pump},
    )


async def wait_for_redis(url: str, stop: asyncio.Event) -> bool:
    """Wait until Redis at *url* answers (True) or *stop* is set (False), trying again with
    a growing pause: a worker started before Redis (or during its restart) waits for it
    rather than exiting."""
    pause = 0.5
    while not stop.is_set():
        client = ArqRedis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        try:
            await client.ping()
            return True
        except REDIS_DOWN as exc:
            log.warning("Redis at %s is unreachable (%s); trying again in %.1f s", url, exc, pause)
        finally:
            await client.aclose()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, REDIS_RETRY_MAX_SECONDS)
    return False


async def stop_worker(worker: Worker, task: asyncio.Task[None], grace: float = STOP_GRACE) -> None:
    """Stop a worker started with ``asyncio.create_task(worker.async_run())``.

    It stops taking jobs and claiming rows (rows claimed but not started are released at
    once); jobs and rows still running after *grace* seconds are cancelled and give their
    rows back, which keep the rest of their lease and are then picked up again without an
    attempt counted (:meth:`Engine.give_back`). arq's ``close`` re-raises those
    cancellations, which is expected here (and skips ``on_shutdown``, hence the pump is
    closed here too).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    worker.allow_pick_jobs = False
    pump: Pump | None = worker.ctx.get(_PUMP)
    if pump is not None:
        await pump.close(cancel=False, grace=grace)
    running = [t for t in worker.tasks.values() if not t.done()]
    if running and deadline > loop.time():
        await asyncio.wait(running, timeout=deadline - loop.time())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # arq's close cancels the jobs, then gathers them without return_exceptions: it returns
    # as soon as the first one ends cancelled (often a sweep), while a cancelled step may
    # still be giving its row back. The caller closes the database next, so every job task
    # (arq's run_job and the job's own task) is awaited here until it has ended.
    jobs = [t for t in (*worker.tasks.values(), *worker.job_tasks.values()) if not t.done()]
    await asyncio.gather(worker.close(), return_exceptions=True)
    await asyncio.gather(*jobs, return_exceptions=True)
    if pump is not None:
        await pump.close(cancel=True)
