"""The InboxItem machine: verified activities, processed after the 202.

``received`` -> ``processed`` (it had an effect), ``ignored`` (nothing to do: an unknown
type, an object we do not show, a reference to something we never had; the reason is kept
in ``last_error``), or ``failed`` after repeated transient errors (a peer that did not
answer a fetch).
"""

from __future__ import annotations

from datetime import timedelta

from fedisora.config import Settings
from fedisora.federation.context import get_federation
from fedisora.federation.ingest import Ignored, handle_activity
from fedisora.models import InboxItem
from fedisora.work.engine import Machine, Outcome, WorkContext
from fedisora.work.graph import State, StateGraph, exponential

__all__ = ["INBOX_GRAPH", "machines"]

INBOX_GRAPH = StateGraph(
    "inbox",
    [
        State(
            "received",
            to=("processed", "ignored"),
            retry=exponential(timedelta(seconds=10), 3.0, timedelta(hours=1), timedelta(hours=6)),
            max_attempts=8,
        ),
        State("processed", terminal=True),
        State("ignored", terminal=True),
        State("failed", terminal=True),
    ],
    initial="received",
    failed="failed",
)


async def _process(row: InboxItem, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    fed = get_federation(settings)
    try:
        # Processing may fetch actors and objects from peers (each request up to the
        # client's total timeout): the lease is renewed meanwhile, so a live worker keeps
        # its item however short the lease (no second fetch, no second processing).
        async with ctx.keep_lease():
            await handle_activity(fed, row.payload)
    except Ignored as exc:
        await ctx.move("ignored", last_error=str(exc)[:1000])  # one fenced UPDATE
        return "ignored"
    return "processed"


def machines(settings: Settings) -> list[Machine]:
    return [Machine(InboxItem, INBOX_GRAPH, {"received": _process})]
