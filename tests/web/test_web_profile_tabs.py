"""A profile's tabs: its clips and remixes as a grid of posters, its followers and following
(accepted follows only, through the service the API lists them with), paged; hidden from a
viewer blocked either way; 404, 403 and 410 as the profile page answers."""

from __future__ import annotations

import re

import httpx
from factories import local_account, rendered_video
from webhelpers import browser, logged_in

from fedisora.models import Account, Clip
from fedisora.services import follows, posts
from web.profiles import NETWORK_PAGE


def rows(page: str) -> list[str]:
    """The accounts a followers/following page lists, by username."""
    return re.findall(
        r'<li class="account-row"[^>]*>.*?<span class="acct">@([^<]+)</span>', page, re.S
    )


async def _locked(username: str) -> Account:
    account = await local_account(username)
    await Account.filter(pk=account.pk).update(locked=True)
    return await Account.get(pk=account.pk)


async def test_grid_of_clips_and_remixes_by_visibility(web: httpx.ASGITransport) -> None:
    ann = await _locked("ann")
    bob = await local_account("bob")
    carol = await local_account("carol")
    await follows.accept_follow(ann, await follows.follow(bob, ann))
    await follows.follow(carol, ann)  # pending: carol is no follower yet
    source = await posts.post_clip(bob, await rendered_video(bob), caption="bob's waves")
    public = await posts.post_clip(ann, await rendered_video(ann), caption="open sea")
    private = await posts.post_clip(
        ann, await rendered_video(ann), caption="for friends", visibility="private"
    )
    remix = await posts.post_clip(
        ann, await rendered_video(ann), caption="my remix", remix_of=source
    )
    hidden_remix = await posts.post_clip(
        ann, await rendered_video(ann), caption="quiet remix", remix_of=source, visibility="private"
    )

    async def grid(http: httpx.AsyncClient, path: str) -> set[int]:
        r = await http.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "<video" not in r.text  # posters only: the video plays on the clip page
        return {
            int(i)
            for i in re.findall(r'<article class="grid-card[^"]*" data-clip-id="(\d+)"', r.text)
        }

    async with browser(web) as anon:
        assert await grid(anon, "/@ann") == {public.pk, remix.pk}
        assert await grid(anon, "/@ann/remixes") == {remix.pk}
        page = (await anon.get("/@ann")).text
        assert f'<a class="grid-link" href="/@ann/{public.pk}">' in page
        assert '<a href="/@ann" aria-current="page">Clips</a>' in page
        assert '<link rel="stylesheet" href="/static/pages.css">' in page
        assert "badge-remix" in page
        remixes = (await anon.get("/@ann/remixes")).text
        assert '<a href="/@ann/remixes" aria-current="page">Remixes</a>' in remixes
    async with logged_in(web, "bob") as http:  # an accepted follower
        assert await grid(http, "/@ann") == {public.pk, private.pk, remix.pk, hidden_remix.pk}
        assert await grid(http, "/@ann/remixes") == {remix.pk, hidden_remix.pk}
    async with logged_in(web, "carol") as http:  # a pending request sees what visitors see
        assert await grid(http, "/@ann") == {public.pk, remix.pk}
        assert await grid(http, "/@ann/remixes") == {remix.pk}
    assert await Clip.filter(account_id=ann.pk).count() == 4


async def test_followers_and_following_of_a_locked_account(web: httpx.ASGITransport) -> None:
    ann = await _locked("ann")
    bob = await local_account("bob")
    carol = await local_account("carol")
    dave = await local_account("dave")
    await follows.accept_follow(ann, await follows.follow(bob, ann))
    await follows.follow(carol, ann)  # pending: not listed
    await follows.follow(ann, dave)
    await follows.block(ann, dave)  # a block ends their follows both ways
    await follows.follow(ann, carol)

    async with browser(web) as anon:
        r = await anon.get("/@ann/followers")
        assert r.status_code == 200 and rows(r.text) == ["bob"]
        assert '<a href="/@ann/followers" aria-current="page">Followers</a>' in r.text
        assert '<a href="/@bob">' in r.text
        r = await anon.get("/@ann/following")
        assert r.status_code == 200 and rows(r.text) == ["carol"]
        r = await anon.get("/@bob/following")
        assert rows(r.text) == ["ann"]
        # ActivityPub clients are sent to the collections, which send a browser here
        r = await anon.get("/@ann/followers", headers={"accept": "application/activity+json"})
        assert r.status_code == 302 and r.headers["location"] == f"{ann.uri}/followers"
        r = await anon.get("/users/ann/followers")
        assert r.status_code == 303 and r.headers["location"] == "/@ann/followers"
    # someone ann blocks sees neither list (as Mastodon hides them from blocked accounts)
    async with logged_in(web, "dave") as http:
        for tab in ("followers", "following"):
            r = await http.get(f"/@ann/{tab}")
            assert r.status_code == 200 and rows(r.text) == []
            assert "does not show you whom it follows or who follows it" in r.text
    # the API lists them through the same service
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as api:
        r = await api.get(f"/api/v1/accounts/{ann.pk}/followers")
        assert [a["acct"] for a in r.json()] == ["bob"]
    hidden = await follows.network_page(dave, ann, followers=True, limit=40)
    assert hidden.hidden and hidden.accounts == []
    assert (await follows.network_page(bob, ann, followers=True, limit=40)).accounts == [bob]


async def test_network_pages_are_paged(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    fans = [await local_account(f"fan{n:02d}") for n in range(NETWORK_PAGE + 2)]
    for fan in fans:
        await follows.follow(fan, ann)
    async with browser(web) as anon:
        first = await anon.get("/@ann/followers")
        assert rows(first.text) == [f.username for f in reversed(fans)][:NETWORK_PAGE]
        older = re.search(
            r'<a rel="next" href="(/@ann/followers\?max_id=\d+)">Older</a>', first.text
        )
        assert older is not None
        second = await anon.get(older.group(1))
        assert rows(second.text) == ["fan01", "fan00"]
        assert (
            'rel="next"' not in second.text
            and '<a href="/@ann/followers">Newest</a>' in second.text
        )
        for bad in ("abc", "-1", "1.5", "9" * 40):
            assert (await anon.get(f"/@ann/followers?max_id={bad}")).status_code == 400
        assert (await anon.get("/@ann/remixes?max_id=x")).status_code == 400


async def test_wrong_names_and_unavailable_accounts(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    async with browser(web) as anon:
        for tab in ("followers", "following", "remixes"):
            assert (await anon.get(f"/@nobody/{tab}")).status_code == 404
            assert (await anon.get(f"/@no!such/{tab}")).status_code == 404
            assert (await anon.get(f"/@ANN/{tab}")).status_code == 200
        await Account.filter(pk=ann.pk).update(suspended_at=ann.created_at)
        for tab in ("followers", "following", "remixes"):
            r = await anon.get(f"/@ann/{tab}")
            assert r.status_code == 403 and "suspended" in r.text
