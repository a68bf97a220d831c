"""Fixtures of the web page tests: the real app on the real database, and a federation whose
peers are never asked (the remote accounts and clips are stored as they would arrive)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from webhelpers import DOMAIN

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.federation.context import Federation
from fedisora.federation.http import PeerClient


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )


@pytest.fixture
def web(settings: Settings) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(settings, run_work=False, manage_db=False))


@pytest.fixture
async def fed(settings: Settings) -> AsyncIterator[Federation]:
    """Federation whose peers are unreachable: every remote actor here is cached already."""
    asked: list[httpx.Request] = []

    def nobody(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(404)

    federation = Federation(
        settings, PeerClient(insecure=False, transport=httpx.MockTransport(nobody))
    )
    try:
        yield federation
    finally:
        await federation.aclose()
        assert asked == []  # nothing was fetched: the clips came in whole
