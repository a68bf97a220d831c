"""Render progress moves one denoising step at a time: the worker writes every step to the
job's row as diffusers' ``callback_on_step_end`` reports it, and the progress stream sends
one event per step."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from factories import local_account
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedisora.models import Account, RenderJob
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.http import render_events
from render.queue import build_render_machine
from render.service import submit_render

STEPS = 6
QUICK = {"prompt": "a paper boat", "seconds": 0.25}


class RowReadingPipeline:
    """The real tiny pipeline; after each step's callback it reads the job's row back, as a
    progress poll would at that moment."""

    def __init__(self, inner: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.inner, self.loop = inner, loop
        self.family, self.model = inner.family, inner.model
        self.seen: list[tuple[int, int, int]] = []

    def supports(self, spec: Any) -> bool:
        return bool(self.inner.supports(spec))

    def generate(self, plan: Any, spec: Any, on_step: Any = None) -> Any:
        def step(done: int, total: int) -> None:
            on_step(done, total)

            async def read() -> int:
                job = await RenderJob.all().first()
                assert job is not None
                return job.progress_step

            row_step = asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)
            self.seen.append((done, total, row_step))

        return self.inner.generate(plan, spec, step)


def _engine(settings: Any, pipe: Any) -> Engine:
    async def load(_settings: Any) -> Any:
        return pipe

    return Engine(
        [build_render_machine(settings, load=load)],
        lease=timedelta(seconds=30),
        context={"settings": settings},
    )


def _runner(engine: Engine) -> InProcessRunner:
    return InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.05)


async def test_every_denoising_step_is_written_to_the_row(
    db: str, render_settings: Any, tiny: Any
) -> None:
    from dataclasses import replace

    settings = replace(render_settings, render_steps=STEPS)
    pipe = RowReadingPipeline(tiny, asyncio.get_running_loop())
    engine = _engine(settings, pipe)
    job = await submit_render(await local_account(), QUICK, settings=settings, engine=engine)
    await _runner(engine).drain(60)
    assert (await RenderJob.get(pk=job.pk)).state == "ready"
    # Each step is on the row before the next one starts: no step is skipped or batched.
    assert pipe.seen == [(step, STEPS, step) for step in range(1, STEPS + 1)]


class _Auth(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request.state.account = await Account.get(pk=int(request.headers["x-account"]))
        return await call_next(request)


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_the_progress_stream_sends_one_event_per_step(
    db: str, render_settings: Any, make_engine: Any
) -> None:
    # The tiny model's steps take a few milliseconds, far less than the stream's poll: the
    # stream still reports each of them, in order, once.
    engine = make_engine(steps=STEPS)
    app = Starlette(
        routes=[Route("/render/{job_id}/events", render_events)], middleware=[Middleware(_Auth)]
    )
    alice = await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        # The stream is open and has read the queued job before the render starts (on a
        # loaded machine a render started first could be over before the stream's first read).
        streaming = asyncio.create_task(
            client.get(f"/render/{job.pk}/events", headers={"x-account": str(alice.pk)})
        )
        await asyncio.sleep(1.5)
        drain = asyncio.create_task(_runner(engine).drain(60))
        response = await streaming
        await drain
    progress = [data for kind, data in _events(response.text) if kind == "progress"]
    rendering = [p for p in progress if p["state"] == "rendering" and p["step"] > 0]
    assert [p["step"] for p in rendering] == list(range(1, STEPS + 1))
    assert [p["percent"] for p in rendering] == [90 * s // STEPS for s in range(1, STEPS + 1)]
    assert all(p["total"] == STEPS and not p["done"] and not p["error"] for p in rendering)
    assert progress[-1]["state"] == "ready" and progress[-1]["percent"] == 100
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents)
