"""The web feed's For You tab: the viewer's ranked list, each clip's reason, cursor pages."""

from __future__ import annotations

import re

import httpx
import pytest
from factories import local_account
from for_you_factories import author, clip
from webhelpers import browser, logged_in

from fedisora.models import (
    Block,
    Follow,
    FollowState,
    ForYouRefresh,
    Interest,
    InterestKind,
    Mute,
    TimelineEntry,
    Visibility,
    utcnow,
)


def articles(page: str) -> list[str]:
    return re.findall(r'<article class="reel[^"]*"[^>]*data-clip-id="(\d+)"', page)


def older(page: str) -> str | None:
    found = re.search(r'<a class="feed-next" rel="next" href="([^"]+)"', page)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_for_you_shows_reasons_and_pages_by_cursor(web: httpx.ASGITransport) -> None:
    await local_account("ann")
    await local_account("bea")
    makers = [await author(f"maker{i}", clips_count=50) for i in range(12)]
    made = {str((await clip(m, likes_count=3)).pk) for m in makers}
    async with logged_in(web, "ann") as http:
        first = await http.get("/")
        assert first.status_code == 200
        shown = articles(first.text)
        assert len(shown) == 10
        assert first.text.count('<p class="reel-reason">Trending on this instance</p>') == 10
        link = older(first.text)
        assert link is not None and link.startswith("/?tab=foryou&cursor=")
        second = await http.get(link)
        shown += articles(second.text)
        assert set(shown) == made and len(shown) == 12
        assert older(second.text) is None
        bad = await http.get("/?tab=foryou&cursor=nonsense")
        assert bad.status_code == 400 and "another account" in bad.text
    async with logged_in(web, "bea") as http:  # ann's cursor is not bea's
        assert (await http.get(link)).status_code == 400
    async with browser(web) as anon:  # visitors keep /explore, without reasons
        front = await anon.get("/")
        assert front.status_code == 200 and "reel-reason" not in front.text


async def test_for_you_asks_who_may_see_each_clip_once_and_its_rules_hold(
    web: httpx.ASGITransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The For You page's cards take its own check of who may see each clip (the list's rule,
    :func:`fedisora.services.visibility.visible_to` with the viewer's blocks, mutes and
    domain blocks) instead of asking again; what the viewer came to block or mute after the
    list was made still stays out. The Local tab asks in the cards, as before."""
    from web import clips as cards

    ann = await local_account("ann")
    makers = [await author(f"maker{i}", clips_count=50) for i in range(3)]
    made = {m.pk: {str((await clip(m, likes_count=3)).pk) for _ in range(2)} for m in makers}
    asked: list[str] = []
    checks = cards.visible_statuses, cards.hidden_account_ids

    async def counted_visible(*args: object, **kw: object) -> object:
        asked.append("visible")
        return await checks[0](*args, **kw)  # type: ignore[arg-type]

    async def counted_hidden(*args: object, **kw: object) -> object:
        asked.append("hidden")
        return await checks[1](*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cards, "visible_statuses", counted_visible)
    monkeypatch.setattr(cards, "hidden_account_ids", counted_hidden)
    async with logged_in(web, "ann") as http:
        first = await http.get("/")
        assert set(articles(first.text)) == set().union(*made.values())
        assert asked == []
        await Mute.create(account=ann, target=makers[1])
        await Block.create(account=makers[2], target=ann)
        again = await http.get("/")  # all seen: shown again, less what ann may not see now
        assert set(articles(again.text)) == made[makers[0].pk]
        assert asked == []
        local = await http.get("/?tab=local")
        assert set(articles(local.text)) == made[makers[0].pk]
        assert asked == ["visible", "hidden"]


async def test_n_new_counts_the_new_clips_that_would_enter_for_you(
    web: httpx.ASGITransport,
) -> None:
    """The For You tab's "N new": clips that arrived after the page was made and that the
    viewer's candidate sources and rules would list, not every new local clip."""
    ann = await local_account("ann")
    bob = await author("bob", clips_count=50)  # followed
    carol = await author("carol", clips_count=50)  # a creator ann watches
    dave = await author("dave", clips_count=50)  # nothing to ann
    far = await author("far", "peer.example", clips_count=50)  # followed, remote
    pest = await author("pest", clips_count=50)  # blocked
    for followed in (bob, far):
        await Follow.create(
            follower=ann, target=followed, state=FollowState.ACCEPTED, uri=f"f:{followed.pk}"
        )
    await Block.create(account=ann, target=pest)
    await Interest.create(account=ann, kind=InterestKind.CREATOR, key=str(carol.pk), weight=8)
    await Interest.create(account=ann, kind=InterestKind.TAG, key="cats", weight=6)
    await clip(dave, likes_count=3)  # something to show
    async with logged_in(web, "ann") as http:
        page = await http.get("/")
        found = re.search(r'data-poll="([^"]+)"', page.text)
        assert found is not None
        poll = found.group(1).replace("&amp;", "&")
        assert poll.startswith("/feed/new?tab=foryou&since_id=")
        assert (await http.get(poll)).text.strip() == ""
        await ForYouRefresh.filter(account_id=ann.pk).update(refreshed_at=utcnow())

        for who in (bob, far):
            made = await clip(who)
            await TimelineEntry.create(owner=ann, clip=made)  # (the home feed's fan-out)
        await clip(carol)
        await clip(dave, tags=("cats",))
        for _ in range(2):
            await clip(dave)  # not for ann (yet): nothing of hers leads to them
        await clip(pest, tags=("cats",))
        await clip(far, provenance="unverified", tags=("cats",))
        await clip(dave, visibility=Visibility.UNLISTED, tags=("cats",))
        notice = await http.get(poll)
        assert "4 new clips<" in notice.text and 'href="/?tab=foryou"' in notice.text
        # The list was made before they came: it is due, so the notice's link shows them.
        assert (await ForYouRefresh.get(account_id=ann.pk)).state == "pending"
        # The Local tab's count is its own: every new public local clip ann may see.
        local = await http.get(poll.replace("tab=foryou", "tab=local"))
        assert "5 new clips<" in local.text
