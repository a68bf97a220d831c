"""App registration refuses every URL a browser could run or misread, and caps every field;
the consent page never links an unsafe website, including one stored before the checks."""

from __future__ import annotations

import json

import httpx
from apihelpers import log_in_browser
from factories import local_account

from fedisora.api.oauth import redirect_source, redirect_uri_problem, safe_website
from fedisora.models import OAuthApplication

OOB = "urn:ietf:wg:oauth:2.0:oob"

BAD_REDIRECTS = [
    "javascript:alert(document.domain)",
    "JaVaScRiPt://x/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "blob:https://a.example/0",
    "about:blank",
    "https://[::1/",  # was a 500 (urlsplit raises)
    "http://a.example:99999/cb",  # an impossible port (raises too)
    "https:///no-host",
    "/relative/cb",
    "com.example.app:opaque",
    "https://app.example/cb#fragment",
    "https://app.example/\x01cb",
    "https://app.exämple/cb",
    "https://app.example/" + "a" * 2000,
]
GOOD_REDIRECTS = [
    OOB,
    "https://app.example/cb",
    "http://localhost:4000/oauth",
    "https://[::1]:8080/cb",
    "com.example.app:/oauth-callback",
    "myapp://callback",
]
BAD_WEBSITES = [
    "javascript:alert(document.domain)",
    "data:text/html,hi",
    "ftp://files.example/",
    "//evil.example/",
    "not a url",
    "https://" + "a" * 2000 + ".example/",
]


def test_redirect_and_website_rules() -> None:
    for uri in BAD_REDIRECTS:
        assert redirect_uri_problem(uri) is not None, uri
        assert redirect_source(uri) is None, uri
    for uri in GOOD_REDIRECTS:
        assert redirect_uri_problem(uri) is None, uri
    assert redirect_source(OOB) is None
    assert redirect_source("https://App.example:8443/cb?x=1") == "https://app.example:8443"
    assert redirect_source("https://[::1]:8080/cb") == "https://[::1]:8080"
    assert redirect_source("com.example.app:/cb") == "com.example.app:"
    for site in BAD_WEBSITES:
        assert safe_website(site) is None, site
    assert safe_website("https://app.example/about") == "https://app.example/about"


async def test_unsafe_or_oversized_apps_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, db: str
) -> None:
    ok = {"client_name": "app", "redirect_uris": OOB}
    bad_bodies: list[dict[str, object]] = [
        *({**ok, "redirect_uris": uri} for uri in BAD_REDIRECTS),
        *({**ok, "redirect_uris": [OOB, uri]} for uri in BAD_REDIRECTS),
        *({**ok, "website": site} for site in BAD_WEBSITES),
        {**ok, "redirect_uris": [f"https://app.example/{i:040d}" for i in range(40)]},
        {**ok, "client_name": "n" * 201},
        {**ok, "client_name": "tab\tname"},
        {**ok, "client_name": "\ud800"},
        {**ok, "scopes": "read " * 300},
        {**ok, "redirect_uris": {"not": "a list"}},
        {**ok, "redirect_uris": ""},
    ]
    app = client.app  # type: ignore[attr-defined]
    for i, body in enumerate(bad_bodies):
        # Each from its own address: registrations, refused ones included, are limited per IP.
        transport = httpx.ASGITransport(app=app, client=(f"127.0.1.{i}", 1234))
        async with httpx.AsyncClient(transport=transport, base_url=client.base_url) as other:
            r = await other.post(
                "/api/v1/apps",
                content=json.dumps(body),  # ensure_ascii: a lone surrogate travels as \ud800
                headers={"content-type": "application/json"},
            )
        assert r.status_code in (400, 422), (body, r.status_code, r.text[:300])
        assert set(r.json()) == {"error"}
    assert await OAuthApplication.all().count() == 0

    # From one address, the 21st registration in five minutes is refused, refused ones counted.
    for _ in range(20):
        r = await client.post("/api/v1/apps", json={**ok, "redirect_uris": "javascript:x"})
        assert r.status_code == 422
    r = await client.post("/api/v1/apps", json=ok)
    assert r.status_code == 429 and set(r.json()) == {"error"}
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert await OAuthApplication.all().count() == 0
    app.state.rate_limits.clear()  # the good registrations below come after the window

    r = await client.post(
        "/api/v1/apps",
        json={"client_name": "good", "redirect_uris": GOOD_REDIRECTS, "website": "https://a.ex/"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["redirect_uris"] == GOOD_REDIRECTS
    # Several URIs in one string, separated by white space, as Mastodon reads them.
    r = await client.post(
        "/api/v1/apps", data={"client_name": "two", "redirect_uris": f"{OOB}\nmyapp://cb"}
    )
    assert r.status_code == 200 and r.json()["redirect_uris"] == [OOB, "myapp://cb"]


async def test_a_stored_unsafe_website_is_never_a_link(client: httpx.AsyncClient, db: str) -> None:
    """A row registered before the checks (or written by hand) shows no website."""
    await local_account("vic")
    app = await OAuthApplication.create(
        name="Evil",
        website="javascript:alert(document.domain)",
        redirect_uris=OOB,
        scopes="read",
        client_id="evil-client",
        client_secret="s" * 40,
    )
    await log_in_browser(client, "vic")
    r = await client.get("/oauth/authorize", params={"client_id": app.client_id})
    assert r.status_code == 200, r.text
    assert "Authorize Evil?" in r.text
    assert "javascript" not in r.text.lower()  # neither a link nor text

    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    token = r.json()["access_token"]
    r = await client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200 and r.json()["website"] is None


async def test_a_stored_unsafe_redirect_uri_is_never_used(
    client: httpx.AsyncClient, db: str
) -> None:
    await local_account("wes")
    for uri in ("javascript:alert(1)", "data:text/html,x"):
        app = await OAuthApplication.create(
            name="Old",
            redirect_uris=uri,
            scopes="read",
            client_id=f"old-{len(uri)}",
            client_secret="s" * 40,
        )
        await log_in_browser(client, "wes")
        r = await client.get("/oauth/authorize", params={"client_id": app.client_id})
        assert r.status_code == 422 and "location" not in r.headers
        assert "not allowed" in r.text
