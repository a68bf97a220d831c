"""OAuth 2: apps, the consent page, every grant, scopes, revocation and metadata."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from apihelpers import PASSWORD, log_in_browser, login, register_app
from factories import local_account

from fedisora.models import OAuthAccessToken, utcnow

OOB = "urn:ietf:wg:oauth:2.0:oob"


async def test_create_app_accepts_form_and_json_and_validates(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/apps",
        json={
            "client_name": "toot",
            "redirect_uris": ["https://app.example/cb", OOB],
            "scopes": "read write:statuses",
            "website": "https://app.example",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "toot" and body["scopes"] == ["read", "write:statuses"]
    assert body["redirect_uris"] == ["https://app.example/cb", OOB]
    assert body["redirect_uri"] == f"https://app.example/cb\n{OOB}"
    assert len(body["client_id"]) > 20 and len(body["client_secret"]) > 20
    assert isinstance(body["id"], str)

    r = await client.post("/api/v1/apps/", data={"client_name": "x", "redirect_uris": OOB})
    assert r.status_code == 200 and r.json()["scopes"] == ["read"]

    for bad in (
        {"redirect_uris": OOB},
        {"client_name": "x"},
        {"client_name": "x", "redirect_uris": OOB, "scopes": "read admin:everything"},
        {"client_name": "x", "redirect_uris": "not a uri"},
    ):
        r = await client.post("/api/v1/apps", data=bad)
        assert r.status_code == 422, (bad, r.text)
        assert set(r.json()) == {"error"}
    r = await client.post(
        "/api/v1/apps", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]


async def test_metadata_advertises_password_grant(client: httpx.AsyncClient) -> None:
    r = await client.get("/.well-known/oauth-authorization-server")
    body = r.json()
    assert {"authorization_code", "password", "client_credentials", "refresh_token"} <= set(
        body["grant_types_supported"]
    )
    assert body["token_endpoint"] == "https://fedisora.test/oauth/token"
    assert "S256" in body["code_challenge_methods_supported"]
    assert "write:favourites" in body["scopes_supported"]


async def test_password_grant_scopes_refresh_and_revoke(client: httpx.AsyncClient, db: str) -> None:
    alice = await local_account("alice")
    cid, secret = await register_app(client, "read write")
    form = {"grant_type": "password", "client_id": cid, "client_secret": secret}
    r = await client.post(
        "/oauth/token", data={**form, "username": "alice", "password": "wrong password"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await client.post(
        "/oauth/token",
        data={**form, "username": "alice", "password": PASSWORD, "scope": "read follow"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = await client.post(
        "/oauth/token",
        data={**form, "client_secret": "nope", "username": "alice", "password": PASSWORD},
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    r = await client.post(
        "/oauth/token", data={**form, "username": "alice@example.com", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["scope"] == "read write" and tok["token_type"] == "Bearer"
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    me = await client.get("/api/v1/apps/verify_credentials", headers=headers)
    assert me.status_code == 200 and me.json()["name"] == "tests"
    assert "client_secret" not in me.json()

    # refresh: a new token works, the old one is revoked
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tok["refresh_token"],
            "client_id": cid,
            "client_secret": secret,
        },
    )
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["access_token"] != tok["access_token"] and new["scope"] == "read write"
    r = await client.get("/api/v1/apps/verify_credentials", headers=headers)
    assert r.status_code == 401 and "error" in r.json()
    headers = {"Authorization": f"Bearer {new['access_token']}"}

    # revoke (client authenticated by HTTP Basic)
    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    r = await client.post(
        "/oauth/revoke",
        data={"token": new["access_token"]},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200 and r.json() == {}
    r = await client.get("/api/v1/apps/verify_credentials", headers=headers)
    assert r.status_code == 401
    assert alice.username == "alice"


async def test_client_credentials_and_unsupported_grant(client: httpx.AsyncClient, db: str) -> None:
    cid, secret = await register_app(client, "read")
    r = await client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200 and r.json()["scope"] == "read"
    assert "refresh_token" not in r.json()
    app_headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await client.get("/api/v1/apps/verify_credentials", headers=app_headers)
    assert r.status_code == 200
    r = await client.post(
        "/oauth/token", data={"grant_type": "magic", "client_id": cid, "client_secret": secret}
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


async def test_expired_and_garbage_tokens_are_401(client: httpx.AsyncClient, db: str) -> None:
    alice = await local_account()
    session = await login(client, alice)
    r = await client.get("/api/v1/apps/verify_credentials", headers=session.headers)
    assert r.status_code == 200
    await OAuthAccessToken.filter(token=session.token).update(
        expires_at=utcnow() - timedelta(seconds=1)
    )
    r = await client.get("/api/v1/apps/verify_credentials", headers=session.headers)
    assert r.status_code == 401 and r.json() == {"error": "The access token expired"}
    r = await client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": "Bearer garbage"}
    )
    assert r.status_code == 401
    r = await client.get("/api/v1/apps/verify_credentials")
    assert r.status_code == 401


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


async def test_authorization_code_flow_with_pkce(client: httpx.AsyncClient, db: str) -> None:
    await local_account("carol")
    r = await client.post(
        "/api/v1/apps",
        data={
            "client_name": "Phanpy",
            "redirect_uris": "https://app.example/cb",
            "scopes": "read write",
        },
    )
    app = r.json()
    verifier = "v" * 50
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": "https://app.example/cb",
        "scope": "read",
        "state": "xyz",
        "code_challenge": _s256(verifier),
        "code_challenge_method": "S256",
    }
    # Not logged in: sent to the login page, which comes back here.
    r = await client.get("/oauth/authorize", params=query)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    await log_in_browser(client, "carol")
    r = await client.get("/oauth/authorize", params=query)
    assert r.status_code == 200 and "Phanpy" in r.text and "@carol" in r.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert csrf is not None
    form = dict(query, csrf=csrf.group(1), decision="approve")
    r = await client.post("/oauth/authorize", data=form)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.netloc == "app.example"
    got = parse_qs(target.query)
    assert got["state"] == ["xyz"]
    code = got["code"][0]

    token_form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": "https://app.example/cb",
    }
    r = await client.post("/oauth/token", data={**token_form, "code_verifier": "wrong" * 10})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await client.post("/oauth/token", data={**token_form, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "read"
    # a code works once
    r = await client.post("/oauth/token", data={**token_form, "code_verifier": verifier})
    assert r.status_code == 400


async def test_authorization_oob_shows_code_and_deny_and_bad_requests(
    client: httpx.AsyncClient, db: str
) -> None:
    await local_account("dave")
    cid, secret = await register_app(client, "read write")
    await log_in_browser(client, "dave")
    query = {"response_type": "code", "client_id": cid, "redirect_uri": OOB, "scope": "read"}
    r = await client.get("/oauth/authorize", params=query)
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert csrf is not None
    r = await client.post(
        "/oauth/authorize", data=dict(query, csrf=csrf.group(1), decision="approve")
    )
    assert r.status_code == 200
    code = re.search(r'id="authorization-code">([^<]+)<', r.text)
    assert code is not None
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code.group(1),
            "client_id": cid,
            "client_secret": secret,
            "redirect_uri": OOB,
        },
    )
    assert r.status_code == 200 and r.json()["scope"] == "read"

    # a forged POST without the page's CSRF token does nothing
    r = await client.post("/oauth/authorize", data=dict(query, csrf="forged", decision="approve"))
    assert r.status_code == 403
    # unknown client, foreign redirect URI, scope beyond the app: shown, never redirected
    for bad in (
        dict(query, client_id="nope"),
        dict(query, redirect_uri="https://evil.example/"),
        dict(query, scope="follow"),
    ):
        r = await client.get("/oauth/authorize", params=bad)
        assert r.status_code == 422 and "location" not in r.headers
        assert "Authorization failed" in r.text


async def test_scopes_enforced_per_endpoint(client: httpx.AsyncClient, db: str) -> None:
    bob = await local_account()
    session = await login(client, bob, scope="read:accounts")
    r = await client.get("/api/v1/accounts/verify_credentials", headers=session.headers)
    assert r.status_code == 200, r.text
    r = await client.get("/api/v1/timelines/home", headers=session.headers)
    assert r.status_code == 403 and r.json() == {
        "error": "This action is outside the authorized scopes"
    }
    r = await client.post(f"/api/v1/accounts/{bob.pk}/follow", headers=session.headers)
    assert r.status_code == 403


async def test_pkce_plain_and_missing_verifier(client: httpx.AsyncClient, db: str) -> None:
    await local_account("erin")
    cid, secret = await register_app(client, "read")
    await log_in_browser(client, "erin")
    verifier = "p" * 43
    codes = []
    for _ in range(2):
        query = {
            "client_id": cid,
            "redirect_uri": OOB,
            "code_challenge": verifier,
            "code_challenge_method": "plain",
        }
        page = await client.get("/oauth/authorize", params=query)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        page = await client.post(
            "/oauth/authorize", data=dict(query, csrf=csrf.group(1), decision="approve")
        )
        code = re.search(r'id="authorization-code">([^<]+)<', page.text)
        assert code is not None
        codes.append(code.group(1))
    form = {"grant_type": "authorization_code", "client_id": cid, "client_secret": secret}
    r = await client.post("/oauth/token", data={**form, "code": codes[0]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # verifier missing
    r = await client.post(
        "/oauth/token", data={**form, "code": codes[1], "code_verifier": verifier}
    )
    assert r.status_code == 200 and r.json()["scope"] == "read"
