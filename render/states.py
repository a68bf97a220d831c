"""The RenderJob state graph (pure: no database, no torch).

    queued -> rendering -> encoding -> signing -> ready -> published
    every live state -> cancelled; every live state may fail (-> failed)

``ready`` waits for the user (publish or discard), so no sweep picks it up. ``encoding``
may go back to ``rendering`` and ``signing`` back to ``encoding`` when the intermediate
file they start from is gone (a wiped work directory): the earlier stage is deterministic
from the seed, so redoing it is always safe.
"""

from __future__ import annotations

from datetime import timedelta

from fedisora.work.graph import State, StateGraph, exponential

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "ENCODING",
    "FAILED",
    "GRAPH",
    "OVER",
    "PUBLISHED",
    "QUEUED",
    "READY",
    "RENDERING",
    "SIGNING",
]

QUEUED = "queued"
RENDERING = "rendering"
ENCODING = "encoding"
SIGNING = "signing"
READY = "ready"
PUBLISHED = "published"
FAILED = "failed"
CANCELLED = "cancelled"

ACTIVE = (RENDERING, ENCODING, SIGNING)
"""States in which a job is in flight (holds or is about to hold a worker)."""
OVER = (READY, PUBLISHED, FAILED, CANCELLED)
"""States after which nothing renders any more (a progress stream ends here)."""

_STAGE_RETRY = exponential(timedelta(seconds=15), 2.0, timedelta(minutes=10), timedelta(minutes=30))

GRAPH = StateGraph(
    name="render_jobs",
    initial=QUEUED,
    failed=FAILED,
    states=[
        State(QUEUED, to=(RENDERING, CANCELLED), retry=(timedelta(seconds=5),)),
        # A render that fails or crashes its worker twice is not tried a third time: each
        # try costs minutes of GPU, and a render that took its worker down twice (the
        # host's OOM killer) would a third time. A takeover of a lease that ran out under
        # a worker that had started the job counts as an attempt (Engine.claim); a job
        # given back by a worker that stopped does not.
        State(
            RENDERING,
            to=(ENCODING, CANCELLED),
            retry=_STAGE_RETRY,
            max_attempts=2,
            timeout=timedelta(hours=2),
        ),
        State(
            ENCODING,
            to=(SIGNING, RENDERING, CANCELLED),
            retry=_STAGE_RETRY,
            max_attempts=4,
            timeout=timedelta(hours=1),
        ),
        State(
            SIGNING,
            to=(READY, ENCODING, CANCELLED),
            retry=_STAGE_RETRY,
            max_attempts=4,
            timeout=timedelta(hours=1),
        ),
        State(READY, to=(PUBLISHED, CANCELLED), automatic=False),
        State(PUBLISHED, terminal=True),
        State(FAILED, terminal=True),
        State(CANCELLED, terminal=True),
    ],
)
