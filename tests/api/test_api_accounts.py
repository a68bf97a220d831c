"""Accounts: registration modes, credentials, profiles, relationships, follow requests."""

from __future__ import annotations

import httpx
import pytest
from apihelpers import app_token, login
from factories import local_account, remote_account, rendered_video

from fedisora.models import Account, User
from fedisora.services import follows, posts


def _signup(**extra: str) -> dict[str, str]:
    return {
        "username": "newbie",
        "email": "newbie@example.com",
        "password": "a long password",
        "agreement": "true",
        "locale": "en",
        **extra,
    }


@pytest.mark.parametrize("mode", ["open", "approval", "closed"])
async def test_registration_follows_the_instance_setting(
    client: httpx.AsyncClient, db: str, mode: str
) -> None:
    client.app.state.settings = client.app.state.settings.__class__(  # type: ignore[attr-defined]
        **{**client.app.state.settings.__dict__, "registrations": mode}  # type: ignore[attr-defined]
    )
    headers = await app_token(client)
    r = await client.post("/api/v1/accounts", data=_signup(reason="I make clips"), headers=headers)
    if mode == "closed":
        assert r.status_code == 403 and "closed" in r.json()["error"]
        assert not await Account.filter(username="newbie").exists()
        return
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    user = await User.get(email="newbie@example.com")
    assert user.approved is (mode == "open")
    me = await client.get(
        "/api/v1/accounts/verify_credentials", headers={"Authorization": f"Bearer {token}"}
    )
    if mode == "open":
        assert me.status_code == 200 and me.json()["username"] == "newbie"
        assert me.json()["source"]["privacy"] == "public"
    else:
        assert me.status_code == 403


async def test_registration_validation(client: httpx.AsyncClient, db: str) -> None:
    headers = await app_token(client)
    r = await client.post("/api/v1/accounts", data=_signup())  # no app token
    assert r.status_code == 401
    r = await client.post("/api/v1/accounts", data=_signup(agreement="false"), headers=headers)
    assert r.status_code == 422
    r = await client.post("/api/v1/accounts", data=_signup(username="bad name"), headers=headers)
    assert r.status_code == 422
    await local_account("taken")
    r = await client.post("/api/v1/accounts", data=_signup(username="taken"), headers=headers)
    assert r.status_code == 409 and "taken" in r.json()["error"]


async def test_credentials_profile_lookup_and_statuses(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        data={"display_name": "Alice A.", "note": "I render #waves", "locked": "true"},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["display_name"] == "Alice A." and body["locked"] is True
    assert body["source"]["note"] == "I render #waves" and "<a href" in body["note"]

    r = await client.get("/api/v1/accounts/lookup", params={"acct": "alice"})
    assert r.json()["id"] == str(alice.account.pk)
    r = await client.get("/api/v1/accounts/lookup", params={"acct": "@alice@fedisora.test"})
    assert r.json()["id"] == str(alice.account.pk)
    assert (
        await client.get("/api/v1/accounts/lookup", params={"acct": "nobody"})
    ).status_code == 404
    remote = await remote_account("zed")
    r = await client.get("/api/v1/accounts/lookup", params={"acct": "zed@remote.example"})
    assert r.json()["acct"] == "zed@remote.example" and r.json()["id"] == str(remote.pk)
    r = await client.get(f"/api/v1/accounts/{alice.account.pk}")
    assert r.json()["display_name"] == "Alice A."
    assert (await client.get("/api/v1/accounts/12345678")).status_code == 404

    ids = []
    for _ in range(3):
        media = await rendered_video(alice.account)
        r = await client.post(
            "/api/v1/statuses", data={"media_ids[]": str(media.pk)}, headers=alice.headers
        )
        ids.append(r.json()["id"])
    r = await client.post(
        "/api/v1/statuses", data={"status": "me", "in_reply_to_id": ids[0]}, headers=alice.headers
    )
    reply_id = r.json()["id"]
    r = await client.get(f"/api/v1/accounts/{alice.account.pk}/statuses")
    assert [s["id"] for s in r.json()] == [reply_id, *reversed(ids)]
    r = await client.get(
        f"/api/v1/accounts/{alice.account.pk}/statuses", params={"exclude_replies": "1"}
    )
    assert [s["id"] for s in r.json()] == list(reversed(ids))
    r = await client.get(
        f"/api/v1/accounts/{alice.account.pk}/statuses", params={"only_media": "true", "limit": 2}
    )
    assert [s["id"] for s in r.json()] == [ids[2], ids[1]]
    assert 'rel="next"' in r.headers["link"] and f"max_id={ids[1]}" in r.headers["link"]
    r = await client.get(
        f"/api/v1/accounts/{alice.account.pk}/statuses",
        params={"only_media": "true", "max_id": ids[1]},
    )
    assert [s["id"] for s in r.json()] == [ids[0]]
    assert (await client.get("/api/v1/accounts/verify_credentials")).status_code == 401


async def test_follow_requests_relationships_blocks_mutes_search(
    client: httpx.AsyncClient, db: str
) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    await Account.filter(pk=alice.account.pk).update(locked=True)
    a = alice.account.pk
    r = await client.post(f"/api/v1/accounts/{a}/follow", headers=bob.headers)
    assert r.status_code == 200
    assert r.json()["requested"] is True and r.json()["following"] is False
    r = await client.get("/api/v1/follow_requests", headers=alice.headers)
    assert [x["acct"] for x in r.json()] == ["bob"]
    me = await client.get("/api/v1/accounts/verify_credentials", headers=alice.headers)
    assert me.json()["source"]["follow_requests_count"] == 1
    r = await client.post(
        f"/api/v1/follow_requests/{bob.account.pk}/authorize", headers=alice.headers
    )
    assert r.status_code == 200 and r.json()["followed_by"] is True
    r = await client.get(
        "/api/v1/accounts/relationships",
        params={"id[]": [str(a), "nonsense"]},
        headers=bob.headers,
    )
    assert r.json() == [
        {**r.json()[0], "id": str(a), "following": True, "requested": False, "blocking": False}
    ]
    r = await client.get(f"/api/v1/accounts/{a}/followers")
    assert [x["acct"] for x in r.json()] == ["bob"]
    r = await client.get(f"/api/v1/accounts/{bob.account.pk}/following")
    assert [x["acct"] for x in r.json()] == ["alice"]
    r = await client.post(f"/api/v1/follow_requests/{bob.account.pk}/reject", headers=alice.headers)
    assert r.status_code == 404  # nothing pending any more

    r = await client.post(f"/api/v1/accounts/{a}/unfollow", headers=bob.headers)
    assert r.json()["following"] is False
    r = await client.post(f"/api/v1/accounts/{a}/mute", headers=bob.headers)
    assert r.json()["muting"] is True
    assert [x["acct"] for x in (await client.get("/api/v1/mutes", headers=bob.headers)).json()] == [
        "alice"
    ]
    r = await client.post(f"/api/v1/accounts/{a}/unmute", headers=bob.headers)
    assert r.json()["muting"] is False
    r = await client.post(f"/api/v1/accounts/{a}/block", headers=bob.headers)
    assert r.json()["blocking"] is True
    r = await client.get(
        "/api/v1/accounts/relationships",
        params={"id[]": str(bob.account.pk)},
        headers=alice.headers,
    )
    assert r.json()[0]["blocked_by"] is True
    r = await client.post(f"/api/v1/accounts/{a}/follow", headers=bob.headers)
    assert r.status_code == 403
    r = await client.get("/api/v1/accounts/search", params={"q": "ali"}, headers=bob.headers)
    assert r.json() == []  # blocked accounts do not show up
    r = await client.post(f"/api/v1/accounts/{a}/unblock", headers=bob.headers)
    r = await client.get("/api/v1/accounts/search", params={"q": "ali"}, headers=bob.headers)
    assert [x["acct"] for x in r.json()] == ["alice"]
    r = await client.post(f"/api/v1/accounts/{a}/follow", headers=alice.headers)
    assert r.status_code == 422  # yourself


async def test_fedisora_notification_types(client: httpx.AsyncClient, db: str) -> None:
    from fedisora.models import NotificationType, RenderJob
    from fedisora.services.notify import notify

    me = await login(client, await local_account("maker"))
    job = await RenderJob.create(account=me.account, state="done", spec={"prompt": "waves"})
    await notify(
        me.account,
        NotificationType.RENDER_FINISHED,
        dedupe_key=f"render:{job.pk}",
        from_account=me.account,
        render_job=job,
    )
    (note,) = (await client.get("/api/v1/notifications", headers=me.headers)).json()
    assert note["type"] == "fedisora.render_finished" and note["status"] is None
    assert note["account"]["acct"] == "maker" and note["render_job_id"] == str(job.pk)
    r = await client.get(
        "/api/v1/notifications",
        params={"exclude_types[]": "fedisora.render_finished"},
        headers=me.headers,
    )
    assert r.json() == []


async def test_avatar_and_header_uploads(client: httpx.AsyncClient, db: str) -> None:
    import io

    from PIL import Image

    me = await login(client, await local_account("painter"))
    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        files={"avatar": ("a.png", b"\x89PNG", "image/png")},
        data={"display_name": "x"},
        headers=me.headers,
    )
    assert r.status_code == 422 and "image" in r.json()["error"]
    after = (await client.get("/api/v1/accounts/verify_credentials", headers=me.headers)).json()
    assert after["display_name"] != "x"  # nothing changed

    def png(size: tuple[int, int], colour: str) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", size, colour).save(out, format="PNG")
        return out.getvalue()

    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        files={
            "avatar": ("a.png", png((64, 64), "red"), "image/png"),
            "header": ("h.png", png((300, 100), "blue"), "image/png"),
        },
        data={"display_name": "Painter"},
        headers=me.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["display_name"] == "Painter"
    assert "/media/uploads/images/" in body["avatar"] and body["avatar"] == body["avatar_static"]
    assert "/media/uploads/images/" in body["header"] and body["header"] != body["avatar"]
    served = await client.get("/media/" + body["avatar"].split("/media/", 1)[1])
    assert served.status_code == 200
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (64, 64) and image.getpixel((5, 5)) == (255, 0, 0)


async def test_signups_are_rate_limited_per_ip(client: httpx.AsyncClient, db: str) -> None:
    headers = await app_token(client)
    codes = []
    for n in range(6):
        form = _signup(username=f"user_{n}", email=f"user{n}@example.com")
        codes.append(
            (await client.post("/api/v1/accounts", data=form, headers=headers)).status_code
        )
    assert codes == [200] * 5 + [429]
    assert await Account.filter(username__startswith="user_").count() == 5


async def test_account_statuses_show_each_viewer_what_mastodon_would(
    client: httpx.AsyncClient, db: str
) -> None:
    """Public and unlisted clips for anyone, followers-only ones for followers, and any clip
    that mentions the viewer (a direct one too), as Mastodon's account timeline; all of them
    for the author (the web profile page asks the same function)."""
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    carol = await login(client, await local_account("carol"))
    await follows.follow(carol.account, alice.account)
    clips = {}
    for name, caption, visibility in (
        ("public", "hello", "public"),
        ("unlisted", "quiet", "unlisted"),
        ("followers", "friends only", "private"),
        ("to bob", "@bob just you", "direct"),
        ("to nobody", "a note to self", "direct"),
    ):
        clip = await posts.post_clip(
            alice.account,
            await rendered_video(alice.account),
            caption=caption,
            visibility=visibility,
        )
        clips[str(clip.pk)] = name

    async def seen(headers: dict[str, str] | None) -> set[str]:
        r = await client.get(f"/api/v1/accounts/{alice.account.pk}/statuses", headers=headers)
        assert r.status_code == 200, r.text
        return {clips[s["id"]] for s in r.json()}

    assert await seen(None) == {"public", "unlisted"}
    assert await seen(bob.headers) == {"public", "unlisted", "to bob"}
    assert await seen(carol.headers) == {"public", "unlisted", "followers"}
    assert await seen(alice.headers) == set(clips.values())
    await follows.block(alice.account, bob.account)
    assert await seen(bob.headers) == set()
