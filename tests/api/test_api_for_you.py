"""GET /api/fedisora/v1/timelines/for_you: Status entities with fedisora.reason, cursors."""

from __future__ import annotations

import re

import httpx
from apihelpers import login
from factories import local_account
from for_you_factories import author, clip

from fedisora.for_you import candidates
from fedisora.models import Account, Clip, ClipView, ForYouSettings

PATH = "/api/fedisora/v1/timelines/for_you"


def _next(response: httpx.Response) -> str:
    found = re.findall(r'<([^>]+)>; rel="next"', response.headers["link"])
    assert len(found) == 1, response.headers["link"]
    return str(found[0]).replace("https://fedisora.test", "")


async def _popular(who: Account, n: int) -> list[str]:
    return [str((await clip(who, likes_count=5 + i)).pk) for i in range(n)]


async def test_entities_carry_the_reason_and_pages_link_on(
    client: httpx.AsyncClient, db: str
) -> None:
    me = await login(client, await local_account("me"))
    authors = [await author(f"maker{i}", clips_count=50) for i in range(5)]
    made = [cid for who in authors for cid in await _popular(who, 1)]
    r = await client.get(PATH, params={"limit": 2}, headers=me.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page) == 2
    for status in page:
        assert status["fedisora"]["reason"] == "trending on this instance"
        assert status["media_attachments"][0]["meta"]["fedisora"]["provenance"] == "trusted"
    seen = [s["id"] for s in page]
    link = _next(r)
    assert "limit=2" in link and "max_id=" in link
    while True:
        r = await client.get(link, headers=me.headers)
        assert r.status_code == 200, r.text
        seen += [s["id"] for s in r.json()]
        if "link" not in r.headers:
            break
        link = _next(r)
    assert sorted(seen) == sorted(made) and len(set(seen)) == len(seen)

    assert (await client.get(PATH)).status_code == 401
    for bad in ("0", "many", "-3"):
        r = await client.get(PATH, params={"limit": bad}, headers=me.headers)
        assert r.status_code == 422 and "limit" in r.json()["error"]


async def test_a_cursor_of_another_account_is_refused(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account("me"))
    other = await login(client, await local_account("other"))
    await _popular(await author("maker", clips_count=50), 3)
    r = await client.get(PATH, params={"limit": 1}, headers=me.headers)
    link = _next(r)
    r = await client.get(link, headers=other.headers)
    assert r.status_code == 400
    assert "another account" in r.json()["error"]
    r = await client.get(PATH, params={"max_id": "not-a-cursor"}, headers=me.headers)
    assert r.status_code == 400 and "error" in r.json()
    r = await client.get(link, headers=me.headers)
    assert r.status_code == 200


async def test_blocked_seen_and_unverified_clips_are_not_served(
    client: httpx.AsyncClient, db: str
) -> None:
    me = await login(client, await local_account("me"))
    maker = await author("maker", clips_count=50)
    blocked = await author("blocked", clips_count=50)
    remote = await author("far", "peer.example", clips_count=50)
    kept = await _popular(maker, 2)
    seen = await clip(maker, likes_count=9)
    await ClipView.create(account=me.account, clip=seen, impressions=1)
    theirs = await _popular(blocked, 2)
    unverified = await clip(remote, provenance="unverified", likes_count=9)
    verified = await clip(remote, provenance="verified", likes_count=9)

    r = await client.post(f"/api/v1/accounts/{blocked.pk}/block", headers=me.headers)
    assert r.status_code == 200, r.text
    r = await client.get(PATH, params={"limit": 40}, headers=me.headers)
    ids = {s["id"] for s in r.json()}
    assert ids == {*kept, str(verified.pk)}
    assert not ids & {*theirs, str(seen.pk), str(unverified.pk)}

    # Opting in to unverified remote clips takes effect at the next refresh (the clips
    # served above count as shown: they are not served again).
    await ForYouSettings.create(account=me.account, include_unverified=True)
    await candidates.refresh_now(me.account)  # (what the durable refresh does)
    r = await client.get(PATH, params={"limit": 40}, headers=me.headers)
    ids = {s["id"] for s in r.json()}
    assert ids == {str(unverified.pk)}


async def test_a_mastodon_client_without_feedback_gets_new_clips_on_each_first_page(
    client: httpx.AsyncClient, db: str
) -> None:
    """A client that sends no reports: each page served counts as shown, so the next first
    page does not repeat the top of the last one, while the list has clips left."""
    me = await login(client, await local_account("me"))
    makers = [await author(f"maker{i}", clips_count=50) for i in range(6)]
    made = {cid for who in makers for cid in await _popular(who, 3)}
    pages: list[list[str]] = []
    for _ in range(4):
        r = await client.get(PATH, params={"limit": 4}, headers=me.headers)
        assert r.status_code == 200, r.text
        pages.append([s["id"] for s in r.json()])
    assert [len(p) for p in pages] == [4, 4, 4, 4]
    shown = [cid for p in pages for cid in p]
    assert len(set(shown)) == 16 and set(shown) <= made  # no clip served twice
    views = await ClipView.filter(account_id=me.account.pk).values_list("impressions", "served")
    assert sorted(views) == [(1, True)] * 16
    counts = await Clip.filter(pk__in=[int(c) for c in shown]).values("views_count")
    assert {c["views_count"] for c in counts} == {1}
    # What is left: the list is used up until its refresh brings more.
    r = await client.get(PATH, params={"limit": 4}, headers=me.headers)
    assert {s["id"] for s in r.json()} == made - set(shown)
