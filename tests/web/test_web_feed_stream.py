"""The feed's "N new clips" as server-sent events (``/feed/stream``, web/feed.py): the real
app served by uvicorn on loopback with its lifespan (the in-process streaming hub, and the
embedded runner processing the outbox as without Redis), clips posted through the services
while the stream is open."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from factories import local_account, rendered_video
from starlette.applications import Starlette
from webhelpers import DOMAIN, browser, logged_in

from fedisora.app import create_app
from fedisora.config import Settings
from fedisora.models import Account, Clip
from fedisora.services import follows, posts
from fedisora.streaming.hub import Hub
from web import feed
from web.sessions import SESSION_COOKIE

WAIT = 15.0


async def clip(author: Account, caption: str = "", **kwargs: Any) -> Clip:
    return await posts.post_clip(author, await rendered_video(author), caption=caption, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, app: Starlette, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.streaming.hub
        return hub


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """The app served on a loopback port, its lifespan run (streaming hub, work runner)."""
    app = create_app(settings, run_work=True, manage_db=False)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                assert not task.done(), "the server stopped"
                await asyncio.sleep(0.05)
        yield Served(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture(autouse=True)
def quick_recounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts 0.25 s apart at least, not 3 s: these tests wait for each count."""
    monkeypatch.setattr(feed, "RECOUNT_EVERY", 0.25)


class Events:
    """The server-sent events of one open response, read as they come (by a task of its
    own, so that a wait given up never cuts the response's lines)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event, data = "", []
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(("retry:", ":")):
                    continue
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data:"):
                    data.append(line[len("data:") :].removeprefix(" "))
                elif line == "" and event:
                    await self.events.put((event, "\n".join(data)))
                    event, data = "", []
        finally:
            await self.events.put(None)

    async def next(self) -> tuple[str, str]:
        got = await asyncio.wait_for(self.events.get(), WAIT)
        assert got is not None, "the stream ended"
        return got

    async def quiet(self, seconds: float) -> None:
        """No event for *seconds* (and the stream still open)."""
        try:
            got = await asyncio.wait_for(self.events.get(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {got or 'end of the stream'}")

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self.reader


@asynccontextmanager
async def stream(served: Served, query: str, cookie: str | None = None) -> AsyncIterator[Events]:
    headers = {"accept": "text/event-stream", "host": DOMAIN}
    if cookie:
        headers["cookie"] = f"{SESSION_COOKIE}={cookie}"
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(30, read=60)) as http,
        http.stream("GET", f"/feed/stream?{query}", headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        events = Events(response)
        try:
            yield events
        finally:
            await events.close()


async def session_of(served: Served, login: str) -> str:
    """The session cookie of *login*, logged in on the login form (as a browser does)."""
    async with logged_in(httpx.ASGITransport(app=served.app), login) as http:
        token = http.cookies.get(SESSION_COOKIE)
    assert token
    return token


async def hub_holds(served: Served, n: int) -> None:
    """Wait until the hub holds *n* open streams (opened, or closed once the client left)."""
    for _ in range(int(WAIT / 0.05)):
        if served.hub.connections == n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the hub holds {served.hub.connections} streams, not {n}")


async def test_a_new_public_clip_is_streamed_as_one_new(served: Served) -> None:
    ann = await local_account("ann")
    first = await clip(ann, "already there")
    async with stream(served, f"tab=local&since_id={first.pk}") as events:
        await hub_holds(served, 1)  # subscribed
        await clip(ann, "fresh")
        kind, data = await events.next()
        assert kind == "new"
        assert "1 new clip<" in data and 'href="/explore?tab=local"' in data
        await clip(ann, "fresher")
        assert "2 new clips<" in (await events.next())[1]
        # the poll's fragment is the same
        async with browser(httpx.ASGITransport(app=served.app)) as anon:
            polled = await anon.get(f"/feed/new?tab=local&since_id={first.pk}")
        assert polled.text == await feed.new_notice(None, "local", first.pk)
    # The browser went away: the stream is gone from the hub.
    await hub_holds(served, 0)

    # Opened after clips arrived: their count at once.
    async with stream(served, f"tab=federated&since_id={first.pk}") as events:
        kind, data = await events.next()
        assert kind == "new" and "2 new clips<" in data
        assert 'href="/explore?tab=federated"' in data
    await hub_holds(served, 0)


async def test_a_burst_of_clips_is_counted_at_most_once_a_recount_interval(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each count is a page's queries: a stream counts again at most every
    ``RECOUNT_EVERY`` seconds however many clips arrive meanwhile, and the count it then
    shows takes in all of them."""
    monkeypatch.setattr(feed, "RECOUNT_EVERY", 1.0)
    counts: list[float] = []
    count = feed.new_notice

    async def counted(*args: Any) -> str:
        counts.append(time.monotonic())
        return await count(*args)

    monkeypatch.setattr(feed, "new_notice", counted)
    ann = await local_account("ann")
    first = await clip(ann, "already there")
    async with stream(served, f"tab=local&since_id={first.pk}") as events:
        await hub_holds(served, 1)
        opened = time.monotonic()
        for n in range(8):
            await clip(ann, f"burst {n}")
        while "8 new clips<" not in (await events.next())[1]:
            pass
        took = time.monotonic() - opened
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(counts)), counts
    # The first count when the stream opened, then one a second at most (unthrottled, each
    # clip's message would be counted on its own: nine counts).
    assert len(counts) <= 2 + took, (counts, took)
    assert len(counts) < 9


async def test_clips_the_viewer_may_not_see_do_not_count(served: Served) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    cy = await local_account("cy")
    dee = await local_account("dee")
    since = (await clip(bob, "the newest on the page")).pk
    await follows.block(ann, cy)
    await follows.follow(ann, bob)
    token = await session_of(served, "ann")
    for tab in ("local", "following", "foryou"):
        async with stream(served, f"tab={tab}&since_id={since}", token) as events:
            await hub_holds(served, 1)
            await clip(cy, "a blocked author's public clip")
            await clip(dee, "followers only, and ann does not follow dee", visibility="private")
            await events.quiet(1.5)
            since = (await clip(bob, f"bob on {tab}")).pk
            kind, data = await events.next()
            assert kind == "new" and "1 new clip<" in data, (tab, data)
            assert f'href="/?tab={tab}"' in data
        await hub_holds(served, 0)

    # A visitor's stream: the public clips alone (blocks are ann's, not theirs).
    async with stream(served, f"tab=local&since_id={since}") as events:
        await hub_holds(served, 1)
        await clip(dee, "followers only again", visibility="private")
        await events.quiet(1.5)
        await clip(cy, "public")
        assert "1 new clip<" in (await events.next())[1]


async def test_refusals_and_nothing_to_stream(served: Served, web: httpx.ASGITransport) -> None:
    async with browser(httpx.ASGITransport(app=served.app)) as anon:
        r = await anon.get("/feed/stream?tab=nonsense&since_id=1")
        assert r.status_code == 404 and "no feed tab" in r.text
        r = await anon.get("/feed/stream?tab=local&since_id=nope")
        assert r.status_code == 400
        # Trending is one ranked page: nothing ever new, nothing to stream (EventSource stops)
        r = await anon.get("/feed/stream?tab=trending&since_id=1")
        assert r.status_code == 204
    # An app whose lifespan has not run has no hub: 204, and the page polls instead.
    async with browser(web) as anon:
        r = await anon.get("/feed/stream?tab=local&since_id=1")
        assert r.status_code == 204


async def test_streams_per_session_are_limited(served: Served) -> None:
    await local_account("ann")
    token = await session_of(served, "ann")
    async with browser(httpx.ASGITransport(app=served.app)) as http:
        http.cookies.set(SESSION_COOKIE, token, domain=DOMAIN)
        page = await http.get("/?tab=local")
        assert 'data-stream="/feed/stream?tab=local&amp;since_id=0"' in page.text
        assert 'data-poll="/feed/new?tab=local&amp;since_id=0"' in page.text
    async with (
        stream(served, "tab=local&since_id=0", token),
        stream(served, "tab=local&since_id=0", token),
        stream(served, "tab=following&since_id=0", token),
        stream(served, "tab=federated&since_id=0", token),
    ):
        await hub_holds(served, feed.STREAMS_PER_SESSION)
        async with httpx.AsyncClient(base_url=served.url) as http:
            r = await http.get(
                "/feed/stream?tab=local&since_id=0",
                headers={"cookie": f"{SESSION_COOKIE}={token}", "host": DOMAIN},
            )
            assert r.status_code == 429 and "Too many open streams" in r.text
        # a visitor from the same address is not that session
        async with stream(served, "tab=local&since_id=0"):
            await hub_holds(served, feed.STREAMS_PER_SESSION + 1)
    await hub_holds(served, 0)
    assert feed._session_streams == {}
