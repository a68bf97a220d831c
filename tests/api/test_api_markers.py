"""Mastodon's markers: read positions saved by one app, read by another, never moved back."""

from __future__ import annotations

import asyncio

import httpx
from apihelpers import login
from factories import local_account

from fedisora.models import Marker


async def test_save_read_and_never_back(client: httpx.AsyncClient, db: str) -> None:
    ann = await login(client, await local_account("ann"))
    other_app = await login(client, ann.account)
    r = await client.get("/api/v1/markers", headers=ann.headers)
    assert r.status_code == 200 and r.json() == {}  # no timeline asked
    r = await client.get(
        "/api/v1/markers?timeline[]=home&timeline[]=notifications", headers=ann.headers
    )
    assert r.json() == {}  # none set yet

    r = await client.post(
        "/api/v1/markers",
        data={"home[last_read_id]": "105", "notifications[last_read_id]": "7"},
        headers=ann.headers,
    )
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["home"]["last_read_id"] == "105" and saved["home"]["version"] == 1
    assert saved["notifications"]["last_read_id"] == "7"
    assert saved["home"]["updated_at"].endswith("Z")

    # JSON too; another app sees the same; an older position does not move it back
    r = await client.post(
        "/api/v1/markers", json={"home": {"last_read_id": "110"}}, headers=other_app.headers
    )
    assert r.json()["home"] == {**r.json()["home"], "last_read_id": "110", "version": 2}
    r = await client.post(
        "/api/v1/markers", json={"home": {"last_read_id": "50"}}, headers=ann.headers
    )
    assert r.json()["home"]["last_read_id"] == "110" and r.json()["home"]["version"] == 2
    r = await client.get("/api/v1/markers?timeline[]=home", headers=other_app.headers)
    assert list(r.json()) == ["home"] and r.json()["home"]["last_read_id"] == "110"

    # Two saves at once: both count, the furthest wins
    await asyncio.gather(
        client.post("/api/v1/markers", json={"home": {"last_read_id": "120"}}, headers=ann.headers),
        client.post("/api/v1/markers", json={"home": {"last_read_id": "130"}}, headers=ann.headers),
    )
    row = await Marker.get(account_id=ann.account.pk, timeline="home")
    assert row.last_read_id == 130 and row.version in (3, 4)


async def test_bad_input_is_a_clear_error(client: httpx.AsyncClient, db: str) -> None:
    ann = await login(client, await local_account("ann"))
    for body in (
        {},
        {"home": {"last_read_id": "abc"}},
        {"home": {"last_read_id": True}},
        {"home": {"last_read_id": ["1"]}},
        {"notifications": {}},
    ):
        r = await client.post("/api/v1/markers", json=body, headers=ann.headers)
        assert r.status_code == 422 and set(r.json()) == {"error"}, (body, r.text)
    r = await client.get("/api/v1/markers?timeline[]=public", headers=ann.headers)
    assert r.status_code == 422 and "timeline must be one of" in r.json()["error"]
    assert (await client.get("/api/v1/markers?timeline[]=home")).status_code == 401
    read_only = await login(client, ann.account, "read")
    r = await client.post(
        "/api/v1/markers", json={"home": {"last_read_id": "1"}}, headers=read_only.headers
    )
    assert r.status_code == 403
