"""For You's API (fedisora.api.feedback): the player's batches, what was learned and its
reset, the settings; scopes, bad input and floods answered with the API's errors."""

from __future__ import annotations

from typing import Any

import httpx
from apihelpers import login
from factories import local_account, rendered_video

from fedisora import ratelimits
from fedisora.models import Account, Clip, ClipView, Interest, Visibility
from fedisora.services import posts

FEEDBACK = "/api/fedisora/v1/feedback"
INTERESTS = "/api/fedisora/v1/for_you/interests"
SETTINGS = "/api/fedisora/v1/for_you/settings"


async def clip(author: Account, caption: str = "", **kwargs: Any) -> Clip:
    return await posts.post_clip(author, await rendered_video(author), caption=caption, **kwargs)


async def test_feedback_batches_counted_and_bad_ones_refused(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await login(client, await local_account("ann"), scope="read write")
    bob = await local_account("bob")
    shown = await clip(bob, "#sea")
    hidden = await clip(bob, "followers", visibility=Visibility.FOLLOWERS)
    events = [
        {"clip_id": str(shown.pk), "type": "impression"},
        {"clip_id": str(shown.pk), "type": "watch", "watch_ms": 2500},
        {"clip_id": str(shown.pk), "type": "complete"},
        {"clip_id": str(hidden.pk), "type": "complete"},
        {"clip_id": "987654321", "type": "impression"},
    ]
    r = await client.post(FEEDBACK, json={"events": events}, headers=ann.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "ignored": 2}
    assert (await Clip.get(pk=shown.pk)).completions_count == 1
    assert "X-RateLimit-Remaining" in r.headers

    for body, status, message in [
        ({"events": [{"clip_id": "1", "type": "impression"}] * 101}, 422, "at most 100"),
        ({"events": [{"clip_id": "1", "type": "watch", "watch_ms": -1}]}, 422, "watch_ms"),
        ({"events": [{"clip_id": "1", "type": "watch", "watch_ms": 10**12}]}, 422, "watch_ms"),
        ({"events": [{"clip_id": "1", "type": "stare"}]}, 422, "type"),
        ({}, 422, "events is required"),
    ]:
        r = await client.post(FEEDBACK, json=body, headers=ann.headers)
        assert r.status_code == status, (body, r.text)
        assert message in r.json()["error"]
    r = await client.post(
        FEEDBACK,
        content=b"{not json",
        headers={**ann.headers, "content-type": "application/json"},
    )
    assert r.status_code == 400 and "error" in r.json()
    assert await ClipView.filter(account_id=ann.account.pk).count() == 1

    # scopes: a read-only token may not report; no token at all is a 401
    reader = await login(client, await local_account("cy"), scope="read")
    r = await client.post(FEEDBACK, json={"events": []}, headers=reader.headers)
    assert r.status_code == 403
    assert (await client.post(FEEDBACK, json={"events": []})).status_code == 401
    writer = await login(client, await local_account("dee"), scope="write:statuses")
    r = await client.post(FEEDBACK, json={"events": []}, headers=writer.headers)
    assert r.status_code == 200 and r.json() == {"accepted": 0, "ignored": 0}


async def test_floods_are_rate_limited_per_account(client: httpx.AsyncClient, db: str) -> None:
    ann = await login(client, await local_account("ann"), scope="read write")
    c = await clip(await local_account("bob"))
    store: ratelimits.Store = client.app.state.rate_limits  # type: ignore[attr-defined]
    store.set_limits({"feedback": ratelimits.Limit(2, 300.0)})
    body = {"events": [{"clip_id": str(c.pk), "type": "impression"}] * 100}
    for _ in range(2):
        assert (await client.post(FEEDBACK, json=body, headers=ann.headers)).status_code == 200
    r = await client.post(FEEDBACK, json=body, headers=ann.headers)
    assert r.status_code == 429 and r.json() == {
        "error": "Too many feedback reports; try again later"
    }
    assert "Retry-After" in r.headers
    row = await ClipView.get(account_id=ann.account.pk)
    assert row.impressions == 200
    assert (await Clip.get(pk=c.pk)).views_count == 1  # however many impressions


async def test_interests_listed_and_reset(client: httpx.AsyncClient, db: str) -> None:
    ann = await login(client, await local_account("ann"), scope="read write")
    bob = await local_account("bob")
    c = await clip(bob, "#sea #sky")
    r = await client.post(f"/api/v1/statuses/{c.pk}/favourite", headers=ann.headers)
    assert r.status_code == 200, r.text  # the Mastodon API's like teaches For You
    body = (await client.get(INTERESTS, headers=ann.headers)).json()
    assert [(e["acct"], e["account_id"]) for e in body["creators"]] == [("bob", str(bob.pk))]
    assert sorted(e["name"] for e in body["tags"]) == ["sea", "sky"]
    assert body["creators"][0]["weight"] > 2.9
    r = await client.delete(f"{INTERESTS}?kind=tag&key=sea", headers=ann.headers)
    assert r.json() == {"removed": 1}
    r = await client.delete(f"{INTERESTS}?kind=planet&key=x", headers=ann.headers)
    assert r.status_code == 422 and "kind" in r.json()["error"]
    r = await client.delete(INTERESTS, headers=ann.headers)
    assert r.json() == {"removed": 2}
    assert not await Interest.filter(account_id=ann.account.pk).exists()
    assert (await client.get(INTERESTS)).status_code == 401


async def test_settings_read_and_changed(client: httpx.AsyncClient, db: str) -> None:
    ann = await login(client, await local_account("ann"), scope="read write")
    r = await client.get(SETTINGS, headers=ann.headers)
    assert r.json() == {
        "personalised": True,
        "popular": 0.5,
        "discovery": 0.3,
        "include_unverified": False,
        "tags": [],
    }
    r = await client.patch(
        SETTINGS,
        json={"popular": 0.9, "personalised": False, "tags": ["#Cats", "dogs"]},
        headers=ann.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["popular"] == 0.9 and r.json()["tags"] == ["cats", "dogs"]
    assert r.json()["personalised"] is False and r.json()["discovery"] == 0.3
    for body, field in [
        ({"popular": 2}, "popular"),
        ({"discovery": "lots"}, "discovery"),
        ({"tags": [f"t{n}" for n in range(11)]}, "tags"),
        ({"tags": ["not a tag"]}, "hashtag"),
        ({"personalised": "maybe"}, "personalised"),
    ]:
        r = await client.patch(SETTINGS, json=body, headers=ann.headers)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]
    # form data works too (Mastodon.py style)
    r = await client.patch(SETTINGS, data={"discovery": "0.7"}, headers=ann.headers)
    assert r.status_code == 200 and r.json()["discovery"] == 0.7
    assert (await client.get(SETTINGS, headers=ann.headers)).json()["popular"] == 0.9
