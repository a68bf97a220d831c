"""The outbox machine: turns :class:`~fedisora.models.OutboxEvent` rows into their effects.

Each row (written by :func:`fedisora.services.events.emit` in the transaction of its change)
goes ``pending -> done`` in one step:

1. In the transaction of that move, fenced on the runner's lease, the durable effects of
   :data:`EFFECTS` write their rows: federation's Delivery rows for a local actor's action.
   A runner killed before the commit leaves the row pending, and whoever claims it after
   the lease writes them; one that commits has written them: exactly once.
2. After the commit, the listeners of :func:`fedisora.services.events.subscribe` hear of the
   event: the streaming hub of a web process, or the Redis publisher of a worker. Best
   effort, at most once: a kill between the commit and this step loses the stream message
   (clients catch up through the REST timelines, as on Mastodon), never a delivery.

Notifications are rows of their own, written with the change that makes them
(:func:`fedisora.services.notify.notify`, in the same transaction); their event,
``notification.created``, only streams them.

Order: one actor's events take effect in the order they were written (their ids), so that a
Create goes to the Delivery rows and the streams before the Delete of the same clip, a
Follow before its Undo. Runners only claim an actor's oldest pending event
(:func:`_select_due`); the handler checks again (a row may be advanced by key, as an arq
``advance`` job or the emitting task does) and waits otherwise, and a finished event makes
the actor's next one due at once. An event that keeps failing holds the later ones back
for its first :data:`ORDER_PATIENCE` attempts only (seconds), not for its whole retry
schedule; and one actor's backlog never holds back another actor's events.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import RawSQL
from tortoise.queryset import QuerySet

from fedisora.config import Settings
from fedisora.models import Delivery, OutboxEvent, WorkRow
from fedisora.services import events
from fedisora.services.events import Event
from fedisora.work.engine import Engine, Machine, Outcome, Retry, WorkContext
from fedisora.work.graph import State, StateGraph, exponential

__all__ = ["EFFECTS", "ORDER_PATIENCE", "OUTBOX_GRAPH", "build_machine", "machines"]

log = logging.getLogger("fedisora.outbox")

RETRY_SCHEDULE = exponential(timedelta(seconds=1), 4.0, timedelta(hours=1), timedelta(days=1))
OUTBOX_GRAPH = StateGraph(
    "outbox",
    [
        State(
            "pending",
            to=("done",),
            retry=RETRY_SCHEDULE,
            max_attempts=len(RETRY_SCHEDULE) + 1,
        ),
        State("done", terminal=True),
        State("failed", terminal=True),
    ],
    initial="pending",
    failed="failed",
)

#: The durable effects of an event, as ``"module:function"`` (imported when first used):
#: ``async (event, conn) -> int``, writing their rows in *conn* (the transaction of the
#: event's move to ``done``) and returning how many Delivery rows they wrote. Fixed here,
#: not subscribed at run time: a process that forgot to subscribe one would otherwise
#: mark events done without their deliveries.
EFFECTS: tuple[str, ...] = (
    "fedisora.federation.delivery:on_event",
    "fedisora.federation.cameo_clips:on_event",
)

#: An earlier pending event of the same actor holds a later one back while it has failed
#: fewer times than this.
ORDER_PATIENCE = 3
#: How long a held-back event waits before it looks again (its predecessor, once done,
#: makes it due at once anyway).
ORDER_WAIT = timedelta(milliseconds=200)

Effect = Callable[[Event, BaseDBAsyncClient], Awaitable[int]]
_effects: list[Effect] | None = None


def _loaded_effects() -> list[Effect]:
    global _effects
    if _effects is None:
        loaded: list[Effect] = []
        for spec in EFFECTS:
            module_name, _, name = spec.partition(":")
            loaded.append(getattr(importlib.import_module(module_name), name))
        _effects = loaded
    return _effects


def _holding_back() -> QuerySet[OutboxEvent]:
    """Events that hold their actor's later events back."""
    return OutboxEvent.filter(state=OUTBOX_GRAPH.initial, attempts__lt=ORDER_PATIENCE)


# Whether an earlier event of the row's actor holds it back (see _holding_back), per row of
# the outer query: an index probe on (actor_id, state, id). Only constants are formatted in.
_TABLE = OutboxEvent._meta.db_table
_HELD = (
    f"CASE WHEN EXISTS (SELECT 1 FROM {_TABLE} AS earlier"
    f" WHERE earlier.actor_id = {_TABLE}.actor_id"
    f" AND earlier.state = '{OUTBOX_GRAPH.initial}' AND earlier.attempts < {ORDER_PATIENCE}"
    f" AND earlier.id < {_TABLE}.id) THEN 1 ELSE 0 END"
)


async def _select_due(query: QuerySet[Any], limit: int) -> list[Any]:
    """Of the due rows, the oldest *limit* that no earlier event of their actor holds back:
    one actor's backlog (an account deletion's hundreds of events) takes one row of a claim,
    and the other actors' events are claimed beside it."""
    return list(
        await query.annotate(held=RawSQL(_HELD))
        .filter(held=0)
        .order_by("id")
        .limit(limit)
        .only("id", "actor_id")
    )


async def _process(row: OutboxEvent, ctx: WorkContext) -> Outcome:
    first = (
        await _holding_back().filter(actor_id=row.actor_id, id__lt=row.pk).order_by("id").first()
    )
    if first is not None:
        wait = ORDER_WAIT
        if first.locked_until is not None:  # at work: it will not be done before its lease
            wait = max(wait, first.locked_until - ctx.now())
        elif first.next_attempt_at is not None:
            wait = max(wait, first.next_attempt_at - ctx.now())
        return Retry(f"after event {first.pk} of the same actor", after=wait, counts=False)
    event = Event(row.kind, row.actor_id, dict(row.data))
    made = 0
    async with ctx.transition("done") as conn:
        for effect in _loaded_effects():
            made += await effect(event, conn)
        if made:
            await OutboxEvent.filter(pk=row.pk).using_db(conn).update(deliveries=made)
    if made:
        await _wake_all(ctx.engine, Delivery)
    for listener in events.listeners():
        try:
            await listener(event)
        except Exception:  # streams are best effort; the event's durable effects are done
            log.warning("listener %r failed on %s", listener, event.kind, exc_info=True)
    await _next_due(row, ctx)
    return "done"


async def _wake_all(engine: Engine, model: type[WorkRow]) -> None:
    try:
        machine = engine.machine_for(model)
    except KeyError:  # an engine without that machine (events processed inline): a sweep
        return
    await engine.wake_soon(machine)


async def _next_due(row: OutboxEvent, ctx: WorkContext) -> None:
    """Make the actor's next event due now and wake a runner for it: it may have been held
    back by this one (runners did not claim it, or it waits)."""
    following = (
        await OutboxEvent.filter(actor_id=row.actor_id, state=OUTBOX_GRAPH.initial, id__gt=row.pk)
        .order_by("id")
        .first()
    )
    now = ctx.now()
    if following is None or (following.locked_until is not None and following.locked_until > now):
        return  # none, or a runner has it
    if following.attempts == 0 and (following.next_attempt_at or now) > now:
        updated = await OutboxEvent.filter(
            pk=following.pk, attempts=0, locked_until=None, next_attempt_at__gt=now
        ).update(next_attempt_at=now)
        if updated:
            following.next_attempt_at = now
    await ctx.engine.wake(ctx.machine, following)


def build_machine() -> Machine:
    """The outbox machine. Light: runners claim its rows in batches (:func:`_select_due`
    picks each batch)."""
    return Machine(
        OutboxEvent,
        OUTBOX_GRAPH,
        {"pending": _process},
        select_due=_select_due,
        light=True,
    )


def machines(settings: Settings) -> list[Machine]:
    return [build_machine()]
