"""lists.example for tests: an instance's actor (with an Ed25519 key) and its signed opt-out
list, behind a mock transport installed as the process's federation (:func:`serving`). A
request for the list can be held at the peer (:meth:`ListPeer.hold`), to run other fetches
while one is in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import fedisora.federation.http as peer_http
from activitypub import keys, objects
from fedisora.config import Settings
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient
from fedisora.policy import optout_list as ol

PEER = "https://lists.example"
LIST_URL = f"{PEER}/api/fedisora/v1/optouts/list"
ISSUER = f"{PEER}/actor"
WHEN = datetime(2026, 12, 1, tzinfo=UTC)


class ListPeer:
    """lists.example: its instance actor (with an Ed25519 key) and its signed list."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        rsa = keys.generate_rsa_key()
        self.actor = objects.actor_document(
            objects.ActorInfo(
                id=ISSUER, type="Application", username="lists.example", name="lists",
                summary="", url=ISSUER, inbox=f"{ISSUER}/inbox", outbox=f"{ISSUER}/outbox",
                followers=f"{ISSUER}/followers", following=f"{ISSUER}/following",
                featured=f"{ISSUER}/featured", shared_inbox=f"{PEER}/inbox",
                public_key_id=f"{ISSUER}#main-key",
                public_key_pem=keys.public_key_to_pem(rsa.public_key()),
                published="2026-01-01T00:00:00Z", ed25519_key_id=f"{ISSUER}#ed25519-key",
                ed25519_multibase=keys.public_key_to_multibase(self.key.public_key()),
            )
        )  # fmt: skip
        self.document: Any = None
        self.asked: list[str] = []
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    def publish(self, version: int, *entries: ol.ListEntry) -> None:
        doc = ol.build_list(version=version, issued_at=WHEN, issuer=ISSUER, entries=entries)
        self.document = ol.sign_list(doc, self.key, key_id=f"{ISSUER}#ed25519-key", created=WHEN)

    def hold(self) -> asyncio.Event:
        """Hold the next request for the list until the event returned is set (it has the
        version published when it arrived: a fetch at the peer while others run)."""
        self.gate = asyncio.Event()
        self.arrived.clear()
        return self.gate

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.asked.append(url)
        if url == ISSUER:
            return httpx.Response(200, json=self.actor)
        if url == LIST_URL:
            document, gate, self.gate = self.document, self.gate, None
            if gate is not None:
                self.arrived.set()
                await gate.wait()
            return httpx.Response(200, json=document)
        return httpx.Response(404)


@asynccontextmanager
async def serving(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ListPeer]:
    """lists.example as the only peer of this process's federation (resolved to a public
    address, as the SSRF guard wants), for the block."""

    async def public(host: str, port: int) -> list[str]:
        assert host == "lists.example", host
        return ["93.184.216.34"]

    monkeypatch.setattr(peer_http, "system_resolve", public)
    scripted = ListPeer()
    federation = Federation(
        settings, PeerClient(insecure=False, transport=httpx.MockTransport(scripted))
    )
    set_federation(federation)
    try:
        yield scripted
    finally:
        set_federation(None)
        await federation.aclose()
