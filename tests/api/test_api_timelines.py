"""Timelines (home, public, tag), pagination by Link headers, trends from engagement."""

from __future__ import annotations

import re

import httpx
from apihelpers import Login, login
from factories import local_account, rendered_video

from fedisora.models import Clip


async def _clip(client: httpx.AsyncClient, me: Login, text: str = "", **extra: str) -> str:
    media = await rendered_video(me.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": text, "media_ids[]": str(media.pk), **extra},
        headers=me.headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _links(response: httpx.Response) -> dict[str, str]:
    return {
        rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["link"])
    }


async def test_home_timeline_follows_boosts_and_mutes(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    carol = await login(client, await local_account("carol"))
    await client.post(f"/api/v1/accounts/{alice.account.pk}/follow", headers=bob.headers)
    await client.post(f"/api/v1/accounts/{carol.account.pk}/follow", headers=bob.headers)
    a1 = await _clip(client, alice, "first")
    c1 = await _clip(client, carol, "carol's")
    secret = await _clip(client, alice, "followers only", visibility="private")
    r = await client.get("/api/v1/timelines/home", headers=bob.headers)
    assert [s["id"] for s in r.json()] == [secret, c1, a1]

    # carol boosts a clip by dave, whom bob does not follow: it arrives as a reblog
    dave = await login(client, await local_account("dave"))
    d1 = await _clip(client, dave, "dave's")
    await client.post(f"/api/v1/statuses/{d1}/reblog", headers=carol.headers)
    r = await client.get("/api/v1/timelines/home", headers=bob.headers)
    first = r.json()[0]
    assert first["reblog"]["id"] == d1 and first["account"]["acct"] == "carol"

    await client.post(f"/api/v1/accounts/{carol.account.pk}/mute", headers=bob.headers)
    r = await client.get("/api/v1/timelines/home", headers=bob.headers)
    assert [s["id"] for s in r.json()] == [secret, a1]
    assert (await client.get("/api/v1/timelines/home")).status_code == 401


async def test_public_timeline_pagination_and_filters(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    ids = [await _clip(client, alice, f"clip {n}") for n in range(5)]
    await _clip(client, alice, "unlisted", visibility="unlisted")
    newest_first = list(reversed(ids))

    r = await client.get("/api/v1/timelines/public", params={"limit": 2})
    assert [s["id"] for s in r.json()] == newest_first[:2]
    links = _links(r)
    assert f"max_id={newest_first[1]}" in links["next"] and "limit=2" in links["next"]
    assert f"min_id={newest_first[0]}" in links["prev"]
    r = await client.get(links["next"].replace("https://fedisora.test", ""))
    assert [s["id"] for s in r.json()] == newest_first[2:4]
    r = await client.get("/api/v1/timelines/public", params={"min_id": ids[1], "limit": 2})
    assert [s["id"] for s in r.json()] == [ids[3], ids[2]]
    r = await client.get("/api/v1/timelines/public", params={"since_id": ids[1], "limit": 2})
    assert [s["id"] for s in r.json()] == [ids[4], ids[3]]
    r = await client.get("/api/v1/timelines/public/", params={"local": "true", "only_media": "1"})
    assert len(r.json()) == 5
    r = await client.get("/api/v1/timelines/public", params={"remote": "true"})
    assert r.json() == [] and "link" not in r.headers
    r = await client.get("/api/v1/timelines/public", params={"limit": "many"})
    assert r.status_code == 422


async def test_tag_timeline_and_trends(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    w1 = await _clip(client, alice, "#waves one")
    w2 = await _clip(client, bob, "#waves #sunset two")
    s1 = await _clip(client, alice, "#Sunset only")
    r = await client.get("/api/v1/timelines/tag/waves")
    assert [s["id"] for s in r.json()] == [w2, w1]
    r = await client.get("/api/v1/timelines/tag/waves", params={"any[]": "sunset"})
    assert [s["id"] for s in r.json()] == [s1, w2, w1]
    r = await client.get("/api/v1/timelines/tag/waves", params={"all[]": "sunset"})
    assert [s["id"] for s in r.json()] == [w2]
    r = await client.get("/api/v1/timelines/tag/waves", params={"none[]": "sunset"})
    assert [s["id"] for s in r.json()] == [w1]

    assert (await client.get("/api/v1/trends/statuses")).json() == []  # no engagement yet
    await client.post(f"/api/v1/statuses/{w1}/favourite", headers=bob.headers)
    await client.post(f"/api/v1/statuses/{s1}/favourite", headers=bob.headers)
    await client.post(f"/api/v1/statuses/{s1}/reblog", headers=bob.headers)
    r = await client.get("/api/v1/trends/statuses")
    assert [s["id"] for s in r.json()] == [s1, w1]
    await _clip(client, bob, "#sunset again")
    r = await client.get("/api/v1/trends/tags")
    tags = r.json()
    assert [t["name"] for t in tags] == ["sunset", "waves"]  # 2 authors each; sunset used more
    assert tags[0]["history"][0]["uses"] == "3" and tags[0]["history"][0]["accounts"] == "2"
    assert len(tags[0]["history"]) == 7
    r = await client.get("/api/v1/tags/sunset")
    assert r.json()["name"] == "sunset"
    assert await Clip.filter(deleted_at=None).count() == 4
