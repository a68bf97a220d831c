"""Grouped notifications (``/api/v2/notifications``), as Mastodon groups them: likes and boosts
of one clip, and follows, arriving within one window, are one group; other types stand alone.
The web page groups through the same service (tests/web/test_web_notifications.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from apihelpers import login
from factories import local_account, rendered_video

from fedisora.models import Notification, NotificationType
from fedisora.services import follows, interactions, posts
from fedisora.services.notifications import GROUP_SPAN


async def test_likes_of_one_clip_and_follows_are_groups(client: httpx.AsyncClient, db: str) -> None:
    ann = await login(client, await local_account("ann"))
    fans = [await local_account(f"fan{n}") for n in range(4)]
    clip = await posts.post_clip(ann.account, await rendered_video(ann.account), caption="sea")
    other = await posts.post_clip(ann.account, await rendered_video(ann.account), caption="sky")
    for fan in fans:
        await interactions.like(fan, clip)
        await follows.follow(fan, ann.account)
    await interactions.like(fans[0], other)
    await interactions.comment(fans[1], clip, "@ann lovely")  # a mention: its own group

    r = await client.get("/api/v2/notifications", headers=ann.headers)
    assert r.status_code == 200, r.text
    groups = r.json()["notification_groups"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        by_type.setdefault(g["type"], []).append(g)
    assert sorted(by_type) == ["favourite", "follow", "mention"]
    [follow_group] = by_type["follow"]
    assert follow_group["notifications_count"] == 4
    assert sorted(follow_group["sample_account_ids"]) == sorted(str(f.pk) for f in fans)
    likes = {g["status_id"]: g for g in by_type["favourite"]}
    assert likes[str(clip.pk)]["notifications_count"] == 4
    assert likes[str(other.pk)]["notifications_count"] == 1
    [mention] = by_type["mention"]
    assert mention["group_key"].startswith("ungrouped-")
    assert {a["acct"] for a in r.json()["accounts"]} >= {f"fan{n}" for n in range(4)}

    # v1 entities carry the same key, and a group is found again by it
    v1 = (await client.get("/api/v1/notifications", headers=ann.headers)).json()
    assert {n["group_key"] for n in v1 if n["type"] == "follow"} == {follow_group["group_key"]}
    key = likes[str(clip.pk)]["group_key"]
    one = await client.get(f"/api/v2/notifications/{key}", headers=ann.headers)
    assert one.json()["notification_groups"][0]["notifications_count"] == 4
    accounts = await client.get(f"/api/v2/notifications/{key}/accounts", headers=ann.headers)
    assert sorted(a["acct"] for a in accounts.json()) == sorted(f.username for f in fans)
    # grouping can be turned off per type
    r = await client.get(
        "/api/v2/notifications", params={"grouped_types[]": "follow"}, headers=ann.headers
    )
    kinds = [g["type"] for g in r.json()["notification_groups"]]
    assert kinds.count("favourite") == 5 and kinds.count("follow") == 1

    # dismissing the group dismisses its four notifications, and nothing else
    assert (
        await client.post(f"/api/v2/notifications/{key}/dismiss", headers=ann.headers)
    ).status_code == 200
    assert await Notification.filter(clip_id=clip.pk, type="favourite", dismissed=True).count() == 4
    assert await Notification.filter(clip_id=other.pk, dismissed=False).count() == 1
    for bad in (key, "favourite-s1-x", "ungrouped-x", "follow-s1-1"):
        r = await client.get(f"/api/v2/notifications/{bad}", headers=ann.headers)
        assert r.status_code == 404, bad


async def test_groups_are_windows_and_pages_never_repeat_one(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await login(client, await local_account("ann"))
    fans = [await local_account(f"fan{n}") for n in range(6)]
    clip = await posts.post_clip(ann.account, await rendered_video(ann.account))
    for fan in fans:
        await interactions.like(fan, clip)
    # the two oldest likes arrived a day earlier: a group of their own
    early = await Notification.filter(type=NotificationType.FAVOURITE).order_by("id").limit(2)
    for note in early:
        await Notification.filter(pk=note.pk).update(
            created_at=note.created_at - GROUP_SPAN - timedelta(hours=12)
        )
    # a mention between the likes, newest of all: pages of one group each
    await interactions.comment(fans[0], clip, "@ann hi")
    seen: list[tuple[str, int]] = []
    params: dict[str, str] = {"limit": "1"}
    for _ in range(5):
        r = await client.get("/api/v2/notifications", params=params, headers=ann.headers)
        groups = r.json()["notification_groups"]
        if not groups:
            break
        seen += [(g["type"], g["notifications_count"]) for g in groups]
        link = r.headers["link"]
        params = {"limit": "1", "max_id": link.split("max_id=")[1].split(">")[0]}
    assert seen == [("mention", 1), ("favourite", 4), ("favourite", 2)]
