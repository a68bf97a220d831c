"""The progress stream through a real uvicorn server on 127.0.0.1 and a real HTTP client.

The ASGI-transport test (test_render_queue_control.py) reads the body once it is complete;
here each event must reach the client over TCP while the job is still rendering, and a
client that hangs up mid-stream must not keep the server from shutting down.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import uvicorn
from factories import local_account
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedisora.models import Account, RenderJob
from fedisora.work.runner import InProcessRunner
from render.http import render_events
from render.service import submit_render


class _Auth(BaseHTTPMiddleware):
    """Stands in for the API's token check: the account id comes in a header."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if "x-account" in request.headers:
            request.state.account = await Account.get(pk=int(request.headers["x-account"]))
        return await call_next(request)


async def _serve(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, int(port)


async def _next_event(lines: Any) -> tuple[str, dict[str, Any]]:
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "event" in fields:
                return fields["event"], json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":") and ": " in line:
            key, value = line.split(": ", 1)
            fields[key] = value
    raise AssertionError("the stream ended without an event")


# Nothing here depends on the backend (both are covered by the flow tests); one keeps
# the suite fast.
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_events_stream_live_under_uvicorn(
    db: str, render_settings: Any, make_engine: Any
) -> None:
    engine = make_engine(steps=16, step_seconds=0.08)
    app = Starlette(
        routes=[Route("/render/{job_id}/events", render_events)], middleware=[Middleware(_Auth)]
    )
    alice = await local_account()
    job = await submit_render(
        alice, {"prompt": "a kite", "seconds": 0.5}, settings=render_settings, engine=engine
    )
    server, serving, port = await _serve(app)
    drain: asyncio.Task[None] | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert (await client.get(f"/render/{job.pk}/events")).status_code == 401
            headers = {"x-account": str(alice.pk)}
            async with client.stream("GET", f"/render/{job.pk}/events", headers=headers) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                assert r.headers["cache-control"] == "no-cache"
                lines = r.aiter_lines()
                # The first event arrives before any work starts: nothing buffers the stream.
                assert await _next_event(lines) == ("progress", await _progress_of(job.pk))
                drain = asyncio.create_task(
                    InProcessRunner(engine, queues=("render",), concurrency=1).drain(60)
                )
                seen: list[dict[str, Any]] = []
                while True:
                    kind, data = await _next_event(lines)
                    if kind == "end":
                        break
                    state = (await RenderJob.get(pk=job.pk)).state
                    seen.append({**data, "row_state_on_arrival": state})
            assert data == {"id": str(job.pk), "state": "ready"}
            live = [s for s in seen if s["state"] == "rendering" and 0 < s["step"] < 16]
            # Intermediate steps reached the client while the row was still rendering (steps
            # finished between two reads of the row come together; on a loaded machine some
            # arrive after it is ready, replayed, but not all of them).
            assert live and any(s["row_state_on_arrival"] != "ready" for s in live)
            assert seen[-1]["state"] == "ready" and seen[-1]["percent"] == 100

            # A client that hangs up mid-stream: the server still shuts down promptly.
            second = await submit_render(
                alice, {"prompt": "a kite", "seconds": 0.5}, settings=render_settings
            )
            async with client.stream("GET", f"/render/{second.pk}/events", headers=headers) as r:
                assert (await _next_event(r.aiter_lines()))[1]["state"] == "queued"
    finally:
        if drain is not None:
            await drain
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def _progress_of(job_id: int) -> dict[str, Any]:
    from render.service import render_progress

    return await render_progress(await RenderJob.get(pk=job_id))
