"""The peer client: redirects re-checked against the SSRF guard, size limits, signing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from activitypub import keys
from activitypub.signatures import Request, verify_request
from fedisora.federation.http import FetchError, PeerClient, SchemeMemory, UnsafeURL

PUBLIC_IP = "https://93.184.216.34"  # an IP literal: the guard needs no DNS lookup


async def test_redirect_to_private_address_is_refused() -> None:
    seen: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "https://169.254.169.254/meta"})

    client = PeerClient(insecure=False, transport=httpx.MockTransport(peer))
    try:
        with pytest.raises(UnsafeURL):
            await client.get_json(f"{PUBLIC_IP}/users/x")
    finally:
        await client.aclose()
    assert seen == [f"{PUBLIC_IP}/users/x"]  # the private address was never requested


async def test_oversized_non_json_and_nul_holding_responses() -> None:
    def peer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big":
            return httpx.Response(200, content=b"x" * 2048)
        if request.url.path == "/nul":  # JSON, but PostgreSQL cannot store it
            return httpx.Response(200, content=b'{"id": "x", "name": "a\\u0000b"}')
        if request.url.path == "/surrogate":  # JSON, but no UTF-8 text holds it
            return httpx.Response(200, content=b'{"id": "x", "name": "a\\udc00b"}')
        if request.url.path == "/escaped":  # a backslash before u0000, not a NUL
            return httpx.Response(200, content=b'{"id": "x", "name": "a\\\\u0000b"}')
        return httpx.Response(200, content=b"<html>")

    client = PeerClient(insecure=False, max_bytes=1024, transport=httpx.MockTransport(peer))
    try:
        with pytest.raises(FetchError, match="over the limit"):
            await client.get_json(f"{PUBLIC_IP}/big")
        with pytest.raises(FetchError, match="not JSON"):
            await client.get_json(f"{PUBLIC_IP}/page")
        with pytest.raises(FetchError, match="NUL character"):
            await client.get_json(f"{PUBLIC_IP}/nul")
        with pytest.raises(FetchError, match="unpaired surrogate"):
            await client.get_json(f"{PUBLIC_IP}/surrogate")
        _, doc = await client.get_json(f"{PUBLIC_IP}/escaped")
        assert doc["name"] == "a\\u0000b"
    finally:
        await client.aclose()


async def test_signed_get_verifies() -> None:
    key = keys.generate_rsa_key()
    checked: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        verified = verify_request(
            Request("GET", str(request.url), request.headers.multi_items()),
            key.public_key(),
            now=time.time(),
        )
        checked.append(verified.scheme)
        return httpx.Response(200, json={"ok": True})

    client = PeerClient(insecure=False, transport=httpx.MockTransport(peer))
    try:
        auth = client.auth("https://me.example/actor#main-key", key)
        url, doc = await client.get_json(f"{PUBLIC_IP}/users/x", auth=auth)
    finally:
        await client.aclose()
    assert doc == {"ok": True} and url == f"{PUBLIC_IP}/users/x"
    assert checked == ["rfc9421"]
    assert SchemeMemory().get("anything") == "rfc9421"


async def test_a_slow_peer_hits_the_total_timeout() -> None:
    class Dripping(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for _ in range(100):
                await asyncio.sleep(0.05)
                yield b" "

    def peer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Dripping())

    client = PeerClient(insecure=False, total_timeout=0.3, transport=httpx.MockTransport(peer))
    try:
        with pytest.raises(FetchError, match="no full answer"):
            await client.get_json(f"{PUBLIC_IP}/slow")
    finally:
        await client.aclose()


async def test_double_knock_after_a_crash_on_rfc9421() -> None:
    """bovine answers 500 to RFC 9421 headers it cannot parse: knock again with cavage."""
    key = keys.generate_rsa_key()
    schemes: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        if "signature-input" in request.headers:
            schemes.append("rfc9421")
            return httpx.Response(500)
        verified = verify_request(
            Request("GET", str(request.url), request.headers.multi_items()),
            key.public_key(),
            now=time.time(),
        )
        schemes.append(verified.scheme)
        return httpx.Response(200, json={"id": "x"})

    memory = SchemeMemory()
    client = PeerClient(insecure=False, transport=httpx.MockTransport(peer), memory=memory)
    try:
        auth = client.auth("https://me.example/actor#main-key", key)
        await client.get_json(f"{PUBLIC_IP}/a", auth=auth)
        await client.get_json(f"{PUBLIC_IP}/b", auth=auth)
    finally:
        await client.aclose()
    assert schemes == ["rfc9421", "cavage", "cavage"]
    assert memory.get("93.184.216.34") == "cavage"
