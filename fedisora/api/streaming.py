"""Mastodon's streaming API: a WebSocket at ``/api/v1/streaming`` and server-sent events.

- WebSocket: ``/api/v1/streaming?stream=public&access_token=...`` (the token may also come as
  the ``Authorization`` header or the ``Sec-WebSocket-Protocol`` header, as browsers send it).
  Clients send ``{"type": "subscribe"|"unsubscribe", "stream": ..., "tag": ...}`` to change
  their streams; each message out is ``{"stream": [...], "event": ..., "payload": "<string>"}``.
  Keep-alive is the WebSocket ping the server sends.
- Server-sent events: ``/api/v1/streaming/user``, ``/user/notification``, ``/public``,
  ``/public/local``, ``/public/remote`` (``?only_media=true`` for the ``:media`` forms),
  ``/hashtag?tag=``, ``/hashtag/local?tag=``, and ``/api/v1/streaming?stream=...``. The
  response opens with a ``:)`` comment once subscribed, and sends ``:thump`` every
  :data:`HEARTBEAT` seconds.

Authentication as on the REST API (bearer header or ``access_token``); failures answer 401 with
``{"error": ...}`` (Mastodon's streaming server uses 401 for a missing scope too), an unknown
stream 400, a stream over the limits per address or per token 429. Public and hashtag streams
need no token; a token given must be able to read statuses. A stream ends when its token
does (revoked, expired, its account suspended or disabled...): the event stream's response
ends, the WebSocket closes with code 1008, within seconds. See
:mod:`fedisora.streaming.channels` for what each stream carries and
:mod:`fedisora.streaming.hub` for the limits and the token checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import cast

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from fedisora.api.http import client_ip, load_token, with_cors
from fedisora.boundary import MAX_CLIENT_DEPTH, InputRefused, parse_json
from fedisora.config import Settings
from fedisora.errors import FedisoraError
from fedisora.streaming.channels import Stream, Viewer, parse_stream
from fedisora.streaming.hub import TOKEN_ENDED, Connection, Hub, Limits

__all__ = ["HEARTBEAT", "NotRunning", "guard", "open_event_stream", "routes", "sse_lines"]

log = logging.getLogger("fedisora.streaming")

HEARTBEAT = 15.0  # seconds between ``:thump`` comments, as Mastodon's streaming server
BASE = "/api/v1/streaming"
MAX_MESSAGE = 4096  # characters in a client's (un)subscribe message
Chunk = str | bytes | memoryview


class NotRunning(FedisoraError):
    """This process has no streaming hub (an app whose lifespan has not run)."""

    status = 503


def _token_from(conn: HTTPConnection) -> tuple[str | None, str | None]:
    """The raw token and, when it came as ``Sec-WebSocket-Protocol``, that subprotocol."""
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    raw = conn.query_params.get("access_token")
    if raw:
        return raw, None
    protocol = conn.headers.get("sec-websocket-protocol", "").split(",")[0].strip()
    return (protocol, protocol) if protocol else (None, None)


async def _viewer(conn: HTTPConnection) -> tuple[Viewer, int | None, str | None]:
    """The viewer, their token's id and the subprotocol the token came as."""
    raw, protocol = _token_from(conn)
    if raw is None:
        return Viewer(None), None, None
    token, account, _user = await load_token(raw)
    return Viewer(account, tuple(token.scopes.split())), token.pk, protocol


def _hub(conn: HTTPConnection) -> Hub:
    service = getattr(conn.app.state, "streaming", None)
    if service is None:
        raise NotRunning("Streaming is not running on this process")
    hub: Hub = service.hub
    return hub


def _open(
    conn: HTTPConnection, viewer: Viewer, streams: list[Stream], token_id: int | None
) -> tuple[Hub, Connection]:
    """Register the stream with the hub, within the limits per address and per token."""
    hub = _hub(conn)
    settings: Settings = conn.app.state.settings
    limits = Limits(settings.streams_per_ip, settings.streams_per_token)
    # client_ip reads only what requests and WebSockets share (the peer and the headers).
    ip = client_ip(cast(Request, conn))
    return hub, hub.open(viewer, streams, token_id=token_id, ip=ip, limits=limits)


async def sse_lines(conn: Connection, heartbeat: float = HEARTBEAT) -> AsyncGenerator[str, None]:
    """The text of a server-sent event stream: ``:)``, then messages and ``:thump`` lines,
    until the hub closes the connection."""
    yield ":)\n\n"
    while True:
        batch = await conn.receive(heartbeat)
        if batch is None:
            return
        yield "".join(m.sse_text() for m in batch) if batch else ":thump\n\n"


class _EventStream(StreamingResponse):
    """The event-stream response; the stream is closed in the hub however the response ends
    (even when it never started), and *on_close* called then."""

    def __init__(
        self,
        hub: Hub,
        conn: Connection,
        content: AsyncIterable[Chunk] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            sse_lines(conn) if content is None else content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.hub, self.conn, self.on_close = hub, conn, on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.close(self.conn)
            if self.on_close is not None:
                self.on_close()


def open_event_stream(
    request: Request,
    viewer: Viewer,
    streams: list[Stream],
    content: Callable[[Connection], AsyncIterable[Chunk]],
    *,
    on_close: Callable[[], None] | None = None,
) -> StreamingResponse:
    """An event stream of this process's hub for another kind of client (the web feed's
    browser session, :mod:`web.feed`): *viewer* subscribed to *streams* (from
    :func:`~fedisora.streaming.channels.parse_stream`, so the same rules), within the limit
    per address (:class:`TooManyStreams`; no token, so no limit per token); *content* makes
    the response's text from the connection's messages. The connection is closed in the hub
    however the response ends, and *on_close* called then. :class:`NotRunning` without a hub.
    """
    hub, conn = _open(request, viewer, streams, None)
    return _EventStream(hub, conn, content(conn), on_close)


def guard(
    request: Request, viewer: Viewer, token_id: int | None, response: StreamingResponse
) -> Response:
    """Hold another endpoint's event stream (a render's progress) to the rules of these
    streams: it counts against the limits per address and per token (:class:`TooManyStreams`
    when over) and ends when its token does. Without a running hub (an app whose lifespan
    has not run) the response is returned as it is."""
    if getattr(request.app.state, "streaming", None) is None:
        return response
    hub, conn = _open(request, viewer, [], token_id)
    guarded = _EventStream(hub, conn, _until_ended(conn, response.body_iterator))
    for name in ("cache-control", "x-accel-buffering"):
        if name in response.headers:
            guarded.headers[name] = response.headers[name]
    return guarded


async def _until_ended(
    conn: Connection, content: AsyncIterable[Chunk]
) -> AsyncGenerator[Chunk, None]:
    """*content* until it ends or the hub ends *conn*, whichever comes first."""
    chunks = aiter(content)
    ended = asyncio.ensure_future(conn.ended())
    try:
        while True:
            step = asyncio.ensure_future(anext(chunks))
            await asyncio.wait({step, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                return
            try:
                chunk = step.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        ended.cancel()
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()


def _sse_stream_name(request: Request) -> str | None:
    path = request.url.path.rstrip("/")
    name = request.query_params.get("stream")
    if path != BASE:
        name = path[len(BASE) + 1 :].replace("/", ":")
    if name and name.startswith("public") and _flag(request.query_params.get("only_media")):
        name = f"{name}:media"
    return name


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "on", "yes", "t")


async def event_stream(request: Request) -> Response:
    """Server-sent events for one stream."""
    try:
        viewer, token_id, _ = await _viewer(request)
        stream = parse_stream(viewer, _sse_stream_name(request), request.query_params.get("tag"))
        hub, conn = _open(request, viewer, [stream], token_id)
    except FedisoraError as exc:
        return with_cors(JSONResponse({"error": exc.message}, exc.status))
    return with_cors(_EventStream(hub, conn))


async def health(request: Request) -> Response:
    return with_cors(PlainTextResponse("OK"))


class _Socket:
    """One WebSocket connection: its hub connection, and a lock so sends never interleave."""

    def __init__(self, ws: WebSocket, conn: Connection) -> None:
        self.ws = ws
        self.conn = conn
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self._lock:
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client went first
            async with self._lock:
                if self.ws.application_state == WebSocketState.CONNECTED:
                    await self.ws.close(code=code, reason=reason[:120])

    async def handle(self, text: str) -> None:
        """A client message: subscribe or unsubscribe; errors are sent back, never fatal."""
        if len(text) > MAX_MESSAGE:
            return await self.error("Message too long", 400)
        try:
            body = parse_json(text, max_depth=MAX_CLIENT_DEPTH)  # the one JSON reader
        except InputRefused:
            return await self.error("Invalid JSON message", 400)
        if not isinstance(body, dict):
            return await self.error("Invalid JSON message", 400)
        kind, name, tag = body.get("type"), body.get("stream"), body.get("tag")
        if kind not in ("subscribe", "unsubscribe") or not isinstance(name, str):
            return await self.error("Unknown message type", 400)
        tag = tag if isinstance(tag, str) else None
        try:
            stream = parse_stream(self.conn.viewer, name, tag)
            if kind == "subscribe":
                self.conn.subscribe(stream)
            else:
                self.conn.unsubscribe(stream)
        except FedisoraError as exc:  # a refused stream, or too many subscriptions
            return await self.error(exc.message, exc.status)
        return None

    async def error(self, message: str, status: int) -> None:
        await self.send(json.dumps({"error": message, "status": status}))

    async def read(self) -> None:
        """Handle the client's messages until it goes away (text frames; binary ones too if
        they are UTF-8, as some clients send them)."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                try:
                    text = (message.get("bytes") or b"").decode()
                except UnicodeDecodeError:
                    await self.error("Invalid JSON message", 400)
                    continue
            await self.handle(text)

    async def pump(self) -> None:
        """Send what the hub hands the connection until the hub closes it."""
        while (batch := await self.conn.receive(HEARTBEAT)) is not None:
            for message in batch:
                await self.send(message.websocket_text())


async def _deny(ws: WebSocket, status: int, message: str) -> None:
    """Refuse the upgrade with an HTTP status where the server supports it, as Mastodon does."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"error": message}, status))
    else:
        code = {401: 1008, 403: 1008, 429: 1013}.get(status, 1003)
        await ws.close(code=code, reason=message[:120])


async def websocket(ws: WebSocket) -> None:
    try:
        viewer, token_id, protocol = await _viewer(ws)
        first: list[Stream] = []
        if ws.query_params.get("stream"):
            first.append(
                parse_stream(viewer, ws.query_params.get("stream"), ws.query_params.get("tag"))
            )
        hub, conn = _open(ws, viewer, first, token_id)
    except FedisoraError as exc:
        return await _deny(ws, exc.status, exc.message)
    socket = _Socket(ws, conn)
    tasks: list[asyncio.Task[None]] = []
    try:
        await ws.accept(subprotocol=protocol)
        pump = asyncio.create_task(socket.pump())
        tasks = [asyncio.create_task(socket.read()), pump]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pump.done() and conn.closed:  # the hub ended it: say why
            # 1008 (policy violation) for a token no longer good, 1001 (going away) otherwise
            await socket.close(1008 if conn.reason == TOKEN_ENDED else 1001, conn.reason)
    except (WebSocketDisconnect, RuntimeError):  # the client went away (mid-send, too)
        pass
    finally:
        hub.close(conn)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


def routes() -> list[BaseRoute]:
    sse_paths = [
        BASE,
        f"{BASE}/user",
        f"{BASE}/user/notification",
        f"{BASE}/public",
        f"{BASE}/public/local",
        f"{BASE}/public/remote",
        f"{BASE}/hashtag",
        f"{BASE}/hashtag/local",
    ]
    out: list[BaseRoute] = [WebSocketRoute(BASE, websocket), WebSocketRoute(f"{BASE}/", websocket)]
    for path in sse_paths:
        out.append(Route(path, event_stream, methods=["GET"]))
        out.append(Route(f"{path}/", event_stream, methods=["GET"]))
    out += [Route(f"{BASE}/health", health, methods=["GET", "HEAD"])]
    return out
