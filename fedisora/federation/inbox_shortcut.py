"""A shortcut for inbox POSTs past the session middleware and the router.

Inbox POSTs are most of what a federated server receives, and they need neither a session
cookie nor the search through every route of the app (the Mastodon API's come first). This
ASGI middleware sends ``POST /inbox``, ``/actor/inbox`` and ``/users/<name>/inbox`` straight
to the inbox endpoint; everything else goes on as before. It sits inside Starlette's error
middleware, so an unexpected exception still becomes the app's JSON 500.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from fedisora.boundary.limits import INBOX_PATH
from fedisora.federation.routes import inbox

__all__ = ["InboxShortcut"]


class InboxShortcut:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            matched = INBOX_PATH.fullmatch(scope["path"])
            if matched is not None:
                username = matched.group("username")
                scope["path_params"] = {} if username is None else {"username": username}
                response = await inbox(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
