"""The input boundary (fedisora.boundary): its body limits by route class, and its middleware
over ASGI."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from fedisora.boundary import BodyTooLarge
from fedisora.boundary.limits import (
    FORM_BODY_LIMIT,
    INBOX_BODY_LIMIT,
    MEDIA_BODY_LIMIT,
    PROFILE_BODY_LIMIT,
    body_class,
)
from fedisora.boundary.middleware import InputBoundary

# --------------------------------------------------------------------------- body limits


def test_route_classes() -> None:
    assert body_class("POST", "/inbox").limit == INBOX_BODY_LIMIT
    assert body_class("POST", "/actor/inbox").limit == INBOX_BODY_LIMIT
    assert body_class("POST", "/users/ann/inbox").limit == INBOX_BODY_LIMIT
    assert body_class("GET", "/users/ann/inbox").limit == FORM_BODY_LIMIT
    assert body_class("POST", "/users/ann/outbox").limit == FORM_BODY_LIMIT
    assert body_class("POST", "/api/v1/media").limit == MEDIA_BODY_LIMIT
    assert body_class("POST", "/api/v2/media/").limit == MEDIA_BODY_LIMIT
    assert body_class("PUT", "/api/v1/media/5").limit == FORM_BODY_LIMIT
    assert body_class("PATCH", "/api/v1/accounts/update_credentials").limit == PROFILE_BODY_LIMIT
    assert body_class("POST", "/api/v1/apps").limit == FORM_BODY_LIMIT
    assert body_class("POST", "/login").limit == FORM_BODY_LIMIT
    assert MEDIA_BODY_LIMIT > 99 * 1024 * 1024 > PROFILE_BODY_LIMIT > INBOX_BODY_LIMIT


def _echo_app(**middleware: Any) -> Starlette:
    async def swallow(request: Request) -> Response:
        """A handler that catches the refusal and answers something else."""
        try:
            await request.body()
        except BodyTooLarge:
            return JSONResponse({"error": "something else"}, 400)
        return JSONResponse({"client": request.client.host if request.client else None})

    app = Starlette(routes=[Route("/echo", swallow, methods=["GET", "POST"])])
    return InputBoundary(app, **middleware)  # type: ignore[return-value]


def test_a_handler_that_swallows_the_refusal_still_answers_413() -> None:
    with TestClient(_echo_app()) as client:
        r = client.post("/echo", content=iter([b" " * 40_000, b" " * 40_000]))
        assert r.status_code == 413
        assert r.json()["error"].startswith("the request body is larger than 65536 bytes")
        assert client.post("/echo", content=b"x" * FORM_BODY_LIMIT).status_code == 200
