"""``/metrics`` in the Prometheus text format (issue 20, point 4), with ``prometheus-client``.

Measured in this web process as requests pass (:class:`RequestMetrics`, a pure ASGI
middleware): request latency as a histogram per route class (``api``, ``web``, ``inbox``,
``federation``, ``media``, ``static``, ``streaming``, ``health``), method and status class;
open streaming connections (server-sent events and WebSockets) per route class; the
rendering cache's entries (:class:`EntityCacheCollector`).

Read from the database at scrape time (:class:`DatabaseCollector`: the rows are the truth,
so every web process answers the same for these): work rows by table and state, deliveries
by host and state (the busiest :data:`HOSTS` hosts), the age of each host's oldest waiting
delivery (its back-off), render jobs finished in the last hour per model family with their
render time and queue wait, accounts and clips.

Read from this process's caches at scrape time (:class:`CacheCollector`): lookups per cache
(actor keys, local inboxes, provenance roots, shown names, the rendering cache's status and
account entities) by hit or miss.

Who may read it: requests from loopback by default; from the addresses and networks in
``FEDISORA_METRICS_ALLOW``; or with ``Authorization: Bearer <FEDISORA_METRICS_TOKEN>``.
Anyone else gets a 403 (the page tells no secret, but it tells an instance's load).

Several web processes (``serve --workers N``): the per-process metrics are each process's
own (scrape each, or run one web process per port behind the proxy); the database ones are
the instance's.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterable
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedisora import cachestats
from fedisora.logs import REQUEST_ID, new_request_id

__all__ = ["HOSTS", "RequestMetrics", "metrics_endpoint", "route_class"]

HOSTS = 50
"""Delivery hosts reported, the busiest first (a bounded number of series)."""

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_SECONDS = Histogram(
    "fedisora_http_request_duration_seconds",
    "Time to answer an HTTP request, by route class, method and status class.",
    ("route", "method", "status"),
    buckets=_BUCKETS,
    registry=REGISTRY,
)
OPEN_STREAMS = Gauge(
    "fedisora_streaming_connections",
    "Streaming connections open in this web process (server-sent events, WebSockets).",
    ("route",),
    registry=REGISTRY,
)

_PREFIXES = (
    ("/api/v1/streaming", "streaming"),
    ("/feed/stream", "streaming"),
    ("/api/", "api"),
    ("/oauth/", "api"),
    ("/inbox", "inbox"),
    ("/users/", "federation"),
    ("/actor", "federation"),
    ("/.well-known/", "federation"),
    ("/nodeinfo/", "federation"),
    ("/media/", "media"),
    ("/static/", "static"),
    ("/healthz", "health"),
    ("/metrics", "health"),
)


def route_class(path: str) -> str:
    """The route class a request path belongs to (bounded label values)."""
    if path.endswith("/inbox"):
        return "inbox"
    for prefix, name in _PREFIXES:
        if path.startswith(prefix):
            return name
    return "web"


class RequestMetrics:
    """Times every HTTP request (from its arrival to its last body byte) into
    :data:`REQUEST_SECONDS`, and counts open streams; WebSockets are counted while open.
    Each request gets its id (:mod:`fedisora.logs`), in its logs and its ``X-Request-Id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        route = route_class(scope.get("path", ""))
        if scope["type"] == "websocket" or route == "streaming":
            gauge = OPEN_STREAMS.labels(route)
            gauge.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                gauge.dec()
            return
        started = time.perf_counter()
        status = [500]
        given = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"")
        request_id = new_request_id(given.decode("latin-1"))
        token = REQUEST_ID.set(request_id)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            REQUEST_ID.reset(token)
            REQUEST_SECONDS.labels(
                route, scope.get("method", "GET"), f"{status[0] // 100}xx"
            ).observe(time.perf_counter() - started)


class DatabaseCollector(Collector):
    """What the database says at scrape time (see the module docstring). Collected by
    :func:`metrics_endpoint` (asynchronously) into fixed families, then exposed."""

    def __init__(self) -> None:
        self.families: list[GaugeMetricFamily] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self.families)

    async def refresh(self, family: str) -> None:
        from tortoise.functions import Count, Min

        from fedisora.models import Account, Clip, Delivery, RenderJob, utcnow
        from fedisora.services.storage import work_models

        families: list[GaugeMetricFamily] = []
        rows = GaugeMetricFamily(
            "fedisora_work_rows", "Durable work rows by table and state.", labels=("table", "state")
        )
        for model in work_models():
            table = str(model._meta.db_table)
            for r in await model.annotate(n=Count("id")).group_by("state").values("state", "n"):
                rows.add_metric((table, str(r["state"])), float(r["n"]))
        families.append(rows)

        hosts = GaugeMetricFamily(
            "fedisora_deliveries", "Deliveries by host and state.", labels=("host", "state")
        )
        waiting = GaugeMetricFamily(
            "fedisora_delivery_oldest_waiting_seconds",
            "Age of each host's oldest delivery not yet done (its back-off and backlog).",
            labels=("host",),
        )
        busiest = (
            await Delivery.annotate(n=Count("id"))
            .group_by("host", "state")
            .order_by("-n", "host")
            .limit(HOSTS)
            .values("host", "state", "n")
        )
        for r in busiest:
            hosts.add_metric((str(r["host"]), str(r["state"])), float(r["n"]))
        now = utcnow()
        oldest = (
            await Delivery.filter(state="pending")
            .annotate(first=Min("created_at"))
            .group_by("host")
            .order_by("first")
            .limit(HOSTS)
            .values("host", "first")
        )
        for r in oldest:
            if r["first"] is not None:
                waiting.add_metric((str(r["host"]),), (now - r["first"]).total_seconds())
        families += [hosts, waiting]

        renders = GaugeMetricFamily(
            "fedisora_renders_last_hour",
            "Render jobs that reached a final state in the last hour, by model family (the "
            "family in use) and state.",
            labels=("family", "state"),
        )
        render_time = GaugeMetricFamily(
            "fedisora_render_seconds_last_hour",
            "Total seconds of rendering (on the worker) of the renders finished in the last hour.",
            labels=("family",),
        )
        queue_wait = GaugeMetricFamily(
            "fedisora_render_queue_wait_seconds_last_hour",
            "Total seconds from request to finish, rendering excluded, of the renders finished "
            "in the last hour (the wait in the queue and between steps).",
            labels=("family",),
        )
        count: dict[str, int] = {}
        spent = waited = 0.0
        recent = RenderJob.filter(finished_at__gte=now - timedelta(hours=1))
        for job in await recent.values("state", "gpu_seconds", "created_at", "finished_at"):
            count[str(job["state"])] = count.get(str(job["state"]), 0) + 1
            rendering = float(job["gpu_seconds"] or 0.0)
            spent += rendering
            total = (job["finished_at"] - job["created_at"]).total_seconds()
            waited += max(0.0, total - rendering)
        for state, n in count.items():
            renders.add_metric((family, state), float(n))
        render_time.add_metric((family,), spent)
        queue_wait.add_metric((family,), waited)
        families += [renders, render_time, queue_wait]

        totals = GaugeMetricFamily(
            "fedisora_objects", "Accounts and clips stored here.", labels=("kind",)
        )
        totals.add_metric(("local_accounts",), float(await Account.filter(domain=None).count()))
        totals.add_metric(("remote_accounts",), float(await Account.exclude(domain=None).count()))
        totals.add_metric(("clips",), float(await Clip.filter(deleted_at=None).count()))
        families.append(totals)
        self.families = families


_DATABASE = DatabaseCollector()
REGISTRY.register(_DATABASE)


class CacheCollector(Collector):
    """Lookups of this process's in-memory caches by result (:mod:`fedisora.cachestats`):
    ``rate(fedisora_cache_lookups_total{result="hit"}[5m])`` over all results is a cache's
    hit rate."""

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "fedisora_cache_lookups",
            "Lookups of this process's in-memory caches, by cache and result.",
            labels=("cache", "result"),
        )
        for cache, (hits, misses) in sorted(cachestats.snapshot().items()):
            family.add_metric((cache, "hit"), float(hits))
            family.add_metric((cache, "miss"), float(misses))
        return [family]


REGISTRY.register(CacheCollector())


class EntityCacheCollector(Collector):
    """The entries kept by the rendering cache of this web process
    (:mod:`fedisora.api.entity_cache`), per kind (``status_entities``, ``account_entities``).
    Its lookups, served (``hit``) or rendered again (``miss``: never seen, evicted, or its
    rows changed), are in ``fedisora_cache_lookups_total`` (:class:`CacheCollector`)."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from fedisora.api import entity_cache

        entries = GaugeMetricFamily(
            "fedisora_entity_cache_entries",
            "Rendered entities kept in this web process's cache, by kind.",
            labels=("cache",),
        )
        for cache in entity_cache.caches():
            entries.add_metric((cache.name,), float(len(cache)))
        return [entries]


REGISTRY.register(EntityCacheCollector())


def _allowed(request: Request) -> bool:
    settings = request.app.state.settings
    token = settings.metrics_token
    header = request.headers.get("authorization", "")
    if token and header.lower().startswith("bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return any(address in ipaddress.ip_network(n) for n in settings.metrics_allow)


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: see the module docstring for who may read it."""
    if not _allowed(request):
        return JSONResponse(
            {"error": "metrics are open to loopback, FEDISORA_METRICS_ALLOW or a bearer token"},
            403,
        )
    from render.service import model_family

    try:
        family = model_family(request.app.state.settings)
    except Exception:  # a model directory that cannot be read: the render page says why
        family = "unknown"
    await _DATABASE.refresh(family)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
