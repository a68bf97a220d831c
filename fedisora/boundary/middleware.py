"""The ASGI middleware at the edge of the app: what every request passes before any route.

1. For each HTTP request and WebSocket handshake, the client's address behind trusted reverse
   proxies (:mod:`fedisora.boundary.proxies`) replaces the connection's in the ASGI scope, so
   that ``request.client``, every per-IP limit (:func:`fedisora.api.http.client_ip`) and the
   access log see the same address.
2. Each HTTP request body is held to its route's limit (:mod:`fedisora.boundary.limits`): a
   declared ``Content-Length`` over it is answered 413 before a byte is read; a body that grows
   past it while being read raises :class:`~fedisora.boundary.limits.BodyTooLarge` from the
   receive channel, and whatever the handler then answers, the client gets the 413.

What the body says is read by the one JSON reader and the one form reader
(:mod:`fedisora.boundary.text`, :mod:`fedisora.boundary.forms`). Paths and query strings are
left to the routes: a page ignores parameters it does not know, and a path naming nobody is a
404 there.

It sits first in the app's middleware list, inside Starlette's error middleware only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedisora.boundary.limits import BodyClass, BodyTooLarge, body_class, too_large_message
from fedisora.boundary.proxies import TrustedProxies

__all__ = ["InputBoundary"]

log = logging.getLogger("fedisora.boundary")


class InputBoundary:
    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str] = ()) -> None:
        self.app = app
        self.proxies = TrustedProxies.parse(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        if self.proxies.networks:
            self._client_behind_proxies(scope)
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        body = body_class(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > body.limit:
            _log_refusal(scope, body)
            await _answer(send, 413, too_large_message(body))
            return
        await _LimitedExchange(body, receive, send).run(self.app, scope)

    def _client_behind_proxies(self, scope: Scope) -> None:
        client = scope.get("client")
        if not client:
            return
        lines = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        if lines:
            found = self.proxies.client(client[0], lines)
            if found != client[0]:
                scope["client"] = (found, 0)


class _LimitedExchange:
    """One request's receive and send channels, with the body held to its limit."""

    def __init__(self, body: BodyClass, receive: Receive, send: Send) -> None:
        self.body = body
        self.receive_next = receive
        self.send_next = send
        self.received = 0
        self.tripped = False  # the body grew past the limit
        self.started = False  # a response has begun
        self.replaced = False  # the handler's response is being dropped for the 413

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self.receive, self.send)
        except BodyTooLarge:
            _log_refusal(scope, self.body)
            if not self.started:
                await _answer(self.send_next, 413, too_large_message(self.body))
            # else the response was under way before the body was read: it ends as it is

    async def receive(self) -> Message:
        if self.tripped:
            raise BodyTooLarge(self.body)
        message = await self.receive_next()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.body.limit:
                self.tripped = True
                raise BodyTooLarge(self.body)
        return message

    async def send(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            if self.tripped and message["status"] != 413:
                # A handler that caught the refusal and answered something else: the client
                # still learns that its body was too large.
                self.replaced = True
                self.started = True
                await _answer(self.send_next, 413, too_large_message(self.body))
                return
            self.started = True
        await self.send_next(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _log_refusal(scope: Scope, body: BodyClass) -> None:
    client = scope.get("client")
    log.warning(
        "%s %s refused (413) from %s: body over %d bytes",
        scope["method"],
        scope["path"],
        client[0] if client else "?",
        body.limit,
    )


async def _answer(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"access-control-allow-origin", b"*"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
