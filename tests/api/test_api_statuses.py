"""Statuses: clips from renders, comments, remixes, interactions, threads, privacy."""

from __future__ import annotations

import httpx
from apihelpers import Login, login
from factories import local_account, rendered_video

from fedisora.models import Clip, Comment, Follow, MediaFile, Notification


async def _post_clip(client: httpx.AsyncClient, me: Login, **extra: object) -> dict:
    media = await rendered_video(me.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "A #Sunset over #waves", "media_ids[]": str(media.pk), **extra},
        headers=me.headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_post_clip_from_render_is_a_video_status(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    media = await rendered_video(alice.account)
    await MediaFile.filter(pk=media.pk).update(
        description="waves at dusk", blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj", size=300_000
    )
    r = await client.post(
        "/api/v1/statuses",
        json={"status": "A #Sunset", "media_ids": [str(media.pk)], "sensitive": True},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    status = r.json()
    assert isinstance(status["id"], str) and status["visibility"] == "public"
    assert status["sensitive"] is True and status["in_reply_to_id"] is None
    assert status["account"]["acct"] == "alice" and status["account"]["id"] == str(alice.account.pk)
    assert status["tags"] == [{"name": "sunset", "url": "https://fedisora.test/tags/sunset"}]
    (video,) = status["media_attachments"]
    assert video["type"] == "video" and video["id"] == str(media.pk)
    assert video["url"] == f"https://fedisora.test/media/{media.file}"
    assert video["description"] == "waves at dusk"
    assert video["blurhash"] == "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
    original = video["meta"]["original"]
    assert original["width"] == 256 and original["height"] == 448
    assert original["duration"] == 3.0 and original["frame_rate"] == "16/1"
    assert original["bitrate"] == 800_000
    assert video["meta"]["small"]["height"] == 400
    assert status["favourited"] is False and status["pinned"] is False
    assert status["quote"] is None and status["quote_approval"]["automatic"] == ["public"]

    # The same media cannot be posted twice; other people's media cannot be posted at all.
    r = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(media.pk)}, headers=alice.headers
    )
    assert r.status_code == 422 and "already posted" in r.json()["error"]
    bob = await login(client, await local_account("bob"))
    r = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(media.pk)}, headers=bob.headers
    )
    assert r.status_code == 422


async def test_posting_rules(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account())
    r = await client.post("/api/v1/statuses", data={"status": "just text"}, headers=me.headers)
    assert r.status_code == 422 and "media_ids" in r.json()["error"]
    unsigned = await rendered_video(me.account, state="unverified")
    r = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(unsigned.pk)}, headers=me.headers
    )
    assert r.status_code == 422 and "AI-only" in r.json()["error"]
    good = await rendered_video(me.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"media_ids[]": str(good.pk), "visibility": "everyone"},
        headers=me.headers,
    )
    assert r.status_code == 422 and "visibility" in r.json()["error"]
    r = await client.post("/api/v1/statuses", data={"media_ids[]": str(good.pk)})
    assert r.status_code == 401
    assert await Clip.all().count() == 0


async def test_idempotency_key_returns_the_first_status(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account())
    media = await rendered_video(me.account)
    headers = {**me.headers, "Idempotency-Key": "retry-1"}
    first = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(media.pk)}, headers=headers
    )
    again = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(media.pk)}, headers=headers
    )
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert await Clip.all().count() == 1


async def test_reply_context_favourite_and_notifications(
    client: httpx.AsyncClient, db: str
) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    clip = await _post_clip(client, alice)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "so good", "in_reply_to_id": clip["id"]},
        headers=bob.headers,
    )
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["in_reply_to_id"] == clip["id"]
    assert reply["in_reply_to_account_id"] == str(alice.account.pk)
    assert reply["media_attachments"] == [] and reply["content"] == "<p>so good</p>"
    r = await client.post(
        "/api/v1/statuses",
        json={"status": "@bob thanks", "in_reply_to_id": reply["id"]},
        headers=alice.headers,
    )
    nested = r.json()
    assert nested["in_reply_to_id"] == reply["id"]
    assert nested["in_reply_to_account_id"] == str(bob.account.pk)
    assert nested["mentions"][0]["acct"] == "bob"

    ctx = (await client.get(f"/api/v1/statuses/{clip['id']}/context")).json()
    assert ctx["ancestors"] == []
    assert [s["id"] for s in ctx["descendants"]] == [reply["id"], nested["id"]]
    ctx = (await client.get(f"/api/v1/statuses/{nested['id']}/context/")).json()
    assert [s["id"] for s in ctx["ancestors"]] == [clip["id"], reply["id"]]

    r = await client.post(f"/api/v1/statuses/{clip['id']}/favourite", headers=bob.headers)
    assert r.status_code == 200
    assert r.json()["favourited"] is True and r.json()["favourites_count"] == 1
    r = await client.get(f"/api/v1/statuses/{clip['id']}/favourited_by")
    assert [a["acct"] for a in r.json()] == ["bob"]
    r = await client.get("/api/v1/favourites", headers=bob.headers)
    assert [s["id"] for s in r.json()] == [clip["id"]]

    r = await client.get("/api/v1/notifications", headers=alice.headers)
    notes = r.json()
    assert [n["type"] for n in notes] == ["favourite", "mention"]
    assert notes[0]["account"]["acct"] == "bob" and notes[0]["status"]["id"] == clip["id"]
    assert notes[1]["status"]["id"] == reply["id"]
    r = await client.get(
        "/api/v1/notifications", params={"types[]": "mention"}, headers=alice.headers
    )
    assert [n["type"] for n in r.json()] == ["mention"]
    one = await client.get(f"/api/v1/notifications/{notes[0]['id']}", headers=alice.headers)
    assert one.json()["id"] == notes[0]["id"]
    # Another user cannot read or dismiss alice's notifications.
    r = await client.get(f"/api/v1/notifications/{notes[0]['id']}", headers=bob.headers)
    assert r.status_code == 404
    r = await client.post(f"/api/v1/notifications/{notes[0]['id']}/dismiss", headers=alice.headers)
    assert r.status_code == 200
    r = await client.get("/api/v1/notifications", headers=alice.headers)
    assert [n["type"] for n in r.json()] == ["mention"]
    grouped = (await client.get("/api/v2/notifications", headers=alice.headers)).json()
    (group,) = grouped["notification_groups"]
    assert group["group_key"] == f"ungrouped-{notes[1]['id']}" and group["type"] == "mention"
    assert group["status_id"] == reply["id"] and group["sample_account_ids"] == [
        str(bob.account.pk)
    ]
    assert [s["id"] for s in grouped["statuses"]] == [reply["id"]]
    assert [a["acct"] for a in grouped["accounts"]] == ["bob"]
    r = await client.get(f"/api/v2/notifications/{group['group_key']}", headers=alice.headers)
    assert r.json()["notification_groups"] == [group]
    r = await client.get(f"/api/v2/notifications/{group['group_key']}", headers=bob.headers)
    assert r.status_code == 404
    r = await client.get("/api/v2/notifications/grouped-1", headers=alice.headers)
    assert r.status_code == 404
    await client.post("/api/v1/notifications/clear", headers=alice.headers)
    assert (await client.get("/api/v1/notifications", headers=alice.headers)).json() == []
    assert await Notification.filter(dismissed=False).count() == 1  # bob's mention

    r = await client.post(f"/api/v1/statuses/{clip['id']}/unfavourite", headers=bob.headers)
    assert r.json()["favourited"] is False and r.json()["favourites_count"] == 0


async def test_private_statuses_are_404_for_others(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    secret = await _post_clip(client, alice, visibility="private")
    for path in ("", "/context", "/favourited_by"):
        r = await client.get(f"/api/v1/statuses/{secret['id']}{path}", headers=bob.headers)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
        r = await client.get(f"/api/v1/statuses/{secret['id']}{path}")
        assert r.status_code == 404
    for action in ("favourite", "reblog", "bookmark"):
        r = await client.post(f"/api/v1/statuses/{secret['id']}/{action}", headers=bob.headers)
        assert r.status_code == 404
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "hi", "in_reply_to_id": secret["id"]},
        headers=bob.headers,
    )
    assert r.status_code == 404
    assert await Comment.all().count() == 0
    # garbage ids are unknown ids, never a 500
    for bad in ("abc", "-1", "99999999999999999999999"):
        r = await client.get(f"/api/v1/statuses/{bad}", headers=bob.headers)
        assert r.status_code == 404
    # once bob follows alice (accepted), he sees it
    await client.post(f"/api/v1/accounts/{alice.account.pk}/follow", headers=bob.headers)
    assert await Follow.filter(follower_id=bob.account.pk).count() == 1
    r = await client.get(f"/api/v1/statuses/{secret['id']}", headers=bob.headers)
    assert r.status_code == 200


async def test_remix_quote_reblog_bookmark_pin_edit_delete(
    client: httpx.AsyncClient, db: str
) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    source = await _post_clip(client, alice)
    remix = await _post_clip(client, bob, quoted_status_id=source["id"], status="my take")
    assert remix["quote"]["state"] == "accepted"
    assert remix["quote"]["quoted_status"]["id"] == source["id"]
    assert remix["quote"]["quoted_status"]["media_attachments"][0]["type"] == "video"
    r = await client.get(f"/api/v1/statuses/{source['id']}", headers=alice.headers)
    assert r.json()["quotes_count"] == 1
    notes = (await client.get("/api/v1/notifications", headers=alice.headers)).json()
    assert notes[0]["type"] == "quote" and notes[0]["status"]["id"] == remix["id"]

    r = await client.post(f"/api/v1/statuses/{source['id']}/reblog", headers=bob.headers)
    assert r.status_code == 200, r.text
    wrapper = r.json()
    assert wrapper["reblog"]["id"] == source["id"] and wrapper["account"]["acct"] == "bob"
    assert wrapper["reblog"]["reblogged"] is True and wrapper["id"] != source["id"]
    r = await client.get(f"/api/v1/statuses/{source['id']}/reblogged_by")
    assert [a["acct"] for a in r.json()] == ["bob"]
    r = await client.post(f"/api/v1/statuses/{source['id']}/unreblog", headers=bob.headers)
    assert r.json()["reblogged"] is False and r.json()["reblogs_count"] == 0

    r = await client.post(f"/api/v1/statuses/{source['id']}/bookmark", headers=bob.headers)
    assert r.json()["bookmarked"] is True
    r = await client.get("/api/v1/bookmarks", headers=bob.headers)
    assert [s["id"] for s in r.json()] == [source["id"]]
    await client.post(f"/api/v1/statuses/{source['id']}/unbookmark", headers=bob.headers)
    assert (await client.get("/api/v1/bookmarks", headers=bob.headers)).json() == []

    r = await client.post(f"/api/v1/statuses/{source['id']}/pin", headers=bob.headers)
    assert r.status_code == 422
    r = await client.post(f"/api/v1/statuses/{source['id']}/pin", headers=alice.headers)
    assert r.status_code == 200 and r.json()["pinned"] is True
    r = await client.get(f"/api/v1/accounts/{alice.account.pk}/statuses", params={"pinned": "true"})
    assert [s["id"] for s in r.json()] == [source["id"]]

    r = await client.put(
        f"/api/v1/statuses/{source['id']}",
        data={"status": "edited #caption", "spoiler_text": "cw"},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["edited_at"] is not None and edited["spoiler_text"] == "cw"
    assert edited["sensitive"] is True and [t["name"] for t in edited["tags"]] == ["caption"]
    r = await client.put(
        f"/api/v1/statuses/{source['id']}", data={"status": "hijack"}, headers=bob.headers
    )
    assert r.status_code == 403
    r = await client.get(f"/api/v1/statuses/{source['id']}/source", headers=alice.headers)
    assert r.json()["text"] == "edited #caption"

    r = await client.delete(f"/api/v1/statuses/{source['id']}", headers=bob.headers)
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/statuses/{source['id']}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["text"] == "edited #caption"
    assert (await client.get(f"/api/v1/statuses/{source['id']}")).status_code == 404
    r = await client.get(f"/api/v1/statuses/{remix['id']}", headers=bob.headers)
    assert r.json()["quote"] == {"state": "deleted", "quoted_status": None}
