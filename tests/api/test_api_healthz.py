"""``/healthz``: the status for anyone, the details for admins only.

It once showed every worker's host name, process id and queues, and the database's and
Redis's error texts, to anyone. Now an anonymous caller (or one whose token is bad, not an
admin's, or lacks an ``admin:`` scope) reads ``ok``/``degraded`` and one ``ok`` flag per part;
an admin's token with ``admin:read``, or an admin's web session, reads the full report.
"""

from __future__ import annotations

from typing import Any

import httpx
from apihelpers import log_in_browser, login
from factories import local_account

from fedisora.models import WorkerHeartbeat

SECRETS = ("secret-host-7", "4242", "arq", "default,render", "fedisora.test", "backend")
PUBLIC_OK = {
    "status": "ok",
    "database": {"ok": True},
    "redis": {"ok": True},
    "workers": {"ok": True},
}


def _public(r: httpx.Response, expected: dict[str, Any], status: int = 200) -> None:
    assert r.status_code == status
    assert r.json() == expected
    assert r.headers["cache-control"] == "no-store"
    for word in SECRETS:
        assert word not in r.text, word


async def test_anonymous_callers_get_the_status_only(client: httpx.AsyncClient, db: str) -> None:
    root = await local_account("root", admin=True)
    pat = await local_account("pat")
    await WorkerHeartbeat.create(
        name="secret-host-7:4242", kind="arq", pid=4242, queues="default,render"
    )
    _public(await client.get("/healthz"), PUBLIC_OK)
    _public(await client.get("/healthz", headers={"Authorization": "Bearer nope"}), PUBLIC_OK)
    _public(await client.get("/healthz", params={"access_token": "nope"}), PUBLIC_OK)

    # Tokens that are not an admin's with an admin scope read the public report too.
    admin_read = "read admin:read"
    not_admin = await login(client, pat, admin_read, app_scopes=admin_read)
    no_scope = await login(client, root, "read", app_scopes=admin_read)
    for caller in (not_admin, no_scope):
        _public(await client.get("/healthz", headers=caller.headers), PUBLIC_OK)

    admin = await login(client, root, admin_read, app_scopes=admin_read)
    full = (await client.get("/healthz", headers=admin.headers)).json()
    assert full["status"] == "ok" and full["domain"] == "fedisora.test"
    [worker] = full["workers"]["workers"]
    assert (worker["name"], worker["pid"], worker["queues"]) == (
        "secret-host-7:4242",
        4242,
        ["default", "render"],
    )
    assert full["database"]["backend"] in ("sqlite", "postgres")


async def test_an_admin_web_session_reads_the_details(client: httpx.AsyncClient, db: str) -> None:
    await local_account("root", admin=True)
    await local_account("pat")
    await WorkerHeartbeat.create(name="secret-host-7:4242", kind="arq", pid=4242, queues="default")
    degraded = {**PUBLIC_OK, "status": "degraded", "workers": {"ok": False}}
    _public(await client.get("/healthz"), degraded, 503)

    await log_in_browser(client, "pat")
    _public(await client.get("/healthz"), degraded, 503)

    client.cookies.clear()
    await log_in_browser(client, "root")
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["workers"]["workers"][0]["pid"] == 4242
