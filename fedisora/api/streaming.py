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
stream 400. Public and hashtag streams need no token; a token given must be able to read
statuses. See :mod:`fedisora.streaming.channels` for what each stream carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from fedisora.api.http import load_token, with_cors
from fedisora.boundary import MAX_CLIENT_DEPTH, InputRefused, parse_json
from fedisora.errors import FedisoraError
from fedisora.services.events import Event
from fedisora.streaming.broker import Hub
from fedisora.streaming.channels import (
    Message,
    Stream,
    StreamError,
    Viewer,
    messages_for,
    parse_stream,
)

__all__ = ["HEARTBEAT", "routes", "sse_lines"]

log = logging.getLogger("fedisora.streaming")

HEARTBEAT = 15.0  # seconds between ``:thump`` comments, as Mastodon's streaming server
BASE = "/api/v1/streaming"


class _NotRunning(FedisoraError):
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


async def _viewer(conn: HTTPConnection) -> tuple[Viewer, str | None]:
    raw, protocol = _token_from(conn)
    if raw is None:
        return Viewer(None), None
    token, account, _user = await load_token(raw)
    return Viewer(account, tuple(token.scopes.split())), protocol


def _hub(conn: HTTPConnection) -> Hub:
    service = getattr(conn.app.state, "streaming", None)
    if service is None:
        raise _NotRunning("Streaming is not running on this process")
    hub: Hub = service.hub
    return hub


async def sse_lines(
    hub: Hub, viewer: Viewer, stream: Stream, heartbeat: float = HEARTBEAT
) -> AsyncGenerator[str, None]:
    """The text of a server-sent event stream: ``:)``, then messages and ``:thump`` lines."""
    queue = hub.connect()
    try:
        yield ":)\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                yield ":thump\n\n"
                continue
            for message in await _messages(event, viewer, [stream]):
                yield message.sse_text()
    finally:
        hub.disconnect(queue)


async def _messages(event: Event, viewer: Viewer, streams: list[Stream]) -> list[Message]:
    try:
        return await messages_for(event, viewer, streams)
    except Exception:  # one bad event must not end the connection
        log.exception("streaming %s failed", event.kind)
        return []


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
        viewer, _ = await _viewer(request)
        stream = parse_stream(viewer, _sse_stream_name(request), request.query_params.get("tag"))
        hub = _hub(request)
    except FedisoraError as exc:
        return with_cors(JSONResponse({"error": exc.message}, exc.status))
    return with_cors(
        StreamingResponse(
            sse_lines(hub, viewer, stream),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    )


async def health(request: Request) -> Response:
    return with_cors(PlainTextResponse("OK"))


class _Socket:
    """One WebSocket connection: its subscriptions, and a lock so sends never interleave."""

    def __init__(self, ws: WebSocket, viewer: Viewer) -> None:
        self.ws = ws
        self.viewer = viewer
        self.streams: list[Stream] = []
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self._lock:
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.send_text(text)

    def subscribe(self, stream: Stream) -> None:
        if stream not in self.streams:
            self.streams.append(stream)

    def unsubscribe(self, stream: Stream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)

    async def handle(self, text: str) -> None:
        """A client message: subscribe or unsubscribe; errors are sent back, never fatal."""
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
            stream = parse_stream(self.viewer, name, tag)
        except StreamError as exc:
            return await self.error(exc.message, exc.status)
        if kind == "subscribe":
            self.subscribe(stream)
        else:
            self.unsubscribe(stream)
        return None

    async def error(self, message: str, status: int) -> None:
        await self.send(json.dumps({"error": message, "status": status}))

    async def pump(self, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            for message in await _messages(event, self.viewer, list(self.streams)):
                await self.send(message.websocket_text())


async def _deny(ws: WebSocket, status: int, message: str) -> None:
    """Refuse the upgrade with an HTTP status where the server supports it, as Mastodon does."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"error": message}, status))
    else:
        await ws.close(code=1008 if status in (401, 403) else 1003, reason=message[:120])


async def websocket(ws: WebSocket) -> None:
    try:
        viewer, protocol = await _viewer(ws)
        first: Stream | None = None
        if ws.query_params.get("stream"):
            first = parse_stream(viewer, ws.query_params.get("stream"), ws.query_params.get("tag"))
        hub = _hub(ws)
    except FedisoraError as exc:
        return await _deny(ws, exc.status, exc.message)
    socket = _Socket(ws, viewer)
    if first is not None:
        socket.subscribe(first)
    queue = hub.connect()
    pump: asyncio.Task[None] | None = None
    try:
        await ws.accept(subprotocol=protocol)
        pump = asyncio.create_task(socket.pump(queue))
        while True:
            text = await ws.receive_text()
            await socket.handle(text)
    except (WebSocketDisconnect, RuntimeError):  # the client went away (mid-send, too)
        pass
    finally:
        hub.disconnect(queue)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await pump


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
