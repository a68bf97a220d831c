"""The signature scheme a host accepted is kept in the database: a new process (a new
memory, a new client) signs with it at once instead of knocking twice again."""

from __future__ import annotations

import time

import httpx

from activitypub import keys
from activitypub.signatures import Request, verify_request
from fedisora.federation.http import PeerClient
from fedisora.federation.schemes import StoredSchemes
from fedisora.models import PeerSignatureScheme

PUBLIC_IP = "https://93.184.216.34"
HOST = "93.184.216.34"


def _cavage_only(seen: list[str], key: keys.PrivateKey) -> httpx.MockTransport:
    """A peer that refuses RFC 9421 with a 401 and verifies cavage with the real verifier."""

    def peer(request: httpx.Request) -> httpx.Response:
        if "signature-input" in request.headers:
            seen.append("rfc9421")
            return httpx.Response(401)
        verified = verify_request(
            Request("POST", str(request.url), request.headers.multi_items(), request.content),
            key.public_key(),
            now=time.time(),
        )
        seen.append(verified.scheme)
        return httpx.Response(202)

    return httpx.MockTransport(peer)


async def _post_twice(seen: list[str], key: keys.PrivateKey) -> StoredSchemes:
    memory = StoredSchemes()
    client = PeerClient(insecure=False, transport=_cavage_only(seen, key), memory=memory)
    try:
        auth = client.auth("https://me.example/actor#main-key", key)
        for n in range(2):
            response = await client.post_activity(f"{PUBLIC_IP}/inbox", b'{"n": %d}' % n, auth)
            assert response.status_code == 202
    finally:
        await client.aclose()
    return memory


async def test_scheme_survives_a_new_process(db: str) -> None:
    key = keys.generate_rsa_key()
    first: list[str] = []
    memory = await _post_twice(first, key)
    assert first == ["rfc9421", "cavage", "cavage"]  # one double-knock, then remembered
    assert memory.changed == {}
    row = await PeerSignatureScheme.get(host=HOST)
    assert row.scheme == "cavage"

    second: list[str] = []
    await _post_twice(second, key)  # a fresh StoredSchemes: only the table knows
    assert second == ["cavage", "cavage"]
    assert await PeerSignatureScheme.filter(host=HOST).count() == 1


async def test_a_host_that_takes_rfc9421_again_is_updated(db: str) -> None:
    await PeerSignatureScheme.create(host=HOST, scheme="cavage")
    key = keys.generate_rsa_key()
    seen: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        cavage = "signature-input" not in request.headers
        seen.append("cavage" if cavage else "rfc9421")
        return httpx.Response(401 if cavage else 202)  # the peer now refuses cavage

    memory = StoredSchemes()
    client = PeerClient(insecure=False, transport=httpx.MockTransport(peer), memory=memory)
    try:
        auth = client.auth("https://me.example/actor#main-key", key)
        response = await client.post_activity(f"{PUBLIC_IP}/inbox", b"{}", auth)
    finally:
        await client.aclose()
    assert response.status_code == 202
    assert seen == ["cavage", "rfc9421"]
    assert (await PeerSignatureScheme.get(host=HOST)).scheme == "rfc9421"


async def test_unknown_scheme_in_the_table_is_ignored(db: str) -> None:
    await PeerSignatureScheme.create(host=HOST, scheme="bogus")
    memory = StoredSchemes()
    await memory.load(HOST)
    assert memory.get(HOST) == "rfc9421"
