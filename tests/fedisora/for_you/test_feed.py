"""Serving For You pages: cursors bound to the viewer, range reads, re-checks, refreshes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from for_you_factories import author, clip
from tortoise.transactions import in_transaction

from fedisora.for_you import candidates, feed, signals
from fedisora.for_you.rank import Ranked
from fedisora.models import Account, Block, Clip, ClipView, ForYouRefresh, utcnow

SECRET = "k" * 40


async def _list(viewer: Account, clips: list[Clip], tag: str = "") -> int:
    """Write *clips* as the viewer's next generation, in order (as a refresh would)."""
    await candidates._ensure_row(viewer.pk, "idle", utcnow())
    ranked = [Ranked(c.pk, 100.0 - n, "trending", f"reason {tag}{n}") for n, c in enumerate(clips)]
    async with in_transaction() as conn:
        return await candidates.write_generation(viewer.pk, ranked, utcnow(), conn)


async def _all(viewer: Account, limit: int, cursor: str | None = None) -> list[feed.FeedItem]:
    items: list[feed.FeedItem] = []
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
    served = first.items + await _all(viewer, 3, first.next_cursor)
    assert [i.clip.pk for i in served] == [c.pk for c in clips]


async def test_served_clips_count_as_shown_once(db: str) -> None:
    """A page's clips are impressions for its viewer (a Mastodon client reports none): the
    next first page goes on with other clips, each clip's views move once, and the player's
    own impression report of a served clip later is the same impression."""
    viewer = await author("viewer")
    makers = [await author(f"maker{n}") for n in range(4)]
    clips = [await clip(makers[n % 4]) for n in range(30)]
    await _list(viewer, clips)
    first = await feed.page(viewer, None, 3, secret=SECRET)
    again = await feed.page(viewer, None, 3, secret=SECRET)  # no cursor, no reports
    assert [i.clip.pk for i in first.items] == [c.pk for c in clips[:3]]
    assert [i.clip.pk for i in again.items] == [c.pk for c in clips[3:6]]
    rows = await ClipView.filter(account_id=viewer.pk).order_by("clip_id")
    assert [(r.clip_id, r.impressions, r.served) for r in rows] == [
        (c.pk, 1, True) for c in sorted(clips[:6], key=lambda c: c.pk)
    ]
    views = dict(
        await Clip.filter(pk__in=[c.pk for c in clips[:7]]).values_list("id", "views_count")
    )
    assert views == {**{c.pk: 1 for c in clips[:6]}, clips[6].pk: 0}

    # The web player reports what it showed: no second impression, no second view.
    shown = clips[0]
    events = [{"clip_id": str(shown.pk), "type": "impression"}]
    await signals.record_feedback(viewer, [*events, {"clip_id": str(shown.pk), "type": "skip"}])
    row = await ClipView.get(account_id=viewer.pk, clip_id=shown.pk)
    assert (row.impressions, row.skips, row.served) == (1, 1, False)
    await signals.record_feedback(viewer, events)  # a replay shown again: that one counts
    row = await ClipView.get(account_id=viewer.pk, clip_id=shown.pk)
    assert row.impressions == 2
    counted = await Clip.get(pk=shown.pk)
    assert (counted.views_count, counted.skips_count) == (1, 1)

    # A first page after many pages were served still finds the clips left (reads double).
    for _ in range(6):
        await feed.page(viewer, None, 3, secret=SECRET)
    late = await feed.page(viewer, None, 3, secret=SECRET)
    assert [i.clip.pk for i in late.items] == [c.pk for c in clips[24:27]]


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


async def _made_ago(viewer: Account, ago: timedelta) -> None:
    await ForYouRefresh.filter(account_id=viewer.pk).update(refreshed_at=utcnow() - ago)


async def test_a_list_running_low_asks_for_a_refresh(db: str) -> None:
    viewer = await author("viewer")
    bob = await author("bob")
    clips = [await clip(bob) for _ in range(10)]
    await _list(viewer, clips)
    await _made_ago(viewer, feed.AGAIN_AFTER + timedelta(seconds=5))
    await feed.page(viewer, None, 2, secret=SECRET)  # 8 left: 4 pages
    assert (await ForYouRefresh.get(account_id=viewer.pk)).state == "idle"
    page = await feed.page(viewer, None, 4, secret=SECRET)  # 6 left: under 2 pages
    assert len(page.items) == 4
    assert (await ForYouRefresh.get(account_id=viewer.pk)).state == "pending"


async def test_a_list_of_every_clip_made_a_moment_ago_is_not_made_again_at_each_page(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small instance: the list holds every clip there is, so each page runs low. Within
    AGAIN_AFTER of its making no refresh is asked for (it would find at most the clips
    posted since); after it, or when the list was full (more clips than it holds), one is."""
    viewer = await author("viewer")
    bob = await author("bob")
    clips = [await clip(bob) for _ in range(10)]
    await _list(viewer, clips)
    await _made_ago(viewer, feed.AGAIN_AFTER - timedelta(seconds=5))
    for _ in range(3):
        await feed.page(viewer, None, 4, secret=SECRET)
        assert (await ForYouRefresh.get(account_id=viewer.pk)).state == "idle"
    await _made_ago(viewer, feed.AGAIN_AFTER + timedelta(seconds=5))
    await feed.page(viewer, None, 4, secret=SECRET)
    assert (await ForYouRefresh.get(account_id=viewer.pk)).state == "pending"
    # A full list (as long as a list may be): there may be more clips than it held.
    other = await author("other")
    await _list(other, clips)
    monkeypatch.setattr(candidates, "LIST_SIZE", len(clips))
    await feed.page(other, None, 4, secret=SECRET)
    assert (await ForYouRefresh.get(account_id=other.pk)).state == "pending"


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


async def test_when_everything_was_seen_the_first_page_shows_it_again(db: str) -> None:
    """A small instance, or a long session: every clip on the list was served. The next first
    page shows them again, best first, rather than an empty feed; a clip the viewer said
    "not interested" to never comes back."""
    viewer = await author("viewer")
    makers = [await author(f"maker{n}") for n in range(3)]
    clips = [await clip(makers[n]) for n in range(3)]
    await _list(viewer, clips)
    first = await feed.page(viewer, None, 5, secret=SECRET)
    assert [i.clip.pk for i in first.items] == [c.pk for c in clips]
    await signals.not_interested(viewer, clips[1])
    again = await feed.page(viewer, None, 5, secret=SECRET)
    assert [i.clip.pk for i in again.items] == [clips[0].pk, clips[2].pk]
    rows = await ClipView.filter(account_id=viewer.pk, clip_id=clips[0].pk)
    assert [r.impressions for r in rows] == [1]  # shown again: not a second impression


async def test_a_refresh_after_everything_was_seen_keeps_the_seen_clips(db: str) -> None:
    """The durable refresh after the viewer saw every candidate writes a list that still
    holds them (few unseen left), so the first page is not empty."""
    viewer = await author("viewer")
    makers = [await author(f"maker{n}") for n in range(3)]
    clips = [await clip(makers[n]) for n in range(3)]
    await candidates.refresh_now(viewer)
    first = await feed.page(viewer, None, 5, secret=SECRET)
    assert {i.clip.pk for i in first.items} == {c.pk for c in clips}
    await candidates.refresh_now(viewer)  # as the runner would, all three seen now
    again = await feed.page(viewer, None, 5, secret=SECRET)
    assert {i.clip.pk for i in again.items} == {c.pk for c in clips}


async def test_a_first_page_of_seen_clips_asks_about_each_clip_once(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything on the list was seen: the page's first pass skips every clip, and the
    second shows them again. Each clip is checked once, and who may see a clip is asked only
    of the clips shown (once each); the rules still hold (a suspended author's clips stay
    out)."""
    viewer = await author("viewer")
    makers = [await author(f"maker{n}") for n in range(3)]
    clips = [await clip(makers[n % 3]) for n in range(7)]
    await _list(viewer, clips)
    for c in clips:
        await ClipView.create(account=viewer, clip=c, impressions=1)
    await Account.filter(pk=makers[1].pk).update(suspended_at=utcnow())
    checked: list[int] = []
    asked: list[int] = []
    check, visible_to = candidates.check, feed.visible_to

    async def counted_check(viewer: Account, ids: list[int], *args: object, **kw: bool) -> object:
        checked.extend(ids)
        return await check(viewer, ids, *args, **kw)  # type: ignore[arg-type]

    async def counted_visible_to(viewer: Account, items: list[Clip], **kw: object) -> object:
        asked.extend(c.pk for c in items)
        return await visible_to(viewer, items, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(candidates, "check", counted_check)
    monkeypatch.setattr(feed, "visible_to", counted_visible_to)
    again = await feed.page(viewer, None, 5, secret=SECRET)
    assert [i.clip.pk for i in again.items] == [clips[n].pk for n in (0, 2, 3, 5, 6)]
    assert sorted(checked) == sorted(c.pk for c in clips)
    assert sorted(asked) == sorted(c.pk for c in clips)  # each once: all were candidates
