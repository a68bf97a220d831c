"""A server-sent event stream of one render job's progress.

``GET .../render_jobs/{job_id}/events`` (the API mounts it) sends an ``event: progress``
whenever the job's progress changes (polling the row every 0.5 s, so it works with any
number of web processes and workers and needs no broker), a comment line every 15 s so
proxies keep the connection open, and a final ``event: end`` once rendering is over
(ready, published, failed or cancelled). Only the job's owner may watch: the API's
authentication puts the account in ``request.state.account``; without it the answer is 401.
The web's render page (:mod:`web.create`) streams the same events through
:func:`progress_stream` for the session's account, each with a ``label`` for people.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fedisora.models import RenderJob
from render.service import render_progress
from render.states import OVER, QUEUED, RENDERING

__all__ = ["POLL_SECONDS", "progress_stream", "render_events"]

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


def _event(kind: str, data: dict[str, Any], event_id: int) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _steps_between(last: dict[str, Any] | None, now: dict[str, Any]) -> list[dict[str, Any]]:
    """The progress events from *last* to *now*: one per denoising step that finished since
    *last*, then *now* itself.

    The worker writes each step to the job's row as it finishes (``render.queue``); a fast
    model (the tiny one, a distilled one) finishes several between two reads of the row, and
    each of them is still reported, in order, rather than the bar jumping from 0 to 90 %.
    Steps are counted from the row: a step is reported only once the row says it finished.
    """
    total = int(now.get("total") or 0)
    rendered = now["state"] == RENDERING or (now["step"] == total and total > 0)
    if (
        last is None
        or last["state"] not in (QUEUED, RENDERING)
        # (before its first step a job's total may still be the plan's: no step is done yet)
        or (int(last["step"]) > 0 and last.get("total") != total)
        or not total
        or not rendered
    ):
        return [now]
    first = int(last["step"]) + 1 if last["state"] == RENDERING else 1
    end = int(now["step"]) if now["state"] == RENDERING else total + 1
    step_event = {**now, "state": RENDERING, "error": "", "media_id": None, "done": False}
    missed = [
        {**step_event, "step": step, "percent": 90 * step // total} for step in range(first, end)
    ]
    return [*missed, now]


Describe = Callable[[dict[str, Any]], dict[str, Any]]
"""Adds fields to a progress event (the web page's label) from the progress itself."""


async def _stream(job_id: int, poll: float, describe: Describe | None = None) -> AsyncIterator[str]:
    last: dict[str, Any] | None = None
    sent_at = time.monotonic()
    count = 0
    yield "retry: 2000\n\n"
    while True:
        job = await RenderJob.get_or_none(pk=job_id)
        if job is None:
            count += 1
            yield _event("end", {"id": str(job_id), "state": "deleted"}, count)
            return
        progress = await render_progress(job)
        if progress != last:
            for step in _steps_between(last, progress):
                count += 1
                shown = step if describe is None else {**step, **describe(step)}
                yield _event("progress", shown, count)
            last, sent_at = progress, time.monotonic()
        elif time.monotonic() - sent_at >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            sent_at = time.monotonic()
        if job.state in OVER:
            count += 1
            yield _event("end", {"id": str(job_id), "state": job.state}, count)
            return
        await asyncio.sleep(poll)


async def render_events(request: Request) -> Response:
    """Starlette endpoint: stream progress events for ``path_params["job_id"]``."""
    account = getattr(request.state, "account", None)
    if account is None:
        return JSONResponse({"error": "The access token is invalid"}, status_code=401)
    try:
        job_id = int(request.path_params["job_id"])
    except (KeyError, TypeError, ValueError):
        return JSONResponse({"error": "Record not found"}, status_code=404)
    job = await RenderJob.get_or_none(pk=job_id)
    if job is None or job.account_id != account.pk:
        return JSONResponse({"error": "Record not found"}, status_code=404)
    return progress_stream(job_id)


def progress_stream(job_id: int, *, describe: Describe | None = None) -> StreamingResponse:
    """The event stream of render job *job_id* (its owner checked by the caller); *describe*
    adds fields to each progress event."""
    return StreamingResponse(
        _stream(job_id, POLL_SECONDS, describe),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
