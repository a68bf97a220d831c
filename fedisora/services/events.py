"""Domain events, through a transactional outbox.

A service records an event with :func:`emit` inside the transaction that makes the change the
event describes, opened with :func:`transaction`::

    async with events.transaction() as conn:
        clip = await Clip.create(..., using_db=conn)
        await events.emit(conn, "clip.created", author.pk, clip_id=clip.pk)

The event is an :class:`~fedisora.models.OutboxEvent` row that commits or rolls back with
the change. Nothing reacts to it on the spot: the outbox machine
(:mod:`fedisora.services.outbox`), run by the durable-work runners like any other work row,
turns each row into its effects. Federation's Delivery rows are written in the transaction of
the row's own move to ``done`` (exactly once); then the listeners of :func:`subscribe` (the
streaming hub of a web process, the Redis publisher of a worker) hear of it, best effort.

Once the outermost :func:`transaction` has committed, its new rows are handed on as this
process was set up with :func:`set_runner`: an engine's runners are woken for them (the app and
the workers; a posted clip reaches its deliveries and streams within milliseconds on an idle
instance), or, with ``None``, the rows are processed at once in this task through the same
machine (a process without runners: the CLI's commands, tests). Until then, rows wait for a
runner's next sweep. A process killed between the commit and the hand-over loses nothing: the
rows are due, and the next sweep of any runner finds them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.transactions import in_transaction

from fedisora.models import OutboxEvent, utcnow

if TYPE_CHECKING:
    from fedisora.work.engine import Engine

__all__ = [
    "KINDS",
    "Event",
    "clear_runner",
    "emit",
    "listeners",
    "set_runner",
    "subscribe",
    "transaction",
    "unsubscribe",
]

log = logging.getLogger("fedisora.events")

#: Every kind of event there is; :func:`emit` refuses others. What each one's data holds is
#: whatever its emitter passes (ids of the rows it names, and what a builder of its
#: activity needs once those rows are gone).
KINDS = frozenset(
    {
        "clip.created",
        "clip.updated",
        "clip.deleted",
        "comment.created",
        "comment.updated",
        "comment.deleted",
        "like.created",
        "like.deleted",
        "boost.created",
        "boost.deleted",
        "follow.requested",
        "follow.accepted",
        "follow.rejected",
        "follow.deleted",
        "block.created",
        "block.deleted",
        "account.updated",
        "account.deleted",
        "account.suspended",
        "account.unsuspended",
        "notification.created",
        "likeness.federate",  # a consent activity, prepared (fedisora.federation.likeness)
        "likeness.revoked",
        "report.forwarded",  # a report sent on as a Flag by the instance actor (services.reports)
        "activity.forwarded",  # a remote reply forwarded as received (federation.delivery)
    }
)


@dataclass(frozen=True)
class Event:
    """``kind`` is one of :data:`KINDS`; ``actor_id`` the account whose action it is."""

    kind: str
    actor_id: int
    data: dict[str, Any]


Listener = Callable[[Event], Awaitable[None]]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    """Have *listener* hear of each event this process's outbox runner processes, once its
    durable effects are committed (streams: best effort, a failing listener is logged)."""
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def listeners() -> list[Listener]:
    """The dispatch table the outbox machine calls (a copy)."""
    return list(_listeners)


# The rows emitted in the outermost transaction() of this task so far; None outside one.
_pending: ContextVar[list[OutboxEvent] | None] = ContextVar("fedisora_events", default=None)


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """A database transaction whose events are handed on once it commits (see the module
    docstring). Nested in another, it is a savepoint, and its events go with the outer one's
    (none if the savepoint rolls back). It cannot be opened inside a plain ``in_transaction``
    (whose commit it would not see): open it outside, e.g. around a handler's
    ``ctx.transition``."""
    pending = _pending.get()
    if pending is not None:
        mark = len(pending)
        try:
            async with in_transaction() as conn:
                yield conn
        except BaseException:
            del pending[mark:]
            raise
        return
    if isinstance(OutboxEvent._meta.db, TransactionalDBClient):
        # Its events would be handed on at the end of this block, before the commit.
        raise RuntimeError("events.transaction() must be the outermost transaction")
    pending = []
    token = _pending.set(pending)
    try:
        async with in_transaction() as conn:
            yield conn
    finally:
        _pending.reset(token)
    if pending:
        await _committed(pending)


async def emit(conn: BaseDBAsyncClient, kind: str, actor_id: int, **data: Any) -> OutboxEvent:
    """Record the event *kind* by the account *actor_id* in *conn*, the transaction of the
    change it describes, which must be a :func:`transaction`. The row is due at once."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    pending = _pending.get()
    if pending is None or not isinstance(conn, TransactionalDBClient):
        raise RuntimeError(f"{kind}: events are emitted inside events.transaction(), with its conn")
    from fedisora.services.outbox import OUTBOX_GRAPH

    now = utcnow()
    row = await OutboxEvent.create(
        kind=kind,
        actor_id=actor_id,
        data=data,
        state=OUTBOX_GRAPH.initial,
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
        using_db=conn,
    )
    pending.append(row)
    return row


# --- handing committed events on -------------------------------------------------------------


class _Unset:
    pass


_UNSET = _Unset()
_runner: Engine | _Unset | None = _UNSET
_inline: Engine | None = None


def set_runner(engine: Engine | None) -> None:
    """How this process hands on committed events: *engine* wakes its runners for them;
    None processes them at once, in the emitting task (a process without runners)."""
    global _runner
    _runner = engine


def clear_runner() -> None:
    """Leave committed events to the next sweep of any runner (the state before
    :func:`set_runner`; at shutdown)."""
    global _runner
    _runner = _UNSET


async def _committed(rows: list[OutboxEvent]) -> None:
    """Hand on the rows a transaction just committed. Runs after the commit and may never
    run (a kill): whatever it does, a runner's sweep would do later."""
    runner = _runner
    if isinstance(runner, _Unset):
        return
    if runner is None:
        engine = _inline_engine()
        for row in rows:
            try:
                await engine.advance(OutboxEvent._meta.db_table, row.pk)
            except Exception:  # the change is committed: a runner processes the row later
                log.warning("processing event %s failed", row.pk, exc_info=True)
        return
    try:
        machine = runner.machine_for(OutboxEvent)
    except KeyError:  # an engine without the outbox (the render command's): leave them
        return
    for row in rows:
        await runner.wake(machine, row)


def _inline_engine() -> Engine:
    global _inline
    if _inline is None:
        from fedisora.services.outbox import build_machine
        from fedisora.work.engine import Engine

        _inline = Engine([build_machine()])
    return _inline
