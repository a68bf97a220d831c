"""Every list the API answers is bounded, whatever the table behind it holds.

``/api/v1/statuses/:id/context`` once answered a whole thread (tests/api/test_api_context.py);
these are the other lists of the same class: instance peers, the unread count, trends and the
tag timeline's terms. The bounds are made small here to show that each one holds.
"""

from __future__ import annotations

import httpx
import pytest
from apihelpers import login
from factories import local_account, remote_account, rendered_video

from fedisora.api import instance, timelines
from fedisora.models import NotificationType
from fedisora.services import notifications, posts
from fedisora.services.notify import notify


async def test_peers_are_bounded(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        await remote_account(f"r{n}", f"peer{n}.example")
        await remote_account(f"s{n}", f"peer{n}.example")  # one domain, listed once
    monkeypatch.setattr(instance, "MAX_PEERS", 3)
    r = await client.get("/api/v1/instance/peers")
    assert r.json() == ["peer0.example", "peer1.example", "peer2.example"]


async def test_the_unread_count_reads_at_most_its_cap(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await login(client, await local_account("ann"))
    bob = await local_account("bob")
    for n in range(7):
        await notify(ann.account, NotificationType.FOLLOW, dedupe_key=f"t:{n}", from_account=bob)
    r = await client.get("/api/v1/notifications/unread_count", headers=ann.headers)
    assert r.json() == {"count": 7}
    monkeypatch.setattr(notifications, "UNREAD_CAP", 5)  # the one count (API and web)
    r = await client.get("/api/v1/notifications/unread_count", headers=ann.headers)
    assert r.json() == {"count": 5}


async def test_trends_read_the_latest_clips_only(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await local_account("ann")
    for caption in ("#old", "#new one", "#newer one"):
        await posts.post_clip(ann, await rendered_video(ann), caption=caption)
    monkeypatch.setattr(timelines, "TREND_SCAN", 2)
    trends = (await client.get("/api/v1/trends/tags")).json()
    assert sorted(t["name"] for t in trends) == ["new", "newer"]


async def test_a_tag_timeline_takes_four_terms_of_each_kind(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="#a #e")
    terms = ["b", "c", "d", "x", "e"]  # the fifth "none" term is not taken
    r = await client.get("/api/v1/timelines/tag/a", params={"none[]": terms})
    assert r.status_code == 200 and [s["id"] for s in r.json()] == [str(clip.pk)]
    r = await client.get("/api/v1/timelines/tag/a", params={"none[]": ["e"]})
    assert r.json() == []
    r = await client.get("/api/v1/timelines/tag/a", params={"all[]": ["e", "a"]})
    assert [s["id"] for s in r.json()] == [str(clip.pk)]
