"""Helpers of the web page tests: browsers with their own sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

PASSWORD = "correct horse battery"
DOMAIN = "fedisora.test"


def browser(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    """A browser of its own: its own cookie jar (session)."""
    return httpx.AsyncClient(
        transport=transport,
        base_url=f"https://{DOMAIN}",
        headers={"accept": "text/html,application/xhtml+xml"},
    )


@asynccontextmanager
async def logged_in(transport: httpx.ASGITransport, login: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own, logged in as *login* (whose password is :data:`PASSWORD`)."""
    async with browser(transport) as http:
        r = await http.post("/login", data={"login": login, "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield http
