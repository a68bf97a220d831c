"""A render stage that hangs while its worker lives (a pipeline stuck in the GPU driver, the
heartbeat still renewing its lease) fails after FEDISORA_RENDER_TIMEOUT_SECONDS with that
reason and frees its render slot; the worker, whose pipeline the stuck thread still holds,
gives later jobs back and asks to be restarted. It used to hold the slot for good (24 hours
on arq, when its job timed out; for ever in-process)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
from factories import local_account
from render_spy import HangingPipeline, spy_engine

import render.queue
from fedisora.models import Notification, NotificationType, RenderJob
from fedisora.work import AdvanceResult
from render.queue import stage_timeout
from render.service import submit_render
from render.states import FAILED, QUEUED, READY, RENDERING


async def test_a_hung_render_fails_after_its_bound_and_frees_its_slot(
    db: str, render_settings: Any, tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = replace(render_settings, render_timeout_seconds=2.0, render_slots=1)
    monkeypatch.setattr(render.queue, "STUCK_GRACE", 0.5)
    pipe = HangingPipeline(tiny)
    engine = spy_engine(settings, pipe)
    restarts: list[str] = []
    engine.context["request_restart"] = restarts.append
    alice, bob = await local_account(), await local_account()
    hung = await submit_render(alice, {"prompt": "hangs", "seconds": 0.25}, settings=settings)
    after = await submit_render(bob, {"prompt": "waits", "seconds": 0.25}, settings=settings)
    try:
        assert await engine.advance("render_jobs", hung.pk) == AdvanceResult.MOVED
        assert await engine.advance("render_jobs", after.pk) == AdvanceResult.RETRY  # no slot
        started = time.monotonic()
        # (Bounded here too: without the stage's bound it never returned.)
        moved = await asyncio.wait_for(engine.advance("render_jobs", hung.pk), 30)
        assert moved == AdvanceResult.MOVED
        took = time.monotonic() - started
        assert pipe.hung.is_set() and 2.0 <= took < 2.0 + 0.5 + 5, took
        failed = await RenderJob.get(pk=hung.pk)
        assert failed.state == FAILED and failed.finished_at is not None
        assert failed.last_error == (
            "rendering did not finish within 2 s (FEDISORA_RENDER_TIMEOUT_SECONDS): the render "
            "pipeline may be stuck"
        )
        [note] = await Notification.filter(render_job_id=hung.pk)
        assert note.type == NotificationType.RENDER_FAILED
        assert restarts == ["1 thread(s) of a render stage that timed out still run"]

        # The slot is free: the next job is admitted, and due at once (woken).
        waiting = await RenderJob.get(pk=after.pk)
        assert waiting.state == QUEUED and waiting.next_attempt_at <= engine.clock()
        assert await engine.advance("render_jobs", after.pk) == AdvanceResult.MOVED
        assert (await RenderJob.get(pk=after.pk)).state == RENDERING
        # ... but not rendered by this worker while the stuck thread holds its pipeline:
        # given back (no attempt counted) for another worker, or this one started again.
        assert await engine.advance("render_jobs", after.pk) == AdvanceResult.RETRY
        given = await RenderJob.get(pk=after.pk)
        assert given.state == RENDERING and given.attempts == 0 and given.lock_token is None
        assert "render pipeline is stuck" in given.last_error
        assert restarts[-1] == "a render stage that timed out is still running"
    finally:
        pipe.release.set()  # the driver gives up: the stuck thread ends

    # A worker whose pipeline works again (here: the thread ended) renders it.
    for _ in range(50):
        if not render.queue._stuck():
            break
        await asyncio.sleep(0.1)
    await RenderJob.filter(pk=after.pk).update(next_attempt_at=engine.clock())
    # Its stages now get a generous bound: the real rendering and encoding of a loaded
    # machine can take more than the 2 s the hung stage was given.
    engine = spy_engine(replace(settings, render_timeout_seconds=120.0), pipe)
    for _ in range(5):
        if (await RenderJob.get(pk=after.pk)).state == READY:
            break
        await engine.advance("render_jobs", after.pk)
    done = await RenderJob.get(pk=after.pk)
    assert done.state == READY, done.last_error


def test_the_default_bound_is_generous_for_the_clip_limit_and_the_model(
    render_settings: Any,
) -> None:
    real = replace(render_settings, render_model="/models/wan2.1-1.3b")
    assert stage_timeout(real) == 3600.0  # 10 s clips: an hour a stage
    assert stage_timeout(replace(real, max_clip_seconds=1.0)) == 600.0
    assert stage_timeout(render_settings) == 600.0  # tiny
    assert stage_timeout(replace(real, render_timeout_seconds=90.0)) == 90.0
