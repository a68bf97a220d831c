"""Cancel in every phase, out-of-memory, fair share between users, the progress stream."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from factories import local_account
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedisora.errors import Conflict
from fedisora.models import Account, MediaFile, Notification, NotificationType, RenderJob
from fedisora.work.runner import InProcessRunner
from render.http import render_events
from render.service import cancel_render, render_progress, submit_render

QUICK = {"prompt": "a paper boat", "seconds": 0.25}


def _runner(engine: Any) -> InProcessRunner:
    return InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.05)


async def _wait_for(job_id: int, predicate: Any) -> RenderJob:
    async with asyncio.timeout(20):
        while True:
            job = await RenderJob.get(pk=job_id)
            if predicate(job):
                return job
            await asyncio.sleep(0.02)


async def test_cancel_queued_job_moves_at_once(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    alice = await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=render_engine)
    job = await cancel_render(alice, job, engine=render_engine)
    assert job.state == "cancelled" and job.finished_at is not None
    await _runner(render_engine).drain(10)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "cancelled" and job.gpu_seconds == 0 and job.output_id is None
    with pytest.raises(Conflict, match="already cancelled"):
        await cancel_render(alice, job, engine=render_engine)


async def test_cancel_while_rendering_stops_the_pipeline(
    db: str, render_settings: Any, slow_engine: Any
) -> None:
    alice = await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=slow_engine)
    runner = _runner(slow_engine)
    drain = asyncio.create_task(runner.drain(30))
    job = await _wait_for(job.pk, lambda j: j.state == "rendering" and j.progress_step >= 1)
    assert job.progress_total == 40
    job = await cancel_render(alice, job, engine=slow_engine)
    assert job.state == "rendering" and job.cancel_requested  # a worker holds it: cooperative
    await drain
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "cancelled", job.last_error
    assert "while rendering" in job.last_error
    assert 1 <= job.progress_step < 40  # stopped part way, not after the last step
    assert job.gpu_seconds > 0  # the time it did use counts against the quota
    assert await MediaFile.all().count() == 0
    work = render_settings.media_root / "render-work" / str(job.pk)
    assert not work.exists()


async def test_cancel_ready_job_discards_its_media(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    alice = await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=render_engine)
    await _runner(render_engine).drain(30)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready"
    media = await MediaFile.get(pk=job.output_id)
    video = render_settings.media_root / media.file
    assert video.is_file()
    job = await cancel_render(alice, job, engine=render_engine)
    assert job.state == "cancelled" and job.output_id is None
    assert await MediaFile.all().count() == 0 and not video.exists()


@pytest.mark.parametrize("kind", ["memory", "torch"])
async def test_out_of_memory_fails_that_job_and_the_runner_goes_on(
    db: str, render_settings: Any, make_engine: Any, kind: str
) -> None:
    engine = make_engine()
    alice = await local_account()
    doomed = await submit_render(
        alice, {**QUICK, "prompt": f"oom:{kind}"}, settings=render_settings, engine=engine
    )
    fine = await submit_render(alice, QUICK, settings=render_settings, engine=engine)
    await _runner(engine).drain(60)
    doomed = await RenderJob.get(pk=doomed.pk)
    assert doomed.state == "failed" and doomed.attempts == 0  # not retried: it would OOM again
    assert doomed.last_error.startswith("out of memory while rendering")
    fine = await RenderJob.get(pk=fine.pk)
    assert fine.state == "ready", fine.last_error
    kinds = (
        await Notification.filter(recipient_id=alice.pk)
        .order_by("id")
        .values_list("type", flat=True)
    )
    assert list(kinds) == [NotificationType.RENDER_FAILED, NotificationType.RENDER_FINISHED]


async def test_output_breaking_the_limits_is_never_published(
    db: str, render_settings: Any, make_engine: Any
) -> None:
    engine = make_engine()
    alice = await local_account()
    job = await submit_render(
        alice, {**QUICK, "prompt": "misbehave"}, settings=render_settings, engine=engine
    )
    await _runner(engine).drain(30)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "failed" and job.output_id is None
    assert (
        job.last_error == "output refused: frames: 7 frames; family tiny needs 4k+1 from 5 to 161"
    )
    assert await MediaFile.all().count() == 0
    assert not (render_settings.media_root / "clips").exists()


async def test_one_users_ten_jobs_do_not_starve_anothers(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    settings = replace(render_settings, render_concurrent_jobs=20)
    busy, other = await local_account("busy"), await local_account("other")
    many = [
        await submit_render(busy, QUICK, settings=settings, engine=render_engine) for _ in range(10)
    ]
    single = await submit_render(other, QUICK, settings=settings, engine=render_engine)
    assert (await render_progress(single))["queue_position"] == 2
    assert (await render_progress(many[1]))["queue_position"] == 3
    assert (await render_progress(many[9]))["queue_position"] == 11

    await _runner(render_engine).drain(90)
    jobs = await RenderJob.all().order_by("finished_at", "id")
    assert all(j.state == "ready" for j in jobs)
    order = [j.pk for j in jobs]
    # FIFO would finish it last (11th); fair share runs it right after busy's first job.
    assert order.index(single.pk) == 1, order
    assert order[0] == many[0].pk


async def test_priority_goes_before_fair_share(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    alice, admin = await local_account(), await local_account()
    first = await submit_render(alice, QUICK, settings=render_settings, engine=render_engine)
    urgent = await submit_render(
        admin, QUICK, settings=render_settings, engine=render_engine, priority=10
    )
    assert (await render_progress(urgent))["queue_position"] == 1
    assert (await render_progress(first))["queue_position"] == 2


class _Auth(BaseHTTPMiddleware):
    """Stands in for the API's token check: the account id comes in a header."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if "x-account" in request.headers:
            request.state.account = await Account.get(pk=int(request.headers["x-account"]))
        return await call_next(request)


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and ": " in line)
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_progress_stream_until_ready(db: str, render_settings: Any, make_engine: Any) -> None:
    engine = make_engine(steps=16, step_seconds=0.06)
    app = Starlette(
        routes=[Route("/render/{job_id}/events", render_events)], middleware=[Middleware(_Auth)]
    )
    alice, mallory = await local_account(), await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get(f"/render/{job.pk}/events")).status_code == 401
        other = await client.get(f"/render/{job.pk}/events", headers={"x-account": str(mallory.pk)})
        assert other.status_code == 404
        drain = asyncio.create_task(_runner(engine).drain(30))
        response = await client.get(
            f"/render/{job.pk}/events", headers={"x-account": str(alice.pk)}
        )
        await drain
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[0][1]["state"] == "queued"
    assert events[-1] == ("end", {"id": str(job.pk), "state": "ready"})
    progress = [data for kind, data in events if kind == "progress"]
    assert progress[-1]["state"] == "ready" and progress[-1]["percent"] == 100
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents)
    steps = [p["step"] for p in progress if p["state"] == "rendering"]
    assert steps and 0 < max(steps) <= 16  # intermediate steps were streamed
    assert len({p["state"] for p in progress}) >= 3
