"""Group commit: many concurrent inserts of new work rows in one transaction.

An inbox answers 202 only once its row is committed (the row is the truth), so each POST
waits for a commit. Committing each row on its own costs a database round trip and a
transaction per request; under load that, not the request handling, is what limits the
inbox. :class:`GroupInsert` lets concurrent callers share the commit: rows that arrive while
one batch is being written form the next batch, so a lone request is written at once (no
added latency) and a burst is written in a few statements. Each caller still waits for its
own row's commit, and is told of a failure only if its own row was not stored: when the
database refuses a batch (one bad row fails the whole statement: a JSON string PostgreSQL
cannot store, a violated constraint), its rows are written again one by one, so the rows the
database refuses fail their callers and the others are stored. Nothing is acknowledged that
was not stored.

Rows whose unique key already exists (the same activity delivered twice) are skipped, not
errors: ``INSERT ... ON CONFLICT DO NOTHING`` on both PostgreSQL and SQLite.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields import Field

from fedisora.models import WorkRow, utcnow

__all__ = ["GroupInsert"]

# Markers in GroupInsert._plan (see there).
_NOW = object()
_CALL = object()
# A new row is due at once: it changes state, is created and becomes due at its insert time.
_INSERT_TIME = frozenset({"state_changed_at", "next_attempt_at", "created_at"})

log = logging.getLogger("fedisora.work")

Row = TypeVar("Row", bound=WorkRow)


class GroupInsert(Generic[Row]):
    """Inserts rows of *model* (a :class:`~fedisora.models.WorkRow`) in shared transactions.

    *unique* names the column that identifies a row (duplicates are skipped); *wake* is
    called after each commit (not awaited by the callers) to wake a runner. One batch is
    written at a time: the rows that arrive meanwhile make the next one, which is what
    keeps batches large (several in flight measured slower: smaller batches, more round
    trips). One instance per event loop.
    """

    def __init__(
        self,
        model: type[Row],
        initial: str,
        *,
        unique: str,
        wake: Callable[[], Awaitable[None]] | None = None,
        max_batch: int = 256,
    ) -> None:
        self.model = model
        self.initial = initial
        self.unique = unique
        self.wake = wake
        self.max_batch = max_batch
        self._pending: list[tuple[list[Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._waking: asyncio.Task[None] | None = None
        self._wake_again = False

    async def insert(self, **values: Any) -> None:
        """Insert one row; return once it is committed (or was there already).

        Values are converted (and validated) here, so a bad row fails only its caller."""
        params = self._params(values)
        loop = asyncio.get_running_loop()  # not kept: the per-loop registry holds loops weakly
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((params, done))
        if self._writer is None:
            self._writer = loop.create_task(self._write_pending(), name="group-insert")
        # A caller that goes away (client disconnect) cancels only its own future, not the
        # writer or the others' batch: its row is written anyway, which is harmless (the
        # sender retries, and the unique key absorbs the retry).
        await done

    async def _write_pending(self) -> None:
        try:
            await self._write_batches()
        finally:
            self._writer = None  # also lets a finished loop go (a done task keeps its loop)

    async def _write_batches(self) -> None:
        while self._pending:
            # Batch sizes are powers of two, so the database sees a few distinct statements
            # (PostgreSQL keeps them prepared) rather than one per size.
            size = min(self.max_batch, 1 << (len(self._pending).bit_length() - 1))
            batch = self._pending[:size]
            del self._pending[:size]
            try:
                await self._write(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                    continue
                # One row the database refuses fails the whole statement: write each row on
                # its own, so that only the refused rows fail their callers. (If the database
                # is simply gone, each row fails on its own as well.)
                log.info(
                    "group insert of %d %s rows failed (%s: %s); writing them one by one",
                    len(batch),
                    self.model.__name__,
                    type(exc).__name__,
                    exc,
                )
                await self._write_singly(batch)
                continue
            except BaseException as exc:  # cancelled: the writer stops, its callers are told
                _fail(batch, exc)
                raise
            _succeed(batch)
            self._wake_runners()

    async def _write_singly(self, batch: list[tuple[list[Any], asyncio.Future[None]]]) -> None:
        """Write each row of a failed batch in a statement of its own; each caller learns of
        its own row as soon as that row is committed or refused."""
        stored = False
        for i, entry in enumerate(batch):
            try:
                await self._write([entry])
            except Exception as exc:
                _fail([entry], exc)
                continue
            except BaseException as exc:
                _fail(batch[i:], exc)
                if stored:
                    self._wake_runners()
                raise
            _succeed([entry])
            stored = True
        if stored:
            self._wake_runners()

    def _wake_runners(self) -> None:
        """Wake runners in the background, one wake-up at a time: rows committed while one
        is under way get one more afterwards."""
        if self.wake is None:
            return
        if self._waking is not None and not self._waking.done():
            self._wake_again = True
            return
        waking = asyncio.get_running_loop().create_task(self._wake_loop(), name="group-insert-wake")
        self._waking = waking
        waking.add_done_callback(self._woken)

    def _woken(self, task: asyncio.Task[None]) -> None:
        if self._waking is task:
            self._waking = None  # a finished task would keep its loop alive

    async def _wake_loop(self) -> None:
        assert self.wake is not None
        while True:
            self._wake_again = False
            try:
                await self.wake()
            except Exception:  # a lost wake-up is harmless: the sweep finds the rows
                log.warning("wake-up after a group insert failed", exc_info=True)
            if not self._wake_again:
                return

    async def _write(self, batch: list[tuple[list[Any], asyncio.Future[None]]]) -> None:
        """One multi-row ``INSERT ... ON CONFLICT DO NOTHING``: atomic without a transaction
        around it, and one round trip to the database. (tortoise's ``bulk_create`` makes it
        a transaction around ``executemany``: three round trips on PostgreSQL, and its
        ``ignore_conflicts`` is MySQL/SQLite's ``INSERT OR IGNORE``, which would also skip
        rows that break other constraints.)"""
        params = [value for row, _ in batch for value in row]
        db: BaseDBAsyncClient = self.model._meta.db  # looked up each time: tests swap databases
        await db.execute_query(self._sql(len(batch), db.capabilities.dialect), params)

    def _params(self, values: dict[str, Any]) -> list[Any]:
        """The row's database values, in :attr:`_columns` order (no model instance is made:
        that would cost more than the insert). The given values are converted (and
        validated) by their fields; the rest come from :attr:`_plan`."""
        if not self._column_set.issuperset(values):
            unknown = sorted(set(values) - self._column_set)
            raise TypeError(f"{self.model.__name__} has no column {unknown}")
        model = self.model
        now: Any = None
        params: list[Any] = []
        for name, field, fixed in self._plan:
            if name in values:
                params.append(field.to_db_value(values[name], model))
            elif fixed is _NOW:
                if now is None:
                    now = field.to_db_value(utcnow(), model)
                params.append(now)
            elif fixed is _CALL:
                default = field.default() if callable(field.default) else field.default
                params.append(field.to_db_value(default, model))
            else:
                params.append(fixed)
        return params

    @functools.cached_property
    def _plan(self) -> list[tuple[str, Field[Any], Any]]:
        """Per column: its name, its field, and where a value not given comes from: the
        insert time (:data:`_NOW`: the work-row times, and defaults of ``utcnow``, all one
        instant), the field's default called per row (:data:`_CALL`), or a database value
        converted once (the initial state, constant defaults). A column without a usable
        default is converted per row too, so a row lacking it fails its caller."""
        fields = self.model._meta.fields_map
        plan: list[tuple[str, Field[Any], Any]] = []
        for name in self._columns:
            field = fields[name]
            if name == "state":
                fixed = field.to_db_value(self.initial, self.model)
            elif name in _INSERT_TIME or field.default is utcnow:
                fixed = _NOW
            elif callable(field.default):
                fixed = _CALL
            else:
                try:
                    fixed = field.to_db_value(field.default, self.model)
                except Exception:  # a required column: each row without it fails, as it should
                    fixed = _CALL
            plan.append((name, field, fixed))
        return plan

    @functools.cached_property
    def _column_set(self) -> frozenset[str]:
        return frozenset(self._columns)

    @functools.cached_property
    def _columns(self) -> list[str]:
        """Field names of the inserted columns: all but a database-generated key."""
        meta = self.model._meta
        return [
            name
            for name in meta.fields_db_projection
            if not (name == meta.pk_attr and meta.pk.generated)
        ]

    @functools.lru_cache(maxsize=32)  # noqa: B019 - one instance per loop, few sizes
    def _sql(self, count: int, dialect: str) -> str:
        meta = self.model._meta
        names = ", ".join(f'"{meta.fields_db_projection[n]}"' for n in self._columns)
        width = len(self._columns)
        if dialect == "postgres":
            groups = (
                "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
                for i in range(count)
            )
        else:
            groups = ("(" + ", ".join("?" * width) + ")" for _ in range(count))
        return (
            f'INSERT INTO "{meta.db_table}" ({names}) VALUES {", ".join(groups)} '
            f'ON CONFLICT ("{meta.fields_db_projection[self.unique]}") DO NOTHING'
        )


def _fail(batch: list[tuple[list[Any], asyncio.Future[None]]], exc: BaseException) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)


def _succeed(batch: list[tuple[list[Any], asyncio.Future[None]]]) -> None:
    for _, done in batch:
        if not done.done():
            done.set_result(None)
