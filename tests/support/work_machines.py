"""A test state machine on the InboxItem table, used in-process and by crash_runner.py.

Graph: received -> processing -> done | failed. The "processing" handler writes its effect
(a Tag row named after the item) in the same transaction as the move to "done", after an
optional sleep taken from the payload: a runner killed during that sleep commits nothing.
Payload ``pause`` (seconds) waits before any database work (a request to a peer, say);
payload ``note`` moves to "done" with that note in ``last_error`` and no Tag, in one
fenced UPDATE (:meth:`WorkContext.move`); payload ``die`` SIGKILLs the process running
the step (a poison row: the OOM killer, a crash in a C library). :data:`IN_FLIGHT` counts
the "processing" steps running now and the most at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from typing import Any

from fedisora.models import InboxItem, Tag
from fedisora.work import Machine, Retry, State, StateGraph, WorkContext

IN_FLIGHT = {"now": 0, "peak": 0}

GRAPH = StateGraph(
    name="test_items",
    states=[
        State("received", to=("processing",), retry=(timedelta(seconds=0),)),
        State(
            "processing",
            to=("done",),
            retry=(timedelta(milliseconds=300), timedelta(milliseconds=400)),
            max_attempts=3,
        ),
        State("done", terminal=True),
        State("failed", terminal=True),
    ],
    initial="received",
    failed="failed",
)


async def on_received(row: InboxItem, ctx: WorkContext) -> str:
    return "processing"


async def on_processing(row: InboxItem, ctx: WorkContext) -> str | Retry | None:
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    try:
        return await _processing(row, ctx)
    finally:
        IN_FLIGHT["now"] -= 1


async def _processing(row: InboxItem, ctx: WorkContext) -> str | Retry | None:
    payload: dict[str, Any] = row.payload
    if payload.get("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.sleep(float(payload.get("pause", 0)))
    if payload.get("note"):
        await ctx.move("done", last_error=payload["note"])
        return "done"
    if payload.get("fail_times", 0) > row.attempts:
        raise RuntimeError(f"planned failure {row.attempts + 1}")
    if payload.get("wait"):
        return Retry("not yet", after=timedelta(seconds=0))
    async with ctx.transition("done") as conn:
        await Tag.create(name=f"effect-{row.activity_id}"[:100], using_db=conn)
        await asyncio.sleep(float(payload.get("sleep", 0)))
    return "done"


def machine(**options: Any) -> Machine:
    return Machine(
        model=InboxItem,
        graph=GRAPH,
        handlers={"received": on_received, "processing": on_processing},
        **options,
    )
