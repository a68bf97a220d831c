"""Client API apps and password-grant tokens, made through the real OAuth endpoints (for the
API tests' ``apihelpers`` and the web tests' ``webhelpers``)."""

from __future__ import annotations

import httpx

PASSWORD = "correct horse battery"
"""The password of the accounts the ``local_account`` factory makes."""


async def register_app(
    client: httpx.AsyncClient, scopes: str = "read write follow push"
) -> tuple[str, str]:
    """A new app with *scopes*: its client id and secret."""
    r = await client.post(
        "/api/v1/apps",
        data={
            "client_name": "tests",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": scopes,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["client_id"], body["client_secret"]


async def password_grant(
    client: httpx.AsyncClient, username: str, scope: str, *, app_scopes: str
) -> tuple[str, str, str]:
    """A password-grant token with *scope* for *username* (whose password is
    :data:`PASSWORD`), through a new app registered with *app_scopes*: the token, the app's
    client id and secret."""
    client_id, client_secret = await register_app(client, app_scopes)
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": client_secret,
            "username": username,
            "password": PASSWORD,
            "scope": scope,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"], client_id, client_secret
