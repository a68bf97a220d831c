"""Rate limits (fedisora.ratelimits): the API per account and per IP, renders and uploads in
the services, inboxes per remote host, counted in memory or in Redis, and their settings.

Each test sets small limits through ``FEDISORA_RATE_LIMITS``, as an admin would.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account
from starlette.applications import Starlette

from fedisora.app import create_app
from fedisora.config import ConfigError, Settings, load_settings
from fedisora.models import InboxItem, MediaFile, RenderJob
from fedisora.ratelimits import KEY_PREFIX, Limit, MemoryStore, RedisStore, parse_limits

BASE = "https://fedisora.test"
VERIFY = "/api/v1/accounts/verify_credentials"
RENDERS = "/api/fedisora/v1/renders"


def settings_for(db: str, tmp_path: Path, limits: str, redis_url: str | None = None) -> Settings:
    env = {
        "FEDISORA_DOMAIN": "fedisora.test",
        "FEDISORA_DATA_DIR": str(tmp_path),
        "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        "FEDISORA_SECRET_KEY": "s" * 40,
        "FEDISORA_DATABASE_URL": db,
        "FEDISORA_RATE_LIMITS": limits,
    }
    if redis_url:
        env["FEDISORA_REDIS_URL"] = redis_url
    return load_settings(env)


async def flush_counts(redis_url: str) -> None:
    """Forget the counts earlier tests left in this session's Redis database."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=KEY_PREFIX + "*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


Clients = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def instance(
    request: pytest.FixtureRequest, db: str, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Starlette, Clients]]:
    """The app with the test's limits (``FEDISORA_RATE_LIMITS``, the indirect parameter's
    first item) counted in memory, in Redis or with Redis down (its second), and a factory
    of clients each from an address of its own."""
    limits, store = request.param
    url = {"memory": None, "redis": redis_url, "down": f"redis://127.0.0.1:{closed_port()}/0"}
    if store == "redis":
        await flush_counts(redis_url)
    app = create_app(
        settings_for(db, tmp_path, limits, url[store]), run_work=False, manage_db=False
    )
    opened: list[httpx.AsyncClient] = []

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 1234))
        made = httpx.AsyncClient(transport=transport, base_url=BASE)
        opened.append(made)
        return made

    try:
        yield app, client
    finally:
        for made in opened:
            await made.aclose()
        await app.state.rate_limits.aclose()


async def token_for(client: Clients, username: str, setup_ip: str) -> Login:
    """A token for a new account, made from *setup_ip* (so the requests it takes count
    against none of the test's addresses)."""
    return await login(client(setup_ip), await local_account(username))


# --------------------------------------------------------------------------- the API


@pytest.mark.parametrize("instance", [("api=5/1h", "memory")], indirect=True)
async def test_api_burst_memory(instance: tuple[Starlette, Clients]) -> None:
    await _burst(*instance)


@pytest.mark.parametrize("instance", [("api=5/1h", "redis")], indirect=True)
async def test_api_burst_redis(instance: tuple[Starlette, Clients]) -> None:
    await _burst(*instance)


async def _burst(app: Starlette, client: Clients) -> None:
    """A burst over the API limit gets 429s with Mastodon's headers; another account from
    another address is not slowed at all."""
    alice = await token_for(client, "alice", "10.9.0.1")
    bob = await token_for(client, "bob", "10.9.0.2")
    from_a, from_b = client("10.0.0.1"), client("10.0.0.2")
    for left in range(4, -1, -1):
        r = await from_a.get(VERIFY, headers=alice.headers)
        assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "5"
        assert r.headers["X-RateLimit-Remaining"] == str(left)
    for _ in range(3):
        r = await from_a.get(VERIFY, headers=alice.headers)
        assert r.status_code == 429 and r.json() == {"error": "Too many requests"}
        assert r.headers["X-RateLimit-Limit"] == "5"
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert r.headers["X-RateLimit-Reset"].endswith("Z")
        assert 1 <= int(r.headers["Retry-After"]) <= 3600
        assert r.headers["access-control-allow-origin"] == "*"
    # Nothing else slowed: bob, from his own address, has his whole allowance.
    r = await from_b.get(VERIFY, headers=bob.headers)
    assert r.status_code == 200 and r.json()["username"] == "bob"
    assert r.headers["X-RateLimit-Remaining"] == "4"
    # Alice's account is limited from any address (counted per account too).
    r = await client("10.0.0.3").get(VERIFY, headers=alice.headers)
    assert r.status_code == 429


@pytest.mark.parametrize("instance", [("api=5/1h,api_ip=5/1h", "memory")], indirect=True)
async def test_api_counts_per_ip_across_tokens(instance: tuple[Starlette, Clients]) -> None:
    """Two accounts from one address share the address's count (``api_ip``); the headers
    show the tighter of the two counts."""
    _, client = instance
    alice = await token_for(client, "alice", "10.9.0.1")
    bob = await token_for(client, "bob", "10.9.0.2")
    shared = client("10.0.0.7")
    for _ in range(3):
        assert (await shared.get(VERIFY, headers=alice.headers)).status_code == 200
    r = await shared.get(VERIFY, headers=bob.headers)
    # bob's own count has 4 left, the address's 1: the address's is shown.
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "1"
    assert (await shared.get(VERIFY, headers=bob.headers)).status_code == 200
    r = await shared.get(VERIFY, headers=bob.headers)
    assert r.status_code == 429 and r.headers["X-RateLimit-Remaining"] == "0"
    # Without a token the address is counted alone: refused as well.
    assert (await shared.get("/api/v1/instance")).status_code == 429
    # bob from elsewhere has what is left of his own allowance (3 of 5 used: every request
    # counts, refused ones too, as on Mastodon).
    r = await client("10.0.0.8").get(VERIFY, headers=bob.headers)
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "1"


@pytest.mark.parametrize("instance", [("api=3/1h", "memory")], indirect=True)
async def test_accounts_behind_one_address_each_have_their_own_allowance(
    instance: tuple[Starlette, Clients],
) -> None:
    """Many people behind one address (an office, a NAT): with the default ``api_ip``, each
    account is limited by its own count alone, and a visitor without a token by the
    address's ``api`` count."""
    _, client = instance
    office = client("10.0.0.9")
    people = [await token_for(client, f"user{n}", f"10.9.1.{n}") for n in range(4)]
    for person in people:
        for _ in range(3):
            assert (await office.get(VERIFY, headers=person.headers)).status_code == 200
        assert (await office.get(VERIFY, headers=person.headers)).status_code == 429
    for _ in range(3):
        assert (await office.get("/api/v1/instance")).status_code == 200
    assert (await office.get("/api/v1/instance")).status_code == 429


@pytest.mark.parametrize("instance", [("api=3/1h", "down")], indirect=True)
async def test_api_with_redis_down_counts_in_memory(
    instance: tuple[Starlette, Clients], caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable: no request fails for it; the limits still hold, in memory."""
    _, client = instance
    c = client("10.0.0.1")
    with caplog.at_level(logging.WARNING, logger="fedisora.ratelimits"):
        codes = [(await c.get("/api/v1/instance")).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    failures = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    assert len(failures) == 1  # logged once, not per request


# --------------------------------------------------------------------------- the stores


async def test_redis_store_counts_across_instances(redis_url: str) -> None:
    """Two processes' stores on one Redis share the count; the key names the limit, the
    window's start and the key, and expires with the window."""
    from redis.asyncio import Redis

    await flush_counts(redis_url)
    limits = {"render": Limit(3, 60.0)}
    one, two = RedisStore(redis_url, limits), RedisStore(redis_url, limits)
    try:
        decisions = [await store.hit("render", "account:1") for store in (one, two, one, two)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert decisions[0].reset_at % 60 == 0  # windows aligned to their length
        assert (await two.hit("render", "account:2")).remaining == 2  # another key
        redis = Redis.from_url(redis_url)
        try:
            start = int(decisions[0].reset_at) - 60
            key = f"{KEY_PREFIX}render:{start}:account:1"
            assert int(await redis.get(key)) == 4
            assert 0 < await redis.ttl(key) <= 61
        finally:
            await redis.aclose()
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_store_falls_back_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{closed_port()}/0", {"upload": Limit(2, 60.0)})
    with caplog.at_level(logging.WARNING, logger="fedisora.ratelimits"):
        decisions = [await store.hit("upload", "account:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, False, False]
    assert len([r for r in caplog.records if "Redis failed" in r.getMessage()]) == 1
    await store.aclose()


async def test_memory_store_windows() -> None:
    now = [1000.0]
    store = MemoryStore({"render": Limit(2, 60.0)}, clock=lambda: now[0])
    assert [(await store.hit("render", "k")).allowed for _ in range(3)] == [True, True, False]
    assert (await store.hit("render", "other")).allowed
    now[0] += 61
    assert (await store.hit("render", "k")).allowed


# --------------------------------------------------------------------------- services


@pytest.mark.parametrize("instance", [("render=2/1h", "memory")], indirect=True)
async def test_renders_over_the_limit_refused_in_the_api(
    instance: tuple[Starlette, Clients],
) -> None:
    _, client = instance
    alice = await token_for(client, "alice", "10.9.0.1")
    bob = await token_for(client, "bob", "10.9.0.2")
    c = client("10.0.0.1")
    for n in range(2):
        r = await c.post(RENDERS, json={"prompt": f"a lighthouse {n}"}, headers=alice.headers)
        assert r.status_code == 202, r.text
    r = await c.post(RENDERS, json={"prompt": "one more"}, headers=alice.headers)
    assert r.status_code == 429 and set(r.json()) == {"error"}
    assert "renders" in r.json()["error"]
    assert r.headers["X-RateLimit-Limit"] == "2"  # the render limit's, not the API's
    assert r.headers["X-RateLimit-Remaining"] == "0" and int(r.headers["Retry-After"]) > 0
    assert await RenderJob.filter(account_id=alice.account.pk).count() == 2
    r = await c.post(RENDERS, json={"prompt": "bob's"}, headers=bob.headers)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("instance", [("upload=2/1h", "memory")], indirect=True)
async def test_uploads_over_the_limit_refused(instance: tuple[Starlette, Clients]) -> None:
    _, client = instance
    alice = await token_for(client, "alice", "10.9.0.1")
    c = client("10.0.0.1")
    files = {"file": ("empty.png", b"", "image/png")}
    for _ in range(2):  # refused uploads count too
        r = await c.post("/api/v2/media", files=files, headers=alice.headers)
        assert r.status_code == 422, r.text
    r = await c.post("/api/v2/media", files=files, headers=alice.headers)
    assert r.status_code == 429 and set(r.json()) == {"error"}
    assert r.headers["X-RateLimit-Limit"] == "2"
    assert await MediaFile.all().count() == 0


# --------------------------------------------------------------------------- inboxes


def _signed_headers(host: str) -> dict[str, str]:
    key_id = f"https://{host}/users/a#main-key"
    return {
        "content-type": "application/activity+json",
        "signature": f'keyId="{key_id}",algorithm="rsa-sha256",headers="(request-target) '
        'host date digest",signature="AAAA"',
    }


@pytest.mark.parametrize("instance", [("inbox=3/1h", "memory")], indirect=True)
async def test_inbox_burst_from_one_host(instance: tuple[Starlette, Clients]) -> None:
    """Counted per remote host (the keyId's) before any signature work: the fourth POST of
    a host in the window is a 429 with Retry-After, whatever it holds; other hosts go on."""
    _, client = instance
    c = client("192.0.2.1")
    flood = _signed_headers("flood.example")
    for _ in range(3):  # malformed: refused (400) after being counted
        r = await c.post("/inbox", content=b"not json", headers=flood)
        assert r.status_code == 400
    activity = {
        "id": "https://flood.example/activities/1",
        "type": "Follow",
        "actor": "https://flood.example/users/a",
        "object": "https://fedisora.test/users/alice",
    }
    for path in ("/inbox", "/users/alice/inbox"):
        r = await c.post(path, content=json.dumps(activity), headers=flood)
        assert r.status_code == 429 and set(r.json()) == {"error"}
        assert int(r.headers["Retry-After"]) > 0 and r.headers["X-RateLimit-Limit"] == "3"
    # Another host, even from the same address, is not slowed.
    r = await c.post("/inbox", content=b"not json", headers=_signed_headers("other.example"))
    assert r.status_code == 400
    # Unsigned POSTs count against the address.
    codes = [
        (await client("192.0.2.9").post("/inbox", content=b"{}")).status_code for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    assert await InboxItem.all().count() == 0


# --------------------------------------------------------------------------- settings


def test_limits_settings() -> None:
    assert parse_limits("render=10/1h, upload=5/30m,inbox=90/90") == {
        "render": Limit(10, 3600.0),
        "upload": Limit(5, 1800.0),
        "inbox": Limit(90, 90.0),
    }
    settings = load_settings({"FEDISORA_RATE_LIMITS": "api=100/5m", "FEDISORA_CONFIG": "/no"})
    assert settings.rate_limits == {"api": Limit(100, 300.0)}
    bad = {
        "bogus=1/1h": "unknown limit 'bogus'",
        "render": "is not name=COUNT/WINDOW",
        "render=ten/1h": "is not COUNT/WINDOW",
        "render=10/1y": "is not COUNT/WINDOW",
        "render=10": "is not COUNT/WINDOW",
        "render=0/1h": "the count must be between",
        "render=5/0s": "the window must be between",
        "render=5/8d": "the window must be between",
        "render=1/1h,render=2/1h": "given twice",
    }
    for raw, message in bad.items():
        with pytest.raises(ConfigError) as caught:
            load_settings({"FEDISORA_RATE_LIMITS": raw, "FEDISORA_CONFIG": "/no"})
        assert "FEDISORA_RATE_LIMITS" in str(caught.value) and message in str(caught.value)
