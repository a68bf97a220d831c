"""For You's candidate sources, the rules every candidate passes, and the durable refresh."""

from __future__ import annotations

from datetime import timedelta

import pytest
from for_you_factories import author, clip

from fedisora.config import load_settings
from fedisora.for_you import candidates, rank
from fedisora.models import (
    Account,
    AccountDomainBlock,
    Block,
    ClipView,
    DomainBlock,
    DomainSeverity,
    Follow,
    FollowState,
    ForYouCandidate,
    ForYouRefresh,
    ForYouSettings,
    Interest,
    InterestKind,
    Like,
    Mute,
    TimelineEntry,
    Visibility,
    utcnow,
)
from fedisora.services import domain_blocks
from fedisora.work.engine import AdvanceResult, Engine


def _engine() -> Engine:
    settings = load_settings({"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": "/x"})
    return Engine(candidates.machines(settings))


async def _follow(viewer: Account, target: Account) -> None:
    await Follow.create(
        follower=viewer, target=target, state=FollowState.ACCEPTED, uri=f"f:{target.pk}"
    )


async def test_each_source_finds_its_clips(db: str) -> None:
    now = utcnow()
    viewer = await author("viewer")
    bob, carol, dave, erin, newbie = [
        await author(n) for n in ("bob", "carol", "dave", "erin", "newbie")
    ]
    for who in (bob, carol, dave, erin):
        await Account.filter(pk=who.pk).update(clips_count=50)
        who.clips_count = 50
    followed = await clip(bob)
    await _follow(viewer, bob)
    await TimelineEntry.create(owner=viewer, clip=followed)
    by_carol = await clip(carol)
    await Interest.create(account=viewer, kind=InterestKind.CREATOR, key=str(carol.pk), weight=8)
    cats = await clip(dave, tags=("cats",))
    await Interest.create(account=viewer, kind=InterestKind.TAG, key="cats", weight=6)
    liked = await clip(dave)
    await Like.create(account=viewer, clip=liked, target_key=f"clip:{liked.pk}", uri="l:1")
    remix = await clip(erin, remix_of=liked)
    trending = await clip(erin, likes_count=4)
    fresh = await clip(newbie)
    picked = await clip(erin, tags=("dogs",))
    await ForYouSettings.create(account=viewer, tags=["Dogs"])

    features, taste = await candidates.gather(viewer, now)
    by_id = {f.clip_id: f for f in features}
    assert "following" in by_id[followed.pk].sources and by_id[followed.pk].author_followed
    assert "creator" in by_id[by_carol.pk].sources
    assert "tag" in by_id[cats.pk].sources and by_id[cats.pk].tags == ("cats",)
    assert "remix" in by_id[remix.pk].sources and by_id[remix.pk].remix_of_liked
    assert "trending" in by_id[trending.pk].sources
    assert "discovery" in by_id[fresh.pk].sources and by_id[fresh.pk].author_new
    assert "cold_start" in by_id[picked.pk].sources
    assert by_id[by_carol.pk].author == "@carol"
    assert taste.creators[carol.pk] > 7 and taste.tags["cats"] > 5
    assert taste.liked_by_creator == {dave.pk: 1} and taste.picked_tags == ("dogs",)
    assert taste.viewer == viewer.pk


async def test_remixes_of_liked_and_watched_clips_are_found_by_their_index(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The remix source reads the remixes of what the viewer liked or finished, however many
    clips were posted since (it once looked only among the newest public clips)."""
    monkeypatch.setattr(candidates, "RECENT_SCAN", 3)
    now = utcnow()
    viewer = await author("viewer")
    dave, erin = await author("dave", clips_count=50), await author("erin", clips_count=50)
    liked, finished, skipped = await clip(dave), await clip(dave), await clip(dave)
    await Like.create(account=viewer, clip=liked, target_key=f"clip:{liked.pk}", uri="l:1")
    await ClipView.create(account=viewer, clip=finished, impressions=1, completions=1)
    await ClipView.create(account=viewer, clip=skipped, impressions=1, skips=1)
    of_liked = await clip(erin, remix_of=liked)
    of_finished = await clip(erin, remix_of=finished)
    of_skipped = await clip(erin, remix_of=skipped)
    private = await clip(erin, remix_of=liked, visibility=Visibility.FOLLOWERS)
    for _ in range(5):  # newer clips than the remixes: more than RECENT_SCAN
        await clip(dave)

    features, _ = await candidates.gather(viewer, now)
    by_id = {f.clip_id: f for f in features if "remix" in f.sources}
    assert set(by_id) == {of_liked.pk, of_finished.pk}
    assert by_id[of_liked.pk].remix_of_liked and not by_id[of_liked.pk].remix_of_watched
    assert by_id[of_finished.pk].remix_of_watched and not by_id[of_finished.pk].remix_of_liked
    assert of_skipped.pk not in by_id and private.pk not in by_id
    taste = rank.Taste(creators={}, tags={}, viewer=viewer.pk)
    _, source, reason = rank.score(by_id[of_finished.pk], taste, now)
    assert (source, reason) == ("remix", "a remix of a clip you watched")
    _, source, reason = rank.score(by_id[of_liked.pk], taste, now)
    assert (source, reason) == ("remix", "a remix of a clip you liked")


async def test_rules_leave_out_what_timelines_leave_out(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a list with few unseen clips keeps the seen ones too: tests/fedisora/for_you/test_feed)
    monkeypatch.setattr(candidates, "REFILL_BELOW", 0)
    now = utcnow()
    viewer = await author("viewer")
    ok = await author("ok")
    blocked, blocker, muted, silenced = [
        await author(n) for n in ("blocked", "blocker", "muted", "silenced")
    ]
    await Block.create(account=viewer, target=blocked)
    await Block.create(account=blocker, target=viewer)
    await Mute.create(account=viewer, target=muted)
    await Account.filter(pk=silenced.pk).update(silenced_at=now)
    suspended = await author("gone", suspended_at=now)
    peer_verified = await author("v", "peer.example")
    peer_unverified = await author("u", "peer.example")
    peer_invalid = await author("i", "peer.example")
    theirs = await author("t", "theirs.example")
    silenced_domain = await author("s", "silenced.example")
    await AccountDomainBlock.create(account=viewer, domain="theirs.example")
    await DomainBlock.create(domain="silenced.example", severity=DomainSeverity.SILENCE)
    domain_blocks.reset()

    shown = [await clip(ok, likes_count=1), await clip(peer_verified, likes_count=1)]
    unverified = await clip(peer_unverified, provenance="unverified", likes_count=1)
    hidden = [
        await clip(who, likes_count=1)
        for who in (blocked, blocker, muted, silenced, suspended, theirs, silenced_domain)
    ]
    hidden.append(await clip(peer_invalid, provenance="invalid", likes_count=1))
    hidden.append(await clip(viewer, likes_count=1))  # one's own
    hidden.append(await clip(ok, likes_count=1, deleted_at=now))
    hidden.append(await clip(ok, likes_count=1, visibility=Visibility.FOLLOWERS))
    hidden.append(await clip(ok, likes_count=1, visibility=Visibility.UNLISTED))
    seen = await clip(ok, likes_count=1)
    await ClipView.create(account=viewer, clip=seen, impressions=1)
    not_interested = await clip(ok, likes_count=1)
    await ClipView.create(account=viewer, clip=not_interested, hidden=True)
    hidden += [seen, not_interested]

    features, _ = await candidates.gather(viewer, now)
    assert {f.clip_id for f in features} == {c.pk for c in shown}

    await ForYouSettings.create(account=viewer, include_unverified=True)
    features, _ = await candidates.gather(viewer, now)
    assert {f.clip_id for f in features} == {c.pk for c in [*shown, unverified]}


async def test_refresh_is_durable_work_writing_generations(db: str) -> None:
    viewer = await author("viewer")
    bob = await author("bob")
    clips = [await clip(bob, likes_count=n + 1) for n in range(5)]
    engine = _engine()

    await candidates.request_refresh(viewer)
    row = await ForYouRefresh.get(account_id=viewer.pk)
    assert row.state == "pending" and row.generation == 0
    assert await engine.advance("for_you_refreshes", row.pk) == AdvanceResult.MOVED
    row = await ForYouRefresh.get(account_id=viewer.pk)
    assert row.state == "idle" and row.generation == 1 and row.refreshed_at is not None
    listed = await ForYouCandidate.filter(account_id=viewer.pk).order_by("position")
    assert [c.position for c in listed] == list(range(5))
    assert {c.clip_id for c in listed} == {c.pk for c in clips}
    assert all(c.generation == 1 and c.reason and c.source for c in listed)

    # Idle is not due: nothing runs until it is asked for again.
    assert await engine.advance("for_you_refreshes", row.pk) == AdvanceResult.SKIPPED
    for generation in (2, 3):
        await candidates.request_refresh(viewer)
        assert await engine.advance("for_you_refreshes", row.pk) == AdvanceResult.MOVED
        row = await ForYouRefresh.get(account_id=viewer.pk)
        assert row.generation == generation
    # The generation before the current one is kept (cursors in flight); older ones go.
    rows = await ForYouCandidate.filter(account_id=viewer.pk).values_list("generation", flat=True)
    kept = set(rows)
    assert kept == {2, 3}


async def test_a_request_during_a_refresh_runs_it_again(db: str) -> None:
    viewer = await author("viewer")
    await clip(await author("bob"), likes_count=1)
    engine = _engine()
    await candidates.request_refresh(viewer)
    row = await ForYouRefresh.get(account_id=viewer.pk)
    # A request that arrives after the refresh started (its time is later than the start).
    await ForYouRefresh.filter(pk=row.pk).update(requested_at=utcnow() + timedelta(minutes=1))
    assert await engine.advance("for_you_refreshes", row.pk) == AdvanceResult.MOVED
    row = await ForYouRefresh.get(account_id=viewer.pk)
    assert row.state == "pending" and row.generation == 1
    await ForYouRefresh.filter(pk=row.pk).update(requested_at=utcnow() - timedelta(minutes=1))
    assert await engine.advance("for_you_refreshes", row.pk) == AdvanceResult.MOVED
    row = await ForYouRefresh.get(account_id=viewer.pk)
    assert row.state == "idle" and row.generation == 2


async def test_request_refresh_ignores_remote_accounts_and_is_idempotent(db: str) -> None:
    remote = await author("far", "peer.example")
    await candidates.request_refresh(remote)
    assert not await ForYouRefresh.filter(account_id=remote.pk).exists()
    viewer = await author("viewer")
    await candidates.request_refresh(viewer)
    await candidates.request_refresh(viewer)
    assert await ForYouRefresh.filter(account_id=viewer.pk).count() == 1


def test_the_machine_is_a_provider() -> None:
    from fedisora.work.machines import PROVIDERS

    assert "fedisora.for_you.candidates:machines" in PROVIDERS
