"""The input boundary (fedisora.boundary): its rules with fixed vectors, its middleware over ASGI,
and a real ``fedisora serve`` behind a (simulated) reverse proxy."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from instance import running_instance
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from fedisora.api.oauth import APP_RATE
from fedisora.boundary import BodyTooLarge, ControlCharacter, InputRefused, parse_json
from fedisora.boundary.limits import (
    FORM_BODY_LIMIT,
    INBOX_BODY_LIMIT,
    MEDIA_BODY_LIMIT,
    PROFILE_BODY_LIMIT,
    body_class,
)
from fedisora.boundary.middleware import InputBoundary
from fedisora.boundary.proxies import TrustedProxies, parse_networks
from fedisora.boundary.text import MAX_PEER_DEPTH, check_storable, check_typed, refusal
from fedisora.config import ConfigError, load_settings
from fedisora.ratelimits import DEFAULTS

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

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"client": websocket.client.host if websocket.client else None})
        await websocket.close()

    app = Starlette(
        routes=[Route("/echo", swallow, methods=["GET", "POST"]), WebSocketRoute("/ws", ws)]
    )
    return InputBoundary(app, **middleware)  # type: ignore[return-value]


def test_a_handler_that_swallows_the_refusal_still_answers_413() -> None:
    with TestClient(_echo_app()) as client:
        r = client.post("/echo", content=iter([b" " * 40_000, b" " * 40_000]))
        assert r.status_code == 413
        assert r.json()["error"].startswith("the request body is larger than 65536 bytes")
        assert client.post("/echo", content=b"x" * FORM_BODY_LIMIT).status_code == 200


# --------------------------------------------------------------------------- proxies

PROXY = TrustedProxies.parse(["10.0.0.0/8", "2001:db8:1::/48"])


@pytest.mark.parametrize(
    ("peer", "lines", "client"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not from a proxy: header ignored
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's own prefix
        ("10.0.0.1", ["198.51.100.1, 10.0.0.2, 10.9.9.9"], "198.51.100.1"),  # proxy chain
        ("10.0.0.1", ["198.51.100.1", "10.0.0.2"], "198.51.100.1"),  # several header lines
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all proxies: the farthest
        ("10.0.0.1", ["unknown"], "10.0.0.1"),  # cannot be traced: the proxy
        ("10.0.0.1", ["198.51.100.1, junk, 10.0.0.2"], "10.0.0.2"),
        ("10.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.1", ['"[2001:db8:2::7]:443"'], "2001:db8:2::7"),
        ("2001:db8:1::1", ["2001:db8:2::7"], "2001:db8:2::7"),
        ("::ffff:10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", [" , ,198.51.100.1 "], "198.51.100.1"),
    ],
)
def test_the_client_behind_trusted_proxies(peer: str, lines: list[str], client: str) -> None:
    assert PROXY.client(peer, lines) == client


def test_no_proxy_is_trusted_by_default() -> None:
    assert TrustedProxies().client("127.0.0.1", ["198.51.100.1"]) == "127.0.0.1"
    assert load_settings({"FEDISORA_DATA_DIR": "/nonexistent"}).trusted_proxies == ()


def test_the_trusted_proxies_setting() -> None:
    assert parse_networks("10.0.0.0/8, 127.0.0.1 ::1,10.1.2.3/8") == (
        "10.0.0.0/8",
        "127.0.0.1/32",
        "::1/128",
    )
    settings = load_settings(
        {"FEDISORA_DATA_DIR": "/nonexistent", "FEDISORA_TRUSTED_PROXIES": "172.16.0.0/12"}
    )
    assert settings.trusted_proxies == ("172.16.0.0/12",)
    for bad in ("proxy.example", "10.0.0.0/33", "10.0.0.1-10.0.0.9"):
        with pytest.raises(ConfigError, match="FEDISORA_TRUSTED_PROXIES"):
            load_settings({"FEDISORA_DATA_DIR": "/nonexistent", "FEDISORA_TRUSTED_PROXIES": bad})


async def test_the_middleware_puts_the_client_in_the_scope() -> None:
    """HTTP and WebSocket alike: request.client is the client for every reader."""
    with TestClient(_echo_app()) as client:  # no proxy trusted: the header is ignored
        r = client.get("/echo", headers={"x-forwarded-for": "198.51.100.1"})
        assert r.json() == {"client": "testclient"}
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["client"])

    boundary = InputBoundary(inner, trusted_proxies=("10.0.0.0/8",))
    for kind in ("http", "websocket"):
        for peer in ("10.0.0.1", "203.0.113.5"):
            scope = {
                "type": kind,
                "method": "GET",
                "path": "/",
                "headers": [(b"x-forwarded-for", b"198.51.100.1, 10.0.0.2")],
                "client": (peer, 5555),
            }
            await boundary(scope, _nothing, _nothing)
    assert seen == [("198.51.100.1", 0), ("203.0.113.5", 5555)] * 2


async def _nothing(*_: Any) -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}


# --------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fedisora serve`` told that 127.0.0.1 (where the tests connect from) is its proxy."""
    with running_instance(
        tmp_path_factory.mktemp("proxied"),
        "--no-render-worker",
        FEDISORA_TRUSTED_PROXIES="127.0.0.1",
    ) as inst:
        yield inst.url


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fedisora serve`` with the default: no proxy trusted."""
    with running_instance(tmp_path_factory.mktemp("direct"), "--no-render-worker") as inst:
        yield inst.url


def _register(url: str, forwarded_for: str) -> int:
    r = httpx.post(
        f"{url}/api/v1/apps",
        data={"client_name": "c", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
        headers={"x-forwarded-for": forwarded_for},
    )
    return r.status_code


def test_per_ip_limits_count_the_client_behind_a_trusted_proxy(behind_proxy: str) -> None:
    limit = DEFAULTS[APP_RATE].count
    assert [_register(behind_proxy, "198.51.100.1") for _ in range(limit)] == [200] * limit
    assert _register(behind_proxy, "198.51.100.1") == 429
    assert _register(behind_proxy, "6.6.6.6, 198.51.100.1") == 429  # a prefix fools nobody
    assert _register(behind_proxy, "198.51.100.2") == 200  # another client behind the proxy


def test_forwarded_headers_are_ignored_by_default(direct: str) -> None:
    """Uvicorn's own reading (which trusts 127.0.0.1 by default) is off: a client cannot pick
    its address by sending X-Forwarded-For."""
    limit = DEFAULTS[APP_RATE].count
    codes = [_register(direct, f"198.51.100.{n}") for n in range(limit + 1)]
    assert codes == [200] * limit + [429]


def _raw_request(url: str, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send *head* then *chunks* until the server answers; (its answer, bytes of body sent)."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for chunk in chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.setblocking(True)
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            try:
                more = sock.recv(65536)
            except ConnectionResetError:
                break
            if not more:
                break
            answer += more
    return answer, sent


def test_a_real_server_refuses_large_bodies_early(direct: str) -> None:
    host = direct.removeprefix("http://")
    # Declared: a gigabyte. Answered before the body is sent at all.
    head = (
        f"POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**9}\r\n\r\n"
    ).encode()
    answer, _ = _raw_request(direct, head, iter([]))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Chunked: cut off once past the limit, not read to the end of its 200 MB.
    head = (
        f"POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b" " * 65536
    chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"

    def chunks() -> Iterator[bytes]:
        for _ in range(3200):  # 200 MB
            time.sleep(0.001)
            yield chunk

    answer, sent = _raw_request(direct, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 32 * 1024 * 1024  # the limit, and what the sockets' buffers took meanwhile
    assert httpx.get(f"{direct}/healthz").status_code in (200, 503)  # the server is fine
