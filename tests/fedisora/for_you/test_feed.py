"""Serving For You pages: cursors bound to the viewer, range reads, re-checks, refreshes."""

from __future__ import annotations

import pytest
from for_you_factories import author, clip
from tortoise.transactions import in_transaction

from fedisora.for_you import candidates, feed
from fedisora.for_you.rank import Ranked
from fedisora.models import Account, Block, Clip, ClipView, ForYouRefresh, utcnow

SECRET = "k" * 40


async def _list(viewer: Account, clips: list[Clip], tag: str = "") -> int:
    """Write *clips* as the viewer's next generation, in order (as a refresh would)."""
    await candidates._ensure_row(viewer.pk, "idle", utcnow())
    ranked = [Ranked(c.pk, 100.0 - n, "trending", f"reason {tag}{n}") for n, c in enumerate(clips)]
    async with in_transaction() as conn:
        return await candidates.write_generation(viewer.pk, ranked, utcnow(), conn)


async def _all(viewer: Account, limit: int) -> list[feed.FeedItem]:
    items: list[feed.FeedItem] = []
    cursor = None
    for _ in range(50):
        got = await feed.page(viewer, cursor, limit, secret=SECRET)
        items += got.items
        if got.next_cursor is None:
            return items
        cursor = got.next_cursor
    raise AssertionError("the pages never ended")


def test_cursors_are_bound_to_the_viewer_and_the_secret() -> None:
    made = feed.cursor_for(7, 3, 41, secret=SECRET)
    assert feed.open_cursor(made, 7, secret=SECRET) == (3, 41)
    body, mac = made.split(".")
    tampered = [
        feed.cursor_for(7, 3, 81, secret=SECRET).split(".")[0] + "." + mac,  # moved on
        body + "." + mac[:-2] + ("AA" if not mac.endswith("AA") else "BB"),
        "garbage",
        "a.b.c",
        "x" * 500,
        "",
    ]
    with pytest.raises(feed.BadCursor, match="another account"):
        feed.open_cursor(made, 8, secret=SECRET)  # another viewer's
    with pytest.raises(feed.BadCursor):
        feed.open_cursor(made, 7, secret="another instance")
    for bad in tampered:
        with pytest.raises(feed.BadCursor):
            feed.open_cursor(bad, 7, secret=SECRET)
    assert feed.BadCursor("x").status == 400


async def test_pages_follow_the_list_in_order(db: str) -> None:
    viewer = await author("viewer")
    bob = await author("bob")
    clips = [await clip(bob) for _ in range(7)]
    await _list(viewer, clips)
    first = await feed.page(viewer, None, 3, secret=SECRET)
    assert [i.clip.pk for i in first.items] == [c.pk for c in clips[:3]]
    assert [i.reason for i in first.items] == ["reason 0", "reason 1", "reason 2"]
    assert first.next_cursor is not None
    with pytest.raises(feed.BadCursor):
        await feed.page(await author("other"), first.next_cursor, 3, secret=SECRET)
    served = await _all(viewer, 3)
    assert [i.clip.pk for i in served] == [c.pk for c in clips]


async def test_a_page_checks_its_clips_again(db: str) -> None:
    viewer = await author("viewer")
    bob, carol = await author("bob"), await author("carol")
    clips = [await clip(bob), await clip(carol), await clip(bob), await clip(bob)]
    await _list(viewer, clips)
    await Block.create(account=carol, target=viewer)  # carol blocks the viewer since
    await Clip.filter(pk=clips[2].pk).update(deleted_at=utcnow())
    await ClipView.create(account=viewer, clip=clips[3], impressions=1)  # seen meanwhile
    served = await _all(viewer, 2)
    assert [i.clip.pk for i in served] == [clips[0].pk]


async def test_a_first_visit_computes_the_list_inline(db: str) -> None:
    viewer = await author("viewer")
    bob = await author("bob", clips_count=50)  # not a new creator
    popular = await clip(bob, likes_count=5)
    got = await feed.page(viewer, None, 10, secret=SECRET)
    assert [i.clip.pk for i in got.items] == [popular.pk]
    assert got.items[0].reason == "trending on this instance"
    row = await ForYouRefresh.get(account_id=viewer.pk)
    assert row.generation == 1


async def test_a_list_running_low_asks_for_a_refresh(db: str) -> None:
    viewer = await author("viewer")
    bob = await author("bob")
    clips = [await clip(bob) for _ in range(10)]
    await _list(viewer, clips)
    await feed.page(viewer, None, 2, secret=SECRET)  # 8 left: 4 pages
    assert (await ForYouRefresh.get(account_id=viewer.pk)).state == "idle"
    page = await feed.page(viewer, None, 4, secret=SECRET)  # 6 left: under 2 pages
    assert len(page.items) == 4
    assert (await ForYouRefresh.get(account_id=viewer.pk)).state == "pending"


async def test_a_cursor_into_the_previous_generation_goes_on_then_moves_on(db: str) -> None:
    viewer = await author("viewer")
    bob = await author("bob")
    clips = [await clip(bob) for _ in range(6)]
    await _list(viewer, clips[:4], "old ")
    first = await feed.page(viewer, None, 2, secret=SECRET)
    # A refresh lands meanwhile: clips[1] again (served already) and two new ones.
    await _list(viewer, [clips[1], clips[4], clips[5]], "new ")
    second = await feed.page(viewer, first.next_cursor, 2, secret=SECRET)
    assert [i.clip.pk for i in second.items] == [clips[2].pk, clips[3].pk]
    third = await feed.page(viewer, second.next_cursor, 5, secret=SECRET)
    assert [i.clip.pk for i in third.items] == [clips[4].pk, clips[5].pk]
    assert [i.reason for i in third.items] == ["reason new 1", "reason new 2"]
    assert third.next_cursor is None  # used up
