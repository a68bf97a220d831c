"""The web feed's For You tab: the viewer's ranked list, each clip's reason, cursor pages."""

from __future__ import annotations

import re

import httpx
from factories import local_account
from for_you_factories import author, clip
from webhelpers import browser, logged_in


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
