"""Instance health (database, Redis, workers) as `/healthz` and `fedisora check` see it.

The full report names hosts, process ids, queues and error texts: it is for the instance's
admins (``/healthz`` with an admin's token holding an ``admin:read`` scope, or an admin's web
session; the admin page; ``fedisora check``). Anyone else gets :func:`public_report`: the
status and whether each part is ok, nothing more.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tortoise import connections

from fedisora.config import Settings
from fedisora.models import WorkerHeartbeat, utcnow

__all__ = [
    "HEARTBEAT_STALE",
    "check_database",
    "check_redis",
    "check_workers",
    "health",
    "public_report",
]

HEARTBEAT_STALE = timedelta(seconds=30)


async def check_database() -> dict[str, Any]:
    try:
        conn = connections.get("default")
        await asyncio.wait_for(conn.execute_query("SELECT 1"), 5)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "backend": conn.capabilities.dialect}


async def check_redis(url: str | None) -> dict[str, Any]:
    if url is None:
        return {"configured": False, "ok": True, "note": "in-process runner (no Redis)"}
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await asyncio.wait_for(client.ping(), 5)
    except Exception as exc:
        return {"configured": True, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        await client.aclose()
    return {"configured": True, "ok": True}


async def check_workers(required_queues: tuple[str, ...] = ("default", "render")) -> dict[str, Any]:
    now = utcnow()
    try:
        beats = await WorkerHeartbeat.filter(last_seen__gte=now - HEARTBEAT_STALE)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "workers": []}
    served = {q for b in beats for q in b.queues.split(",") if q}
    missing = [q for q in required_queues if q not in served]
    return {
        "ok": not missing,
        "missing_queues": missing,
        "workers": [
            {
                "name": b.name,
                "kind": b.kind,
                "queues": b.queues.split(","),
                "pid": b.pid,
                "seconds_since_seen": round((now - b.last_seen).total_seconds(), 1),
                "report": b.report,
            }
            for b in beats
        ],
    }


async def health(settings: Settings) -> dict[str, Any]:
    database, redis = await asyncio.gather(check_database(), check_redis(settings.redis_url))
    workers = await check_workers() if database["ok"] else {"ok": False, "workers": []}
    ok = database["ok"] and redis["ok"] and workers["ok"]
    return {
        "status": "ok" if ok else "degraded",
        "domain": settings.domain,
        "database": database,
        "redis": redis,
        "workers": workers,
    }


PARTS = ("database", "redis", "workers")


def public_report(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may read of a :func:`health` *report*: ``ok`` or ``degraded``, and an
    ``ok`` flag per part (no host names, process ids, queues, addresses or error texts)."""
    public: dict[str, Any] = {"status": report["status"]}
    for part in PARTS:
        public[part] = {"ok": bool(report.get(part, {}).get("ok"))}
    return public
