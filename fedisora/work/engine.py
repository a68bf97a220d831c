"""Advancing durable work rows: claim, run the state's handler, record the outcome.

The row is the truth. A runner claims a row by setting ``locked_until`` and a fresh
``lock_token`` in one conditional UPDATE (atomic on SQLite and PostgreSQL alike), or a batch of
due rows under one token in one such UPDATE (:meth:`Engine.claim_due`); every later write is
fenced on the row's key and that token, so a runner whose lease ran out (it hung or was
killed) can no longer move the row, and whoever claimed it next finishes the work. Handlers
whose effects live in the database make them inside :meth:`WorkContext.transition`, in the
same transaction as the state change (or, for a handler whose only effect is on its own row,
with :meth:`WorkContext.move`): such work is never lost and never done twice. Effects outside
the database (an HTTP delivery) are at-least-once, and the receiving side deduplicates by
activity id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Case, F, Q, When
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from fedisora.logs import REQUEST_ID
from fedisora.models import WorkRow, utcnow
from fedisora.work.graph import StateGraph

__all__ = [
    "QUEUED",
    "TAKEN_OVER",
    "Claims",
    "Engine",
    "LeaseLost",
    "Machine",
    "Outcome",
    "Retry",
    "WorkContext",
]

log = logging.getLogger("fedisora.work")


TAKEN_OVER = (
    "the runner working on it stopped without finishing or giving it back (killed? out of "
    "memory?): taken over by another"
)
"""``last_error`` of a row whose lease ran out under a runner that had started it. The
takeover counts as a failed attempt (see :meth:`Engine.claim`)."""
QUEUED = "q:"
"""Prefix of the lock token of rows claimed ahead, not started yet (:meth:`Engine.claim_due`):
a runner that dies holding one had not tried it, so its takeover is no attempt."""


def _token() -> str:
    return str(uuid.uuid4())


def _queued_token() -> str:
    return QUEUED + uuid.uuid4().hex  # 34 characters: lock_token holds 36


# A claimed row counts an attempt when the lease it is claimed out of (it ran out: the row is
# due) was held under a token of a runner that had started it: not given back (no token), not
# claimed ahead only (a queued token).
_STARTED_BY_ANOTHER = Q(lock_token__isnull=False) & ~Q(lock_token__startswith=QUEUED)
_CLAIM_COUNTS = {
    "attempts": Case(When(_STARTED_BY_ANOTHER, then=F("attempts") + 1), default=F("attempts")),
    "last_error": Case(When(_STARTED_BY_ANOTHER, then=TAKEN_OVER), default=F("last_error")),
}


class LeaseLost(RuntimeError):
    """Another runner claimed the row after our lease expired: stop, change nothing."""


@dataclass(frozen=True)
class Retry:
    """Handler result: try this state again later.

    By default this is a failed attempt: ``attempts`` goes up, the delay comes from the
    state's retry schedule (unless *after* is given), and the row fails after the state's
    ``max_attempts``. With ``counts=False`` the row is only rescheduled *after* from now
    (required then): ``attempts`` stays as it is, so the row neither climbs the backoff
    schedule nor gets closer to failing. That is for waiting that is not the work failing
    (all of a peer host's request slots are taken). *reason* goes into ``last_error``
    either way. The state's ``timeout`` (time spent in the state) still
    applies to rows that keep waiting.
    """

    reason: str = ""
    after: timedelta | None = None  # overrides the state's retry schedule
    counts: bool = True

    def __post_init__(self) -> None:
        if not self.counts and self.after is None:
            raise ValueError("a retry that does not count needs an explicit delay (after=)")


Outcome = str | Retry | None
Handler = Callable[[Any, "WorkContext"], Awaitable[Outcome]]
OnMove = Callable[[Any, str, str, BaseDBAsyncClient], Awaitable[None]]
Transaction = Callable[[], AbstractAsyncContextManager[BaseDBAsyncClient]]
# Written by the engine only (a handler's own values may set last_error).
_WORK_COLUMNS = frozenset(
    ("state", "state_changed_at", "attempts", "next_attempt_at", "locked_until", "lock_token")
)


@dataclass(frozen=True)
class Machine:
    """A durable-work table with its state graph and one handler per automatic state."""

    model: type[WorkRow]
    graph: StateGraph
    handlers: dict[str, Handler]
    queue: str = "default"
    # Orders due rows when a sweep finds more than it can run (render jobs: priority, fairness).
    order_by: tuple[str, ...] = ("next_attempt_at", "id")
    # Replaces order_by when set: picks due rows from the unordered due query, for orders a
    # column list cannot express (render jobs: the user with fewest jobs in flight first).
    select_due: Callable[[QuerySet[Any], int], Awaitable[list[Any]]] | None = None
    # Called after each transition has committed (best effort: a kill before it skips it),
    # e.g. to remove files or wake the next row.
    on_transition: Callable[[Any, str, str], Awaitable[None]] | None = None
    # Writes that must commit with a move of the row, whoever makes it: a handler's
    # transition or move, the engine failing the row (attempts used up, a timeout, a handler
    # giving up), a move from outside (:meth:`Engine.move`). Called inside the move's
    # transaction, after the fenced state change, with (the row as it was before the move,
    # source, target, the transaction's connection); an exception rolls the move back. The
    # render queue notifies a job's owner there: a kill after the commit cannot lose it.
    on_move: OnMove | None = None
    # The transaction moves run in: ``events.transaction`` for a machine whose on_move
    # emits events (they are handed on once it commits).
    transaction: Transaction = in_transaction
    # Light rows (quick steps, no pick order of their own: inbox items, deliveries) are claimed
    # several at a time by runners, and an arq sweep advances them itself rather than queueing
    # a job per row (a Redis round trip and a poll each). Heavy rows keep a job per row, picked
    # one at a time. None: light unless the machine picks its own due rows (select_due, as the
    # render queue does: a batch claimed ahead would lock jobs before their fair turn).
    light: bool | None = None
    # What a runner serving this machine's queue adds to its heartbeat (``report`` in
    # ``worker_heartbeats``): the render queue's says which model the worker serves, on what
    # device. Called every beat: work out what does not change once.
    report: Callable[[], Awaitable[dict[str, Any] | None]] | None = None

    def __post_init__(self) -> None:
        missing = set(self.graph.active_states) - set(self.handlers)
        if missing:
            raise ValueError(f"{self.name}: no handler for states {sorted(missing)}")

    @property
    def name(self) -> str:
        return str(self.model._meta.db_table)

    @property
    def is_light(self) -> bool:
        """Whether runners claim its rows in batches and sweeps advance them (see ``light``)."""
        return self.select_due is None if self.light is None else self.light


class Claims(NamedTuple):
    """Rows claimed by :meth:`Engine.claim_due`: those to start at once under *token*, the
    ones after them (claimed ahead) under a queued token of their own; each row's
    ``lock_token`` says which."""

    rows: list[Any]  # in due order
    token: str
    exhausted: bool  # fewer rows were due than asked for: none are left for now


class AdvanceResult(StrEnum):
    MOVED = "moved"  # the row changed state
    RETRY = "retry"  # attempt failed or asked to wait; scheduled again
    FAILED = "failed"  # moved to the failed state after too many attempts
    SKIPPED = "skipped"  # not due, terminal, or gone
    BUSY = "busy"  # another runner holds the lease
    LOST = "lost"  # our lease expired under us; the other runner's result stands


@dataclass
class WorkContext:
    """What a handler gets besides its row: lease control and a fenced transition."""

    engine: Engine
    machine: Machine
    row: Any
    token: str
    now: Callable[[], datetime]
    moved_to: str | None = field(default=None, init=False)
    # The work columns the move wrote (to wake runners without loading the row again).
    _written: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    async def heartbeat(self) -> None:
        """Extend the lease; raise :class:`LeaseLost` if another runner took the row."""
        if not await self.engine.renew(self.machine, self.row.pk, self.token):
            raise LeaseLost(f"{self.machine.name}:{self.row.pk}")

    @contextlib.asynccontextmanager
    async def keep_lease(self) -> AsyncIterator[None]:
        """Renew the lease every third of a lease while the block runs (a model load, an
        encode in a thread): a live runner keeps its row however long the step takes, a dead
        one loses it within a lease. A lease lost meanwhile shows at the step's next fenced
        write, which raises :class:`LeaseLost`."""

        async def renew() -> None:
            interval = max(0.5, self.engine.lease.total_seconds() / 3)
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.heartbeat()
                except LeaseLost:
                    return
                except Exception:  # a database hiccup: the lease has two intervals left
                    log.warning("%s:%s: renewing the lease failed", self.machine.name, self.row.pk)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # (ours cancelled is no error)

    @contextlib.asynccontextmanager
    async def transition(self, target: str) -> AsyncIterator[BaseDBAsyncClient]:
        """Move the row to *target* in a transaction the handler also writes its effects in.

        The row update is fenced on our lock token and comes first: if the lease was lost, the
        block never runs and :class:`LeaseLost` is raised. Leaving the block commits both.
        """
        self.machine.graph.check_transition(self.row.state, target)
        async with self.machine.transaction() as conn:
            values = self.engine._transition_values(self.machine, target, self.now())
            await self._fenced_update(values, conn)
            if self.machine.on_move is not None:
                await self.machine.on_move(self.row, self.row.state, target, conn)
            yield conn
        self._written = values
        self.moved_to = target

    async def move(self, target: str, **values: Any) -> None:
        """Move the row to *target*, writing *values* (more columns of the row, such as a
        reason in ``last_error``) in the same fenced UPDATE; raise :class:`LeaseLost` if the
        lease was lost. For a handler whose only effect is on its own row: one statement,
        atomic on its own, where :meth:`transition` needs a transaction around it (three
        round trips more)."""
        reserved = _WORK_COLUMNS.intersection(values)
        if reserved:
            raise ValueError(f"move() writes {sorted(reserved)} itself")
        self.machine.graph.check_transition(self.row.state, target)
        values = {**self.engine._transition_values(self.machine, target, self.now()), **values}
        await self._fenced_move(values, target)
        self._written = values
        self.moved_to = target

    async def _fenced_move(self, values: dict[str, Any], target: str) -> None:
        """The fenced update of a move, with the machine's ``on_move`` writes in its
        transaction (one statement alone when the machine has none)."""
        on_move = self.machine.on_move
        if on_move is None:
            await self._fenced_update(values)
            return
        async with self.machine.transaction() as conn:
            await self._fenced_update(values, conn)
            await on_move(self.row, self.row.state, target, conn)

    async def _fenced_update(
        self, values: dict[str, Any], conn: BaseDBAsyncClient | None = None
    ) -> None:
        """Write *values* to the row if we still hold it; raise :class:`LeaseLost` if not."""
        query = self.machine.model.filter(pk=self.row.pk, lock_token=self.token)
        if conn is not None:
            query = query.using_db(conn)
        if await query.update(**values) != 1:
            raise LeaseLost(f"{self.machine.name}:{self.row.pk}")

    def _row_as_written(self) -> Any:
        """The row with the work columns we wrote: what wakers read (state, attempts, when
        due), without loading it again. Only once the handler is done with it."""
        for name, value in self._written.items():
            setattr(self.row, name, value)
        return self.row


Waker = Callable[[Machine, Any], Awaitable[None]]
SweepSoon = Callable[[Machine], Awaitable[None]]


class Engine:
    """Runs handlers for a set of machines. Shared by the in-process runner and arq."""

    def __init__(
        self,
        machines: Sequence[Machine],
        *,
        lease: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = utcnow,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.machines = {m.name: m for m in machines}
        self.lease = lease
        self.clock = clock
        # Shared resources handlers may use (settings, http client, loaded pipeline...).
        self.context: dict[str, Any] = dict(context or {})
        self._wakers: list[Waker] = []
        self._soon: list[SweepSoon] = []

    def machine(self, name: str) -> Machine:
        try:
            return self.machines[name]
        except KeyError:
            raise KeyError(f"no durable work table named {name!r}") from None

    def machine_for(self, model: type[WorkRow]) -> Machine:
        return self.machine(str(model._meta.db_table))

    def add_waker(self, waker: Waker, soon: SweepSoon | None = None) -> None:
        """*waker* is called for each row that becomes due; *soon* (or the waker's own
        ``soon`` method) when many rows of a machine did at once (:meth:`wake_soon`)."""
        self._wakers.append(waker)
        soon = soon or getattr(waker, "soon", None)
        if soon is not None:
            self._soon.append(soon)

    async def wake_soon(self, machine: Machine) -> None:
        """Rows of *machine* became due (a batch of inbox items): ask each runner for a sweep
        of its queue rather than a wake-up per row. A waker without a ``soon`` hook leaves
        the rows to its next regular sweep."""
        for soon in self._soon:
            try:
                await soon(machine)
            except Exception:  # a lost wake-up is harmless: the sweep finds the rows
                log.warning("wake-up for %s rows failed", machine.name, exc_info=True)

    async def wake(self, machine: Machine, row: Any) -> None:
        for waker in self._wakers:
            try:
                await waker(machine, row)
            except Exception:  # a lost wake-up is harmless: the sweep finds the row
                log.warning("wake-up for %s:%s failed", machine.name, row.pk, exc_info=True)

    async def create(self, model: type[WorkRow], **values: Any) -> Any:
        """Insert a new row in its graph's initial state, due now, and wake a runner."""
        machine = self.machine_for(model)
        now = self.clock()
        values.setdefault("state", machine.graph.initial)
        row = await model.create(
            state_changed_at=now, next_attempt_at=now, created_at=now, **values
        )
        await self.wake(machine, row)
        return row

    def _transition_values(self, machine: Machine, target: str, now: datetime) -> dict[str, Any]:
        automatic = target in machine.graph.active_states
        return {
            "state": target,
            "state_changed_at": now,
            "attempts": 0,
            "next_attempt_at": now if automatic else None,
            "locked_until": None,
            "lock_token": None,
            "last_error": "",
        }

    def _due_query(self, machine: Machine, now: datetime) -> QuerySet[Any]:
        """Rows whose next attempt is due at *now* and that nobody holds a live lease on."""
        return machine.model.filter(
            Q(state__in=machine.graph.active_states)
            & Q(next_attempt_at__lte=now)
            & (Q(locked_until=None) | Q(locked_until__lt=now))
        )

    async def due(self, machine: Machine, limit: int = 100) -> list[Any]:
        """Rows whose next attempt is due and that nobody holds a live lease on."""
        query = self._due_query(machine, self.clock())
        if machine.select_due is not None:
            return await machine.select_due(query, limit)
        return await query.order_by(*machine.order_by).limit(limit)

    async def claim(self, machine: Machine, pk: Any) -> tuple[Any, str] | None:
        """Claim row *pk* if it is due and nobody holds a live lease on it.

        A row whose lease ran out under a runner that had started it (the runner died: a
        kill, the OOM killer) counts that try as a failed attempt (``attempts`` + 1,
        ``last_error`` :data:`TAKEN_OVER`), in the same UPDATE: a row that kills its runner
        every time reaches its state's ``max_attempts`` and fails (:meth:`advance_claimed`)
        instead of being resumed forever. Rows given back by a runner that stopped
        (:meth:`give_back`, :meth:`release`) and rows only claimed ahead do not count."""
        now = self.clock()
        token = _token()
        updated = await (
            self._due_query(machine, now)
            .filter(pk=pk)
            .update(locked_until=now + self.lease, lock_token=token, **_CLAIM_COUNTS)
        )
        if updated != 1:
            return None
        try:
            row = await machine.model.get_or_none(pk=pk, lock_token=token)
        except asyncio.CancelledError:
            # The runner is stopping between the claim and its step: the row was not
            # started, so it is released at once (no lease to wait out, no attempt counted
            # for its takeover).
            with contextlib.suppress(Exception):
                await self.release(machine, [pk], token)
            raise
        return None if row is None else (row, token)

    async def claim_due(self, machine: Machine, limit: int, start: int | None = None) -> Claims:
        """Claim up to *limit* due rows at once, in the machine's due order.

        Three statements however many rows: the due rows' keys, one conditional UPDATE of
        those still due and unlocked (the same condition as :meth:`claim`, so a row another
        runner claimed in between is left out, on PostgreSQL too: its UPDATE re-checks the
        condition on the row it waited for; takeovers count as in :meth:`claim`), and the
        claimed rows by key and token. The first *start* rows (all by default) are claimed
        under ``Claims.token``, to start at once; the rest, claimed ahead of a free slot,
        under a queued token (:data:`QUEUED`), so that a runner dying before it started
        them costs them no attempt. Each row is then fenced on (key, its ``lock_token``)
        like a row claimed alone.
        """
        now = self.clock()
        token = _token()
        query = self._due_query(machine, now)
        pk_attr = machine.model._meta.pk_attr
        if machine.select_due is not None:
            pks = [row.pk for row in await machine.select_due(query, limit)]
        else:
            pks = list(
                await query.order_by(*machine.order_by).limit(limit).values_list(pk_attr, flat=True)
            )
        exhausted = len(pks) < limit
        if not pks:
            return Claims([], token, exhausted)
        now_pks = pks if start is None else pks[: max(start, 0)]
        tokens = [token]
        lock_token: Any = token
        if len(now_pks) < len(pks):
            queued = _queued_token()
            tokens.append(queued)
            lock_token = (
                Case(When(Q(pk__in=now_pks), then=token), default=queued) if now_pks else queued
            )
        updated = await (
            self._due_query(machine, now)
            .filter(pk__in=pks)
            .update(locked_until=now + self.lease, lock_token=lock_token, **_CLAIM_COUNTS)
        )
        if not updated:
            return Claims([], token, exhausted)
        claimed = machine.model.filter(pk__in=pks, lock_token__in=tokens)
        rows = {row.pk: row for row in await claimed}
        return Claims([rows[pk] for pk in pks if pk in rows], token, exhausted)

    async def renew(self, machine: Machine, pk: Any, token: str) -> bool:
        """Extend our lease on a row to a full one; False if another runner holds it now."""
        until = self.clock() + self.lease
        updated = await machine.model.filter(pk=pk, lock_token=token).update(locked_until=until)
        return updated == 1

    async def give_back(self, machine: Machine, pk: Any, token: str) -> None:
        """A runner that stops gives back a row it started (its step was cancelled): the
        row keeps the rest of its lease, since work the step started may still be running
        (a render's thread stops at its next step), and its takeover then is no attempt."""
        await machine.model.filter(pk=pk, lock_token=token).update(lock_token=None)

    async def release(self, machine: Machine, pks: Sequence[Any], token: str) -> int:
        """Give back claimed rows that were not started: due again at once, for any runner.
        Rows claimed since by another runner are left alone (fenced on *token*)."""
        if not pks:
            return 0
        return await machine.model.filter(pk__in=list(pks), lock_token=token).update(
            locked_until=None, lock_token=None
        )

    async def advance(self, table: str, pk: Any) -> AdvanceResult:
        """Claim row *pk* of *table* and run one step of its state machine."""
        machine = self.machine(table)
        claimed = await self.claim(machine, pk)
        if claimed is None:
            row = await machine.model.get_or_none(pk=pk)
            if row is None or row.state not in machine.graph.active_states:
                return AdvanceResult.SKIPPED
            if row.locked_until is not None and row.locked_until >= self.clock():
                return AdvanceResult.BUSY
            return AdvanceResult.SKIPPED
        row, token = claimed
        return await self.advance_claimed(machine, row, token)

    async def advance_claimed(self, machine: Machine, row: Any, token: str) -> AdvanceResult:
        """Run one step of *row*, claimed under *token* (:meth:`claim`, :meth:`claim_due`).

        The step runs under the row's ``request_id`` (that of the request that caused the
        work): its log lines name it, and rows it creates carry it on. A step of a row that
        has one is logged (``fedisora.work``, info), so that one id links a request and all
        the work it caused in the logs."""
        request_id = getattr(row, "request_id", None)
        reset = REQUEST_ID.set(request_id)
        try:
            if request_id is not None:
                log.info("%s:%s: running %s", machine.name, row.pk, row.state)
            return await self._advance_claimed(machine, row, token)
        finally:
            REQUEST_ID.reset(reset)

    async def _advance_claimed(self, machine: Machine, row: Any, token: str) -> AdvanceResult:
        pk = row.pk
        source = row.state
        state = machine.graph[source]
        ctx = WorkContext(self, machine, row, token, self.clock)

        if state.timeout is not None and self.clock() - row.state_changed_at > state.timeout:
            return await self._fail(ctx, f"timed out in state {source} after {state.timeout}")
        if state.max_attempts is not None and row.attempts >= state.max_attempts:
            # Only a takeover gets it here (a failed attempt that reaches the limit fails
            # the row at once): the last try killed its runner.
            return await self._fail(
                ctx, f"{row.attempts} attempts in state {source}; the last: {row.last_error}"
            )

        try:
            outcome = await machine.handlers[source](row, ctx)
        except asyncio.CancelledError:
            # The runner is stopping: give the row back, so that its takeover is no attempt.
            with contextlib.suppress(Exception):
                await self.give_back(machine, pk, token)
            raise
        except LeaseLost:
            log.warning("%s:%s: lease lost during %s", machine.name, pk, source)
            return AdvanceResult.LOST
        except Exception as exc:
            log.warning("%s:%s: %s failed: %s", machine.name, pk, source, exc, exc_info=True)
            detail = "".join(traceback.format_exception_only(exc)).strip()
            return await self._retry_or_fail(ctx, Retry(detail))

        if ctx.moved_to is not None:
            if isinstance(outcome, str) and outcome != ctx.moved_to:
                raise RuntimeError(
                    f"{machine.name}: handler moved to {ctx.moved_to} but returned {outcome}"
                )
            await self._after_move(ctx, source, ctx.moved_to)
            return AdvanceResult.MOVED
        if outcome is None or isinstance(outcome, Retry):
            return await self._retry_or_fail(ctx, outcome or Retry("not ready"))
        if outcome == machine.graph.failed:
            return await self._fail(ctx, "handler gave up")
        try:
            await ctx.move(outcome)
        except LeaseLost:
            return AdvanceResult.LOST
        await self._after_move(ctx, source, outcome)
        return AdvanceResult.MOVED

    async def _after_move(self, ctx: WorkContext, source: str, target: str) -> None:
        machine = ctx.machine
        wake = target in machine.graph.active_states
        if machine.on_transition is not None:
            # The hook sees the row as committed, with whatever the handler wrote.
            row = await machine.model.get(pk=ctx.row.pk)
            await machine.on_transition(row, source, target)
        elif wake:
            row = ctx._row_as_written()
        else:
            return  # a final state and no hook: nothing reads the row, so it is not loaded
        if wake:
            await self.wake(machine, row)

    async def _retry_or_fail(self, ctx: WorkContext, retry: Retry) -> AdvanceResult:
        state = ctx.machine.graph[ctx.row.state]
        now = self.clock()
        if not retry.counts and retry.after is not None:  # (Retry insists on after= then)
            # Rescheduled, not failed: the attempt count, hence the backoff schedule and the
            # way to the failed state, stays where it was.
            attempts, delay = ctx.row.attempts, retry.after
        else:
            attempts = ctx.row.attempts + 1
            if state.max_attempts is not None and attempts >= state.max_attempts:
                return await self._fail(ctx, retry.reason, attempts=attempts)
            delay = retry.after if retry.after is not None else state.delay(attempts)
        values = {
            "attempts": attempts,
            "next_attempt_at": now + delay,
            "locked_until": None,
            "lock_token": None,
            "last_error": retry.reason[:10000],
        }
        try:
            await ctx._fenced_update(values)
        except LeaseLost:
            return AdvanceResult.LOST
        ctx._written = values
        await self.wake(ctx.machine, ctx._row_as_written())
        return AdvanceResult.RETRY

    async def _fail(
        self, ctx: WorkContext, reason: str, attempts: int | None = None
    ) -> AdvanceResult:
        source = ctx.row.state
        target = ctx.machine.graph.failed
        values = self._transition_values(ctx.machine, target, self.clock())
        values["last_error"] = reason[:10000]
        values["attempts"] = ctx.row.attempts if attempts is None else attempts
        try:
            await ctx._fenced_move(values, target)
        except LeaseLost:
            return AdvanceResult.LOST
        if ctx.machine.on_transition is not None:
            row = await ctx.machine.model.get(pk=ctx.row.pk)
            await ctx.machine.on_transition(row, source, target)
        return AdvanceResult.FAILED

    async def move(
        self, model: type[WorkRow], pk: Any, source: str | Sequence[str], target: str, **values: Any
    ) -> bool:
        """Move a row from outside a handler (e.g. a user cancels, publishes a ready clip).

        Only succeeds if the row is in *source* and not held by a runner; returns whether it did.
        Runners notice on their next fenced write (their token no longer matches).
        """
        machine = self.machine_for(model)
        sources = [source] if isinstance(source, str) else list(source)
        for s in sources:
            machine.graph.check_transition(s, target)
        now = self.clock()
        before = await model.get_or_none(pk=pk)
        if before is None:
            return False
        update = self._transition_values(machine, target, now)
        update.update(values)
        query = model.filter(
            Q(pk=pk) & Q(state__in=sources) & (Q(locked_until=None) | Q(locked_until__lt=now))
        )
        if machine.on_move is None:
            updated = await query.update(**update)
        else:
            async with machine.transaction() as conn:
                updated = await query.using_db(conn).update(**update)
                if updated == 1:
                    await machine.on_move(before, before.state, target, conn)
        if updated == 1:
            row = await model.get(pk=pk)
            if machine.on_transition is not None:
                await machine.on_transition(row, before.state, target)
            if target in machine.graph.active_states:
                await self.wake(machine, row)
        return updated == 1
