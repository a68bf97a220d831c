"""The input boundary (fedisora.boundary): its rules with fixed vectors, its body limits by
route class, and its middleware over ASGI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from fedisora.boundary import BodyTooLarge, ControlCharacter, InputRefused, parse_json
from fedisora.boundary.limits import (
    FORM_BODY_LIMIT,
    INBOX_BODY_LIMIT,
    MEDIA_BODY_LIMIT,
    PROFILE_BODY_LIMIT,
    body_class,
)
from fedisora.boundary.middleware import InputBoundary
from fedisora.boundary.text import MAX_PEER_DEPTH, check_storable, check_typed, refusal

# --------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("text", "stored", "typed"),
    [
        ("plain, émoji \U0001f600, tab\tand\r\nbreaks", None, None),
        ("a\x00b", InputRefused, InputRefused),
        ("a\ud800b", InputRefused, InputRefused),
        ("\udfff", InputRefused, InputRefused),
        ("bell\x07", None, ControlCharacter),
        ("escape\x1b[31m", None, ControlCharacter),
        ("del\x7f", None, ControlCharacter),
        ("next line\x85", None, ControlCharacter),
        ("zero width\u200b and bidi \u202e stay (names are another matter)", None, None),
    ],
)
def test_refused_characters(text: str, stored: type | None, typed: type | None) -> None:
    for is_typed, expected in ((False, stored), (True, typed)):
        error = refusal({"field": [text]}, typed=is_typed, max_depth=8)
        if expected is None:
            assert error is None
        else:
            assert type(error) is expected
            assert error is not None and error.message.startswith("field contains")
            assert error.status == (400 if expected is InputRefused else 422)


def test_nesting_is_measured_without_recursion() -> None:
    deep: Any = []
    for _ in range(200_000):  # far past any recursion limit
        deep = [deep]
    error = refusal(deep, typed=False, max_depth=16)
    assert isinstance(error, InputRefused) and "deeper than 16" in error.message
    assert refusal([[[]]], typed=False, max_depth=3) is None
    assert refusal([[[[]]]], typed=False, max_depth=3) is not None
    assert refusal({"a": {"b": {}}}, typed=False, max_depth=3) is None


def test_messages_never_echo_what_they_refuse() -> None:
    """A refused key labels its own refusal: the message must still be sendable as UTF-8."""
    for key in ("k\ud800", "k\x00", "x" * 500):
        with pytest.raises(InputRefused) as caught:
            check_storable({key: "\x00"})
        caught.value.message.encode("utf-8")
        assert len(caught.value.message) < 200
    with pytest.raises(ControlCharacter, match="note contains the control character U\\+0007"):
        check_typed({"x": "\x07"}, name="note")


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"a": "b"}', None),
        (b'{"a": NaN}', "not JSON"),
        (b'{"a": -Infinity}', "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b'{"a": "\\u0000"}', "NUL"),
        (b'{"a\\u0000": 1}', "NUL"),
        (b'{"a": "C:\\\\u0000"}', None),  # an escaped backslash, then "u0000"
        (b'{"a": "\\ud800"}', "unpaired surrogate"),
        (b'{"a": "\\uDBFF x"}', "unpaired surrogate"),
        (b'{"a": "\\ude00\\ud83d"}', "unpaired surrogate"),  # a pair in the wrong order
        (b'{"a": "\xed\xa0\x80"}', "unpaired surrogate"),  # its bytes, unescaped
        (b'{"a": "\\ud83d\\ude00"}', None),  # a pair: one character
        (b'{"a": "\xf0\x9f\x98\x80"}', None),
        (b'{"a": "bell \\u0007"}', None),  # peers' text is not refused for controls
        (json.dumps({"a": json.loads("[" * 63 + "]" * 63)}).encode(), None),
        (json.dumps({"a": json.loads("[" * 64 + "]" * 64)}).encode(), "deeper than 64"),
    ],
)
def test_the_json_reader(body: bytes, refused: str | None) -> None:
    if refused is None:
        parse_json(body, max_depth=MAX_PEER_DEPTH)
        parse_json(body.decode("utf-8", "surrogatepass"), max_depth=MAX_PEER_DEPTH)
    else:
        with pytest.raises(InputRefused, match=refused):
            parse_json(body, max_depth=MAX_PEER_DEPTH)
    if refused is None and b"\\u" not in body:
        assert parse_json(body, max_depth=MAX_PEER_DEPTH) == json.loads(body)


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
