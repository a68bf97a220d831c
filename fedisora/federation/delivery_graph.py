"""The states of a :class:`~fedisora.models.Delivery` row and its retry schedule: what
:mod:`fedisora.federation.delivery` runs, and what any module that writes deliveries (the
likeness revocations of :mod:`fedisora.federation.cameo_clips`) starts them in, without
importing the delivery machine."""

from __future__ import annotations

from datetime import timedelta

from fedisora.work.graph import State, StateGraph, exponential

__all__ = ["DELIVERY_GRAPH", "RETRY_SCHEDULE"]

RETRY_SCHEDULE = exponential(
    timedelta(seconds=30), 2.0, timedelta(hours=6), timedelta(days=2, hours=1)
)
DELIVERY_GRAPH = StateGraph(
    "delivery",
    [
        State(
            "pending",
            to=("delivered",),
            retry=RETRY_SCHEDULE,
            max_attempts=len(RETRY_SCHEDULE) + 1,
        ),
        State("delivered", terminal=True),
        State("failed", terminal=True),
    ],
    initial="pending",
    failed="failed",
)
