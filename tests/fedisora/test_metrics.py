"""``/metrics`` (:mod:`fedisora.metrics`; issue 20, point 4): the Prometheus text format, open
to loopback, to ``FEDISORA_METRICS_ALLOW`` networks and to the bearer
``FEDISORA_METRICS_TOKEN``, refused (403, a JSON error) to anyone else; request latency per
route class counted as requests pass; work rows, deliveries per host and stored objects read
from the database at scrape time."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from factories import local_account, rendered_video
from prometheus_client.parser import text_string_to_metric_families

from fedisora.app import create_app
from fedisora.config import load_settings
from fedisora.models import Delivery, utcnow
from fedisora.services import posts


def _app(db: str, **env: str) -> Any:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": "/nonexistent",
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
            **env,
        }
    )
    return create_app(settings, run_work=False, manage_db=False)


@asynccontextmanager
async def _from(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as c:
        yield c


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _value(found: Any, name: str, match: Callable[[dict[str, str]], bool]) -> float:
    return float(sum(v for labels, v in found.get(name, []) if match(labels)))


async def test_who_may_read_the_metrics(db: str) -> None:
    plain = _app(db)
    async with _from(plain, "127.0.0.1") as local:
        r = await local.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    async with _from(plain, "203.0.113.5") as stranger:
        r = await stranger.get("/metrics")
        assert r.status_code == 403 and "error" in r.json()
        r = await stranger.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert r.status_code == 403
    allowed = _app(db, FEDISORA_METRICS_ALLOW="203.0.113.0/24", FEDISORA_METRICS_TOKEN="t0ken")
    async with _from(allowed, "203.0.113.5") as listed:
        assert (await listed.get("/metrics")).status_code == 200
    async with _from(allowed, "198.51.100.7") as elsewhere:
        assert (await elsewhere.get("/metrics")).status_code == 403
        r = await elsewhere.get("/metrics", headers={"Authorization": "Bearer t0ken"})
        assert r.status_code == 200
        r = await elsewhere.get("/metrics", headers={"Authorization": "Bearer t0kem"})
        assert r.status_code == 403


async def test_what_the_metrics_say(db: str) -> None:
    app = _app(db)
    ann = await local_account("ann")
    await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    now = utcnow()
    await Delivery.create(
        sender=ann,
        inbox_url="https://slow.example/inbox",
        host="slow.example",
        activity_id="https://fedisora.test/a/1",
        payload={},
        state="pending",
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    async with _from(app, "127.0.0.1") as http:
        before = _samples((await http.get("/metrics")).text)
        await http.get("/api/v1/instance")
        await http.get("/api/v1/timelines/public")
        await http.get("/explore")
        after = _samples((await http.get("/metrics")).text)
    count = "fedisora_http_request_duration_seconds_count"

    def api_ok(labels: dict[str, str]) -> bool:
        return labels == {"route": "api", "method": "GET", "status": "2xx"}

    assert _value(after, count, api_ok) - _value(before, count, api_ok) == 2
    assert _value(after, count, lambda labels: labels["route"] == "web") >= 1
    assert _value(after, "fedisora_deliveries", lambda labels: labels["host"] == "slow.example")
    waiting = _value(after, "fedisora_delivery_oldest_waiting_seconds", lambda labels: True)
    assert waiting >= 0 and after["fedisora_delivery_oldest_waiting_seconds"]
    assert _value(after, "fedisora_work_rows", lambda labels: labels["table"] == "deliveries") == 1
    assert _value(after, "fedisora_objects", lambda labels: labels["kind"] == "clips") == 1
    assert _value(after, "fedisora_objects", lambda labels: labels["kind"] == "local_accounts") >= 1


async def test_cache_lookups_are_counted_per_cache(db: str) -> None:
    from fedisora.federation.keycache import TimedCache
    from fedisora.services.text import clean_name

    app = _app(db)
    lookups = "fedisora_cache_lookups_total"
    cache: TimedCache[str, int] = TimedCache(60.0, 10, name="test_cache")
    cache.put("a", 1)
    async with _from(app, "127.0.0.1") as http:
        before = _samples((await http.get("/metrics")).text)
        assert cache.get("a") == 1 and cache.get("a") == 1 and cache.get("b") is None
        name = "a name seen once " + str(id(cache))
        clean_name(name)
        clean_name(name)
        after = _samples((await http.get("/metrics")).text)

    def grew(cache_name: str, result: str) -> float:
        def match(labels: dict[str, str]) -> bool:
            return labels == {"cache": cache_name, "result": result}

        return _value(after, lookups, match) - _value(before, lookups, match)

    assert (grew("test_cache", "hit"), grew("test_cache", "miss")) == (2, 1)
    assert grew("shown_names", "hit") >= 1 and grew("shown_names", "miss") >= 1
    shown = {labels["cache"] for labels, _ in after[lookups]}
    assert {"shown_names", "test_cache", "status_entities", "account_entities"} <= shown
    assert not [name for name in after if name.startswith("fedisora_entity_cache_requests")]


async def test_each_request_has_an_id_in_its_answer_and_its_json_log_lines(db: str) -> None:
    import json
    import logging

    from fedisora.logs import REQUEST_ID, JsonFormatter, RequestIdFilter

    app = _app(db)
    async with _from(app, "127.0.0.1") as http:
        r = await http.get("/api/v1/instance", headers={"X-Request-Id": "req-42.a"})
        assert r.headers["x-request-id"] == "req-42.a"
        r = await http.get("/api/v1/instance", headers={"X-Request-Id": "<bad id> " + "x" * 80})
        made = r.headers["x-request-id"]
        # (its own: 16 hex digits, which may spell "bad" by chance, never the header's text)
        assert re.fullmatch("[0-9a-f]{16}", made), made
        other = (await http.get("/api/v1/instance")).headers["x-request-id"]
        assert other != made

    record = logging.LogRecord("fedisora.test", logging.WARNING, "x", 1, "disk %s", ("full",), None)
    token = REQUEST_ID.set("req-7")
    try:
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["message"] == "disk full" and line["request_id"] == "req-7"
    assert line["level"] == "warning" and line["logger"] == "fedisora.test" and "time" in line
