"""Retention of finished durable work: large columns dropped, old rows deleted, counts kept.

A durable-work row (:class:`~fedisora.models.WorkRow`) that reached a terminal state is
history. What it holds that is large (an inbox item's activity) is dropped after a while,
and a row nothing needs any more is deleted later; each deleted row is added to a
:class:`~fedisora.models.WorkTally` of its table and state in the same transaction, so counts
(the admin overview) stay whole. Times are measured from the row's ``state_changed_at``, the
moment it became terminal; each setting is in :mod:`fedisora.config`:

- ``inbox_items``: the payload of an ``ignored`` item is dropped after
  ``RETAIN_INBOX_IGNORED_MINUTES`` (10), of a ``processed`` one after
  ``RETAIN_INBOX_PROCESSED_MINUTES`` (60), of a ``failed`` one after ``RETAIN_FAILED_DAYS``
  (3). Every terminal row is deleted after ``INBOX_DEDUPE_DAYS`` (7): until then its activity
  id makes a redelivery of it a no-op (peers retry for two to three days: Mastodon 16 times
  over 2-3 days, fedisora for 2 days).
- ``deliveries``: ``delivered`` rows are deleted after ``RETAIN_DELIVERED_HOURS`` (24),
  ``failed`` ones after ``RETAIN_FAILED_DAYS`` (3), counted per host.
- ``render_jobs``: the input still of a finished job is removed from disk after
  ``RETAIN_WORK_DAYS`` (7); the rows stay (they are their owners' render history, and
  notifications point at them).
- any other table (remote media checks, quote checks, tables added later: found through the
  engine's machines): terminal rows are deleted after ``RETAIN_WORK_DAYS`` (7), unless other
  tables point at its rows (then it needs a policy of its own, and its rows are kept).
- ``chores``: nothing (housekeeping's own rows never end).

Every step is one bounded batch (:data:`BATCH` rows) in a short transaction of its own,
idempotent, and safe to run twice at once: a delete counts only the rows it deleted, and a
row whose state changed in between is left alone. Rows that keep their place (dropped
payloads) are walked with a cursor on ``(state_changed_at, id)``, kept in the caller's
*progress*, so a run never reads the rows earlier runs handled; rows that go are found from
the oldest on. Both are range scans of the ``(state, state_changed_at)`` index each work table
has.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from fedisora.config import Settings
from fedisora.media_store import LocalStore, MediaStore
from fedisora.models import Chore, Delivery, InboxItem, RenderJob, WorkRow, WorkTally
from fedisora.work.graph import StateGraph

__all__ = [
    "BATCH",
    "Delete",
    "Fence",
    "Policy",
    "Strip",
    "policies",
    "remove_files",
    "run_policies",
    "tallies",
    "tally",
]

log = logging.getLogger("fedisora.retention")

BATCH = 500
"""Rows one step of a rule reads and changes at most (one short transaction)."""

Fence = Callable[[BaseDBAsyncClient], Awaitable[None]]
"""Called in each transaction that changes rows, after *progress* was updated: writes the
progress, or raises (our lease was lost), which rolls the transaction back."""


@dataclass(frozen=True)
class Strip:
    """Terminal rows in *states* that changed state *after* ago or longer keep their row but
    lose what is large: *values* are written over their columns, and *files* (paths under the
    media root, read from the row's *reads* columns) are removed from disk."""

    name: str  # its cursor's key in the progress
    states: tuple[str, ...]
    after: timedelta
    values: Mapping[str, Any] = field(default_factory=dict)
    reads: tuple[str, ...] = ()
    files: Callable[[Mapping[str, Any]], Iterable[str]] | None = None


@dataclass(frozen=True)
class Delete:
    """Terminal rows in *states* that changed state *after* ago or longer are deleted, and
    tallied per state (and per *group_by* column where given)."""

    states: tuple[str, ...]
    after: timedelta
    group_by: str | None = None


Rule = Strip | Delete


@dataclass(frozen=True)
class Policy:
    model: type[WorkRow]
    rules: tuple[Rule, ...]

    @property
    def table(self) -> str:
        return str(self.model._meta.db_table)


class _Machine(Protocol):
    """What retention reads of a durable-work machine (:class:`~fedisora.work.Machine`)."""

    @property
    def model(self) -> type[WorkRow]: ...

    @property
    def graph(self) -> StateGraph: ...


def _input_still(row: Mapping[str, Any]) -> Iterable[str]:
    spec = row.get("spec") or {}
    path = spec.get("input_image") if isinstance(spec, dict) else None
    if isinstance(path, str) and path.startswith("render-inputs/") and ".." not in path:
        yield path


def _referenced(model: type[WorkRow]) -> bool:
    """Whether rows of other tables point at *model*'s rows (then they are not deleted)."""
    meta = model._meta
    return bool(meta.backward_fk_fields or meta.backward_o2o_fields)


_warned: set[type[WorkRow]] = set()


def _minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def _hours(n: int) -> timedelta:
    return timedelta(hours=n)


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def policies(settings: Settings, machines: Iterable[_Machine]) -> list[Policy]:
    """What retention does to each durable-work table the engine runs (see the module)."""
    minutes, hours, days = _minutes, _hours, _days
    dropped = {"payload": {}, "size": 0}
    explicit: dict[type[WorkRow], tuple[Rule, ...]] = {
        InboxItem: (
            Strip("ignored", ("ignored",), minutes(settings.retain_inbox_ignored_minutes), dropped),
            Strip(
                "processed",
                ("processed",),
                minutes(settings.retain_inbox_processed_minutes),
                dropped,
            ),
            Strip("failed", ("failed",), days(settings.retain_failed_days), dropped),
            Delete(("processed", "ignored", "failed"), days(settings.inbox_dedupe_days)),
        ),
        Delivery: (
            Delete(("delivered",), hours(settings.retain_delivered_hours), group_by="host"),
            Delete(("failed",), days(settings.retain_failed_days), group_by="host"),
        ),
        Chore: (),
    }
    found: list[Policy] = []
    for machine in machines:
        model = machine.model
        terminal = tuple(machine.graph.terminal_states)
        if model in explicit:
            rules = explicit[model]
        elif model is RenderJob:
            rules = (
                Strip(
                    "input_stills",
                    terminal,
                    days(settings.retain_work_days),
                    reads=("spec",),
                    files=_input_still,
                ),
            )
        elif _referenced(model):
            if model not in _warned:  # once per process, not at every run
                _warned.add(model)
                log.warning(
                    "retention: %s is referenced by other tables and has no policy of its "
                    "own; its rows are kept",
                    model._meta.db_table,
                )
            rules = ()
        else:
            rules = (Delete(terminal, days(settings.retain_work_days)),)
        found.append(Policy(model, rules))
    return found


async def run_policies(
    found: Sequence[Policy],
    *,
    now: datetime,
    progress: dict[str, Any],
    fence: Fence,
    store: MediaStore | None = None,
    media_root: Path | None = None,
    between: Callable[[], Awaitable[None]] | None = None,
) -> tuple[dict[str, int], bool]:
    """One step of every rule of *found*: rows changed per ``table:rule``, and whether some
    rule had a full batch (more is due at once). *between* runs between steps (a lease
    heartbeat). Files go from *store* (or the local store at *media_root*)."""
    if store is None:
        if media_root is None:
            raise TypeError("run_policies needs the media store (or the local media_root)")
        store = LocalStore(media_root)
    done: dict[str, int] = {}
    more = False
    for policy in found:
        for rule in policy.rules:
            if isinstance(rule, Strip):
                count, full = await _strip(policy.model, rule, now, progress, fence, store)
                key = f"{policy.table}:{rule.name}"
            else:
                count, full = await _delete(policy.model, rule, now, progress, fence)
                key = f"{policy.table}:delete:{','.join(rule.states)}"
            if count:
                done[key] = count
            more = more or full
            if between is not None:
                await between()
    return done, more


# --- dropping large columns ------------------------------------------------------------------


def _cursor_key(model: type[WorkRow], rule: Strip) -> str:
    return f"retention:{model._meta.db_table}:{rule.name}"


async def _strip(
    model: type[WorkRow],
    rule: Strip,
    now: datetime,
    progress: dict[str, Any],
    fence: Fence,
    store: MediaStore,
) -> tuple[int, bool]:
    key = _cursor_key(model, rule)
    cutoff = now - rule.after
    query = model.filter(state__in=rule.states, state_changed_at__lte=cutoff)
    cursor = progress.get(key)
    if cursor:
        at = datetime.fromisoformat(cursor[0])
        query = query.filter(
            Q(state_changed_at__gt=at) | (Q(state_changed_at=at) & Q(pk__gt=cursor[1]))
        )
    pk = model._meta.pk_attr
    rows = await (
        query.order_by("state_changed_at", pk)
        .limit(BATCH)
        .values(pk, "state_changed_at", *rule.reads)
    )
    if not rows:
        return 0, False
    if rule.files is not None:
        paths = [path for row in rows for path in rule.files(row)]
        if paths:  # before the cursor moves on: a crash in between removes them again
            await store.delete(paths)
    last = rows[-1]
    progress[key] = [last["state_changed_at"].isoformat(), last[pk]]
    async with in_transaction() as conn:
        count = len(rows)
        if rule.values:
            count = await (
                model.filter(pk__in=[row[pk] for row in rows], state__in=rule.states)
                .using_db(conn)
                .update(**rule.values)
            )
        await fence(conn)
    return count, len(rows) == BATCH


def remove_files(root: Path, paths: Iterable[str]) -> None:
    """Remove files at *paths* (relative to the media *root*; one already gone is fine, one
    that would resolve outside *root* is left alone). Blocking: run it in a thread."""
    base = root.resolve()
    for rel in paths:
        path = (root / rel).resolve()
        if not path.is_relative_to(base):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# --- deleting rows ---------------------------------------------------------------------------


async def _delete(
    model: type[WorkRow], rule: Delete, now: datetime, progress: dict[str, Any], fence: Fence
) -> tuple[int, bool]:
    pk = model._meta.pk_attr
    columns = [pk, "state"] + ([rule.group_by] if rule.group_by else [])
    rows = await (
        model.filter(state__in=rule.states, state_changed_at__lte=now - rule.after)
        .order_by("state_changed_at", pk)
        .limit(BATCH)
        .values(*columns)
    )
    if not rows:
        return 0, False
    buckets: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        group = str(row[rule.group_by]) if rule.group_by else ""
        buckets.setdefault((row["state"], group), []).append(row[pk])
    deleted = 0
    table = str(model._meta.db_table)
    async with in_transaction() as conn:
        for (state, group), pks in buckets.items():
            # The state again: a row that is no longer in it is not deleted, nor counted. Rows
            # another runner deleted meanwhile are not counted twice either.
            n = await model.filter(pk__in=pks, state=state).using_db(conn).delete()
            if n:
                await tally(conn, table, state, group, n)
                deleted += n
        await fence(conn)
    return deleted, len(rows) == BATCH


async def tally(conn: BaseDBAsyncClient, table: str, state: str, group: str, n: int) -> None:
    """Add *n* deleted rows to the tally of (*table*, *state*, *group*), in *conn*'s
    transaction (the one that deleted them)."""
    dialect = conn.capabilities.dialect
    marks = ("$1", "$2", "$3") if dialect == "postgres" else ("?", "?", "?")
    await conn.execute_query(
        f'INSERT INTO "{WorkTally._meta.db_table}" (table_name, state, group_key, count) '
        f"VALUES ({', '.join(marks)}, 0) ON CONFLICT (table_name, state, group_key) DO NOTHING",
        [table, state, group],
    )
    await (
        WorkTally.filter(table_name=table, state=state, group_key=group)
        .using_db(conn)
        .update(count=F("count") + n)
    )


async def tallies(table: str) -> dict[tuple[str, str], int]:
    """Rows of *table* retention deleted, per (state, group)."""
    rows = await WorkTally.filter(table_name=table).values("state", "group_key", "count")
    return {(r["state"], r["group_key"]): int(r["count"]) for r in rows}
