"""Fixtures for federation tests: the app over ASGI, and a scripted remote peer.

The remote peer is an ``httpx.MockTransport`` serving documents we put in it and recording
what our code sent; it stands in for a server on the other side of the network (tests never
leave loopback). Signatures our code sends are checked with the real verifier.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fedhelpers import DOMAIN, Peer

from fedisora.config import Settings, load_settings
from fedisora.federation import install, uninstall
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_REGISTRATIONS": "closed",
            # One peer sends hundreds of activities in some of these tests (the fuzzing, the
            # hot path); the inbox's per-host limit has tests of its own.
            "FEDISORA_RATE_LIMITS": "inbox=1000000/5m",
        }
    )


@pytest.fixture
def peer() -> Peer:
    return Peer()


@pytest.fixture
async def federation(db: str, settings: Settings, peer: Peer) -> AsyncIterator[Federation]:
    """This process's federation context, talking to ``peer``; the delivery listener on."""
    from fedisora import urls

    urls.configure(settings)
    fed = Federation(settings, PeerClient(insecure=True, transport=httpx.MockTransport(peer)))
    set_federation(fed)
    install(None)
    try:
        yield fed
    finally:
        await uninstall()  # closes fed, the current federation
        set_federation(None)


@pytest.fixture
async def client(federation: Federation, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from fedisora.app import create_app

    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as http:
        yield http


@pytest.fixture
def own_ca(settings: Settings) -> Any:
    """This instance's provenance credentials, where ``fedisora init`` puts them."""
    from render.provenance import generate_instance_ca

    credentials = generate_instance_ca(DOMAIN)
    folder = settings.data_dir / "provenance"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(("root.pem", "chain.pem", "key.pem"), credentials, strict=True):
        (folder / name).write_text(text)
    return credentials


@pytest.fixture
async def fed(db: str, settings: Settings, own_ca: Any) -> AsyncIterator[Federation]:
    """The process's federation context with a real PeerClient (loopback allowed) and our own
    provenance credentials, for the remote provenance checks; no peer roots cached before or
    after."""
    from fedisora import urls
    from fedisora.federation.provenance_root import peer_roots

    urls.configure(settings)
    federation = Federation(settings, PeerClient(insecure=True, timeout=5.0))
    set_federation(federation)
    peer_roots.clear()
    try:
        yield federation
    finally:
        await federation.aclose()
        set_federation(None)
        peer_roots.clear()
