"""Fixtures for the client API tests: the real app over ASGI, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fedisora.app import create_app
from fedisora.config import load_settings

# apihelpers.py lives next to the tests (tests/support is shared with other areas).
sys.path.insert(0, str(Path(__file__).parent))

BASE = "https://fedisora.test"


@pytest.fixture
async def client(db: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app on the ``db`` fixture's database (lifespan not run)."""
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": "/nonexistent",
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c
