"""Helpers for client API tests: apps and tokens made through the real OAuth endpoints."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from api_tokens import PASSWORD, password_grant, register_app

from fedisora.models import Account

__all__ = ["PASSWORD", "Login", "app_token", "log_in_browser", "login", "register_app"]


@dataclass
class Login:
    account: Account
    token: str
    client_id: str
    client_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def login(
    client: httpx.AsyncClient,
    account: Account,
    scope: str = "read write follow push",
    *,
    app_scopes: str = "read write follow push",
) -> Login:
    """A password-grant token with *scope* for *account* (made by the ``local_account``
    factory), through a new app registered with *app_scopes*."""
    token, client_id, client_secret = await password_grant(
        client, account.username, scope, app_scopes=app_scopes
    )
    return Login(account, token, client_id, client_secret)


async def app_token(client: httpx.AsyncClient, scopes: str = "read write follow") -> dict[str, str]:
    """Headers with a client-credentials (app, no user) token with *scopes*, through a new app
    registered with them: what signing up through the API takes."""
    client_id, client_secret = await register_app(client, scopes)
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scopes,
        },
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def log_in_browser(client: httpx.AsyncClient, username: str) -> None:
    """Log *username* in on the web login form (its CSRF token read from the page), so that
    *client*'s cookies are a browser session."""
    page = await client.get("/login")
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    form = {"login": username, "password": PASSWORD, "next": "/"}
    if csrf is not None:
        form["csrf"] = csrf.group(1)
    r = await client.post("/login", data=form)
    assert r.status_code == 303, r.text
