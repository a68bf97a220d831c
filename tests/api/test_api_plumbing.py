"""Parameters in every encoding, trailing slashes, error shape, rate limits, instance info."""

from __future__ import annotations

import json

import httpx
import pytest
from apihelpers import login
from factories import local_account, remote_account
from starlette.requests import Request

from fedisora.api.params import read_params
from fedisora.api.scopes import allows, normalize
from fedisora.errors import Invalid
from fedisora.ratelimits import Limiter, MemoryStore, parse_limits
from fedisora.services import passwords


def _request(method: str, query: bytes, body: bytes, ctype: str) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "query_string": query,
        "headers": [(b"content-type", ctype.encode())],
    }
    return Request(scope, receive)


async def test_params_merge_query_form_and_json_arrays() -> None:
    form = _request(
        "POST",
        b"limit=5",
        b"media_ids%5B%5D=1&media_ids%5B%5D=2&sensitive=true&source%5Bnote%5D=x",
        "application/x-www-form-urlencoded",
    )
    p = await read_params(form)
    assert p.id_list("media_ids") == [1, 2] and p.flag("sensitive") is True
    assert p.integer("limit") == 5 and p.mapping("source") == {"note": "x"}
    body = json.dumps({"media_ids": ["3"], "sensitive": False, "limit": 7}).encode()
    p = await read_params(_request("POST", b"limit=5", body, "application/json; charset=utf-8"))
    assert (
        p.id_list("media_ids") == [3] and p.flag("sensitive") is False and p.integer("limit") == 7
    )
    p = await read_params(_request("GET", b"id[]=1&id[]=x&types=a&types=b", b"", ""))
    assert p.id_list("id") == [1, -1] and p.texts("types") == ["a", "b"]
    with pytest.raises(Invalid):
        p.integer("types")
    p = await read_params(_request("POST", b"", b'{"sensitive": "maybe"}', "application/json"))
    with pytest.raises(Invalid):
        p.flag("sensitive")


def test_scope_rules() -> None:
    assert allows(["read"], "read:statuses") and allows(["write:favourites"], "write:favourites")
    assert not allows(["read"], "write:favourites") and not allows(["read:accounts"], "read")
    assert allows(["follow"], "write:blocks") and not allows(["follow"], "write:statuses")
    assert normalize("read+write  follow") == ["read", "write", "follow"]
    assert normalize(None) == ["read"]
    with pytest.raises(Invalid):
        normalize("read bogus:read")
    # Admin scopes exist but are never implied by read/write (as in Mastodon).
    assert normalize("read admin:read") == ["read", "admin:read"]
    assert not allows(["read", "write"], "admin:read:accounts")
    assert allows(["admin:write"], "admin:write:accounts")
    assert not allows(["admin:read"], "admin:write:accounts")


def test_limiter_window() -> None:
    now = [1000.0]
    limiter = Limiter(2, 60, clock=lambda: now[0])
    assert limiter.hit("k").remaining == 1 and limiter.hit("k").remaining == 0
    blocked = limiter.hit("k")
    assert not blocked.allowed and blocked.headers()["X-RateLimit-Reset"].endswith("Z")
    assert limiter.hit("other").allowed
    now[0] += 61
    assert limiter.hit("k").allowed


async def test_rate_limit_headers_and_429(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account())
    r = await client.get("/api/v1/accounts/verify_credentials", headers=me.headers)
    assert r.headers["X-RateLimit-Limit"] == "300"
    remaining = int(r.headers["X-RateLimit-Remaining"])
    r = await client.get("/api/v1/accounts/verify_credentials", headers=me.headers)
    assert int(r.headers["X-RateLimit-Remaining"]) == remaining - 1
    client.app.state.rate_limits = MemoryStore(parse_limits("api=1/5m"))  # type: ignore[attr-defined]
    assert (await client.get("/api/v1/instance")).status_code == 200
    r = await client.get("/api/v1/instance")
    assert r.status_code == 429 and r.json() == {"error": "Too many requests"}
    assert r.headers["X-RateLimit-Remaining"] == "0"


async def test_access_token_query_parameter(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account("queryuser"))
    url = "/api/v1/accounts/verify_credentials"
    r = await client.get(url, params={"access_token": me.token})
    assert r.status_code == 200 and r.json()["username"] == "queryuser"
    r = await client.get(url, params={"access_token": "not-a-token"})
    assert r.status_code == 401 and "error" in r.json()


async def test_password_grant_is_rate_limited(client: httpx.AsyncClient, db: str) -> None:
    r = await client.post(
        "/api/v1/apps", data={"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    )
    app = r.json()
    form = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": "nobody",
        "password": "guess",
    }
    limit = min(passwords.PER_IP, passwords.PER_ACCOUNT)  # the guard of every password check
    codes = [(await client.post("/oauth/token", data=form)).status_code for _ in range(limit + 1)]
    assert codes == [400] * limit + [429]
    r = await client.post("/oauth/token", data={**form, "username": "somebody-else"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # the address is spent


async def test_errors_are_json_and_never_500(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account())
    probes = [
        ("GET", "/api/v1/accounts/abc"),
        ("GET", "/api/v1/accounts/99999999999999999999999999"),
        ("POST", "/api/v1/statuses/%20/favourite"),
        ("GET", "/api/v1/notifications/x"),
        ("GET", "/api/v1/timelines/tag/%00"),
        ("GET", "/api/v1/accounts/lookup?acct=a%00b"),
        ("POST", "/api/v1/apps?client_name=%00&redirect_uris=x"),
        ("GET", "/api/v1/accounts/search?q="),
        ("POST", "/api/v1/statuses?media_ids[]=-5"),
        ("GET", "/api/v1/no/such/endpoint"),
        ("DELETE", "/api/v1/instance"),
    ]
    for method, path in probes:
        r = await client.request(method, path, headers=me.headers)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert isinstance(r.json().get("error"), str), (path, r.text)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "x", "spoiler_text": "w" * 501, "in_reply_to_id": "1"},
        headers=me.headers,
    )
    assert r.status_code == 422 and "spoiler_text" in r.json()["error"]
    r = await client.get("/api/v1/accounts/relationships?id[]=zzz", headers=me.headers)
    assert r.status_code == 200 and r.json() == []
    r = await client.post(
        "/api/v1/statuses",
        content=b'["not", "an object"]',
        headers={**me.headers, "content-type": "application/json"},
    )
    assert r.status_code == 422


async def test_instance_endpoints(client: httpx.AsyncClient, db: str) -> None:
    await local_account("admin", admin=True)
    await remote_account("zed", domain="peer.example")
    v2 = (await client.get("/api/v2/instance")).json()
    assert v2["domain"] == "fedisora.test" and v2["api_versions"]["mastodon"] >= 2
    assert v2["version"].startswith("4.3.0 (compatible; fedisora ")
    media = v2["configuration"]["media_attachments"]
    assert "video/mp4" in media["supported_mime_types"] and media["video_duration_limit"] == 10.0
    assert v2["configuration"]["statuses"]["max_characters"] == 1000
    assert v2["registrations"] == {
        **v2["registrations"],
        "enabled": True,
        "approval_required": False,
    }
    assert v2["contact"]["account"]["username"] == "admin"
    v1 = (await client.get("/api/v1/instance/")).json()
    assert v1["uri"] == "fedisora.test" and v1["stats"]["user_count"] == 1
    assert v1["stats"]["domain_count"] == 1 and v1["registrations"] is True
    assert (await client.get("/api/v1/instance/peers")).json() == ["peer.example"]
    assert (await client.get("/api/v1/custom_emojis")).json() == []
    assert (await client.get("/api/v1/instance/rules")).json() == []


async def test_cors_for_browser_clients(client: httpx.AsyncClient, db: str) -> None:
    r = await client.options(
        "/api/v1/timelines/home/",
        headers={
            "Origin": "https://elk.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-headers"] == "authorization"
    r = await client.get("/api/v1/timelines/public", headers={"Origin": "https://elk.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "Link" in r.headers["access-control-expose-headers"]
    r = await client.post("/oauth/token", data={"grant_type": "password"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "*"


async def test_the_source_url_setting_is_offered_everywhere(db: str) -> None:
    """AGPL section 13: the instance API, NodeInfo and every web page point at the source."""
    from fedisora.app import create_app
    from fedisora.config import load_settings

    fork = "https://code.example/me/fedisora-fork"
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": "/nonexistent",
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
            "FEDISORA_SOURCE_URL": fork,
        }
    )
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as http:
        assert (await http.get("/api/v2/instance")).json()["source_url"] == fork
        nodeinfo = (await http.get("/nodeinfo/2.1")).json()
        assert nodeinfo["software"]["repository"] == fork
        page = await http.get("/login")
        assert f'href="{fork}"' in page.text and "AGPL-3.0-or-later" in page.text
