"""For You's signals (fedisora.for_you.signals): the player's reports folded into view rows
and interests with their caps, actions from the services, the explicit choices, control and
aging; against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import timedelta
from typing import Any

import pytest
from factories import local_account, remote_account, rendered_video

from fedisora import ratelimits
from fedisora.errors import Invalid, NotFound, RateLimited
from fedisora.for_you import signals
from fedisora.for_you.interest import SIGNAL_WEIGHTS, decayed
from fedisora.models import (
    Account,
    Clip,
    ClipView,
    ForYouSettings,
    Interest,
    InterestKind,
    Visibility,
    utcnow,
)
from fedisora.services import follows, interactions, posts


async def clip(author: Account, caption: str = "", **kwargs: Any) -> Clip:
    return await posts.post_clip(author, await rendered_video(author), caption=caption, **kwargs)


async def weights(viewer: Account) -> dict[tuple[str, str], float]:
    return {(r.kind, r.key): r.weight for r in await Interest.filter(account_id=viewer.pk)}


def ev(c: Clip | int | str, kind: str, watch_ms: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"clip_id": str(c.pk if isinstance(c, Clip) else c), "type": kind}
    if watch_ms is not None:
        out["watch_ms"] = watch_ms
    return out


async def test_reports_fold_into_one_row_and_count_a_viewer_once(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    c = await clip(bob, "waves #sea #Blue")
    batch = [ev(c, "impression")] * 30 + [ev(c, "watch", 3000), ev(c, "complete"), ev(c, "skip")]
    assert await signals.record_feedback(ann, batch) == {"accepted": 33, "ignored": 0}
    assert await signals.record_feedback(ann, batch) == {"accepted": 33, "ignored": 0}
    [row] = await ClipView.filter(account_id=ann.pk)
    assert (row.impressions, row.watch_ms, row.completions, row.skips) == (60, 6000, 2, 2)
    fresh = await Clip.get(pk=c.pk)
    assert (fresh.views_count, fresh.completions_count, fresh.skips_count) == (1, 1, 1)
    # a second viewer counts once more
    cy = await local_account("cy")
    await signals.record_feedback(cy, [ev(c, "watch", 1000)])
    fresh = await Clip.get(pk=c.pk)
    assert (fresh.views_count, fresh.completions_count, fresh.skips_count) == (2, 1, 1)
    # the creator's and both hashtags' interests moved, once per day's cap
    w = await weights(ann)
    assert set(w) == {("creator", str(bob.pk)), ("tag", "sea"), ("tag", "blue")}
    # 6 s of a 3 s clip: two viewings (0.8) + one completion (1.0) + one skip (-0.6); the
    # second completion and skip say nothing more
    assert w[("creator", str(bob.pk))] == pytest.approx(1.2, abs=0.01)


async def test_one_clips_reports_are_capped_a_day_and_watch_time_clamped(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    c = await clip(bob, "loop")
    now = utcnow()
    flood = [ev(c, "replay")] * 50 + [ev(c, "complete")] * 49 + [ev(c, "watch", 3_600_000)]
    await signals.record_feedback(ann, flood, now=now)
    await signals.record_feedback(ann, flood, now=now + timedelta(minutes=5))
    row = await ClipView.get(account_id=ann.pk)
    assert row.watch_ms == 2 * 3000 * signals.MAX_VIEWINGS  # clamped to 5 loops of 3 s
    key = ("creator", str(bob.pk))
    assert (await weights(ann))[key] == pytest.approx(signals.CLIP_CAP, abs=0.01)
    # a new day: the clip may count again, within the cap
    await signals.record_feedback(ann, flood, now=now + timedelta(days=1))
    day2 = decayed(signals.CLIP_CAP, now, now + timedelta(days=1)) + signals.CLIP_CAP
    assert (await weights(ann))[key] == pytest.approx(day2, abs=0.01)


async def test_unknown_invisible_and_own_clips(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    public = await clip(bob, "public #sea")
    private = await clip(bob, "followers only", visibility=Visibility.FOLLOWERS)
    gone = await clip(bob, "deleted")
    await posts.delete_clip(bob, gone)
    mine = await clip(ann, "my own #sea")
    batch = [
        ev(public, "impression"),
        ev(private, "complete"),
        ev(gone, "complete"),
        ev(999999999, "complete"),
        ev("not-a-number", "complete"),
        ev(mine, "complete"),
    ]
    assert await signals.record_feedback(ann, batch) == {"accepted": 2, "ignored": 4}
    assert not await ClipView.filter(clip_id=private.pk).exists()
    assert await ClipView.filter(account_id=ann.pk, clip_id=mine.pk).exists()  # seen
    assert (await Clip.get(pk=mine.pk)).completions_count == 0  # own views do not count
    assert ("creator", str(ann.pk)) not in await weights(ann)
    # a blocked creator's clips are invisible too
    await follows.block(bob, ann)
    assert await signals.record_feedback(ann, [ev(public, "complete")]) == {
        "accepted": 0,
        "ignored": 1,
    }


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ({"clip_id": "1"}, "list"),
        ([{"clip_id": "1", "type": "impression"}] * 101, "at most 100"),
        ([{"clip_id": "1", "type": "watch", "watch_ms": -5}], "between 0"),
        ([{"clip_id": "1", "type": "watch", "watch_ms": 3_600_001}], "between 0"),
        ([{"clip_id": "1", "type": "watch", "watch_ms": "12"}], "whole number"),
        ([{"clip_id": "1", "type": "watch", "watch_ms": 1.5}], "whole number"),
        ([{"clip_id": "1", "type": "like"}], "type must be one of"),
        ([{"clip_id": {"x": 1}, "type": "skip"}], "clip_id"),
        (["impression"], "object"),
    ],
)
async def test_malformed_batches_are_refused_whole(db: str, events: Any, message: str) -> None:
    ann = await local_account("ann")
    with pytest.raises(Invalid, match=message):
        await signals.record_feedback(ann, events)
    assert not await ClipView.exists()


async def test_floods_hit_the_feedback_limit(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    c = await clip(bob)
    store = ratelimits.MemoryStore({"feedback": ratelimits.Limit(3, 300.0)})
    for _ in range(3):
        await signals.record_feedback(ann, [ev(c, "impression")], limits=store)
    with pytest.raises(RateLimited) as refused:
        await signals.record_feedback(ann, [ev(c, "impression")], limits=store)
    assert "Retry-After" in refused.value.headers()
    assert (await ClipView.get(account_id=ann.pk)).impressions == 3


async def test_not_interested_hides_once_and_show_less_is_softer(db: str) -> None:
    ann, bob, cy = [await local_account(n) for n in ("ann", "bob", "cy")]
    b = await clip(bob, "#sea")
    c = await clip(cy, "#sky")
    await signals.not_interested(ann, b)
    await signals.not_interested(ann, b)  # again: nothing more
    await signals.show_less(ann, c)
    row = await ClipView.get(account_id=ann.pk, clip_id=b.pk)
    assert row.hidden and row.impressions == 0
    assert (await Clip.get(pk=b.pk)).views_count == 0  # a choice is not a view
    assert not (await ClipView.get(account_id=ann.pk, clip_id=c.pk)).hidden
    w = await weights(ann)
    assert w[("creator", str(bob.pk))] == pytest.approx(SIGNAL_WEIGHTS["not_interested"])
    assert w[("tag", "sea")] == pytest.approx(SIGNAL_WEIGHTS["not_interested"])
    assert w[("creator", str(cy.pk))] == pytest.approx(SIGNAL_WEIGHTS["show_less"])
    hidden = await clip(bob, "followers", visibility=Visibility.FOLLOWERS)
    with pytest.raises(NotFound):
        await signals.not_interested(ann, hidden)


async def test_actions_from_the_services_count_for_local_viewers_only(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    peer = await remote_account("rita")
    c = await clip(bob, "#sea")
    await interactions.like(ann, c)
    await interactions.like(ann, c)  # idempotent: once
    w = await weights(ann)
    assert w[("creator", str(bob.pk))] == pytest.approx(3.0, abs=0.01)
    assert w[("tag", "sea")] == pytest.approx(3.0, abs=0.01)
    await interactions.unlike(ann, c)
    assert (await weights(ann))[("creator", str(bob.pk))] == pytest.approx(0.0, abs=0.01)
    await interactions.comment(ann, c, "nice")
    await interactions.comment(ann, c, "really")  # a second comment adds nothing
    assert (await weights(ann))[("tag", "sea")] == pytest.approx(4.0, abs=0.01)
    await interactions.boost(ann, c)
    await interactions.unboost(ann, c)  # a loop of boosts adds one boost's worth at most
    await interactions.boost(ann, c)
    await follows.follow(ann, bob)
    w = await weights(ann)
    assert w[("creator", str(bob.pk))] == pytest.approx(4.0 + 4.0 + 6.0, abs=0.02)
    assert w[("tag", "sea")] == pytest.approx(8.0, abs=0.02)  # a follow moves the creator only
    await follows.unfollow(ann, bob)
    assert (await weights(ann))[("creator", str(bob.pk))] == pytest.approx(8.0, abs=0.02)
    # a remix of bob's clip by ann
    await posts.remix_clip(ann, c, await rendered_video(ann))
    assert (await weights(ann))[("creator", str(bob.pk))] == pytest.approx(13.0, abs=0.02)
    # a peer's like counts on the clip, and teaches nothing
    await interactions.like(peer, c, uri="https://remote.example/likes/1")
    assert (await Clip.get(pk=c.pk)).likes_count == 1
    assert not await Interest.filter(account_id=peer.pk).exists()
    # one's own clip teaches nothing
    await interactions.like(bob, c)
    assert not await Interest.filter(account_id=bob.pk).exists()


async def test_interests_listed_decayed_and_reset(db: str) -> None:
    ann, bob, cy = [await local_account(n) for n in ("ann", "bob", "cy")]
    now = utcnow()
    await signals.record_action(ann, await clip(bob, "#sea"), "like", now=now)
    await signals.record_action(ann, cy, "follow", now=now)
    later = now + timedelta(days=14)
    listed = await signals.interests_of(ann, now=later)
    assert [(e.kind, e.label) for e in listed] == [
        ("creator", "@cy"),
        ("creator", "@bob"),
        ("tag", "#sea"),
    ]
    assert listed[0].weight == pytest.approx(3.0, abs=0.01)  # 6 halved in 14 days
    assert listed[0].account is not None and listed[0].account.pk == cy.pk
    creators, tags = await signals.weights_of(ann, now=later)
    assert creators == {cy.pk: pytest.approx(3.0, abs=0.01), bob.pk: pytest.approx(1.5, abs=0.01)}
    assert tags == {"sea": pytest.approx(1.5, abs=0.01)}
    assert await signals.reset_interests(ann, kind="tag", key="#Sea") == 1
    assert await signals.reset_interests(ann, kind="creator", key=str(cy.pk)) == 1
    with pytest.raises(Invalid):
        await signals.reset_interests(ann, kind="mood", key="x")
    assert await signals.reset_interests(ann, key="#nothing") == 0  # a key alone: either kind
    assert await signals.reset_interests(ann, kind="tag") == 0  # a kind alone: all of it
    assert await signals.reset_interests(ann, key=str(bob.pk)) == 1
    assert await signals.reset_interests(ann) == 0
    assert await signals.interests_of(ann) == []


async def test_settings_defaults_validation_and_update(db: str) -> None:
    ann = await local_account("ann")
    row = await signals.settings_of(ann)
    assert (row.personalised, row.popular, row.discovery, row.tags) == (True, 0.5, 0.3, [])
    assert not await ForYouSettings.exists()
    saved = await signals.update_settings(
        ann, popular="0.8", discovery=0, personalised=False, tags=["#Cats", "dogs", "cats"]
    )
    assert (saved.popular, saved.discovery, saved.personalised) == (0.8, 0.0, False)
    assert saved.tags == ["cats", "dogs"]
    again = await signals.update_settings(ann, include_unverified=True)
    assert again.pk == saved.pk and again.include_unverified and again.tags == ["cats", "dogs"]
    for bad in ({"popular": 1.5}, {"discovery": "x"}, {"popular": True}, {"popular": "nan"}):
        with pytest.raises(Invalid):
            await signals.update_settings(ann, **bad)
    with pytest.raises(Invalid, match="at most 10"):
        await signals.update_settings(ann, tags=[f"t{n}" for n in range(11)])
    with pytest.raises(Invalid, match="not a hashtag"):
        await signals.update_settings(ann, tags=["no spaces"])
    assert (await signals.settings_of(ann)).popular == 0.8


async def test_aging_deletes_old_views_and_faded_interests(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    c, d = await clip(bob, "#sea"), await clip(bob)
    now = utcnow()
    await signals.record_feedback(ann, [ev(c, "impression")], now=now - timedelta(days=91))
    await signals.record_feedback(ann, [ev(d, "impression")], now=now - timedelta(days=10))
    await Interest.create(
        account_id=ann.pk,
        kind=InterestKind.TAG,
        key="old",
        weight=6.0,
        updated_at=now - timedelta(days=14 * 8),
    )  # 6/256 < 0.05
    await Interest.create(
        account_id=ann.pk,
        kind=InterestKind.TAG,
        key="kept",
        weight=6.0,
        updated_at=now - timedelta(days=14 * 5),
    )  # 6/32 > 0.05
    await Interest.create(account_id=ann.pk, kind=InterestKind.TAG, key="zero", weight=0.0)
    fenced: list[object] = []

    async def fence(conn: object) -> None:
        fenced.append(conn)

    counts, more = await signals.age_out(now=now, fence=fence)
    assert counts == {"views_aged": 1, "interests_forgotten": 2} and not more and fenced
    assert [v.clip_id for v in await ClipView.all()] == [d.pk]
    assert sorted(r.key for r in await Interest.filter(kind=InterestKind.TAG)) == ["kept"]


async def test_the_aging_chore_runs_as_housekeeping(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database without the chore's row gets it with the first signal; the chore runs
    through the housekeeping machine like the others."""
    from fedisora.models import Chore
    from fedisora.work.housekeeping import CHORES

    assert CHORES["for_you_aging"].every == timedelta(hours=1)
    await Chore.filter(name="for_you_aging").delete()
    monkeypatch.setattr(signals, "_aging_ensured", False)
    ann, bob = await local_account("ann"), await local_account("bob")
    await signals.record_feedback(ann, [ev(await clip(bob), "impression")])
    assert await Chore.filter(name="for_you_aging").exists()


async def test_concurrent_batches_count_a_viewer_once(db: str) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    c = await clip(bob, "#sea")
    batch = [ev(c, "impression"), ev(c, "complete"), ev(c, "skip")]
    await asyncio.gather(*(signals.record_feedback(ann, batch) for _ in range(6)))
    row = await ClipView.get(account_id=ann.pk)
    assert (row.impressions, row.completions, row.skips) == (6, 6, 6)
    fresh = await Clip.get(pk=c.pk)
    assert (fresh.views_count, fresh.completions_count, fresh.skips_count) == (1, 1, 1)
    assert await Interest.filter(account_id=ann.pk).count() == 2  # bob, #sea: one row each


async def test_noticeable_changes_ask_for_a_refresh(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving side's ``candidates.request_refresh`` is called when it exists (issue 17:
    it is merged separately) and interests moved by NOTICEABLE or more."""
    asked: list[int] = []

    async def request_refresh(account: Account) -> None:
        asked.append(account.pk)

    fake = types.ModuleType("fedisora.for_you.candidates")
    fake.request_refresh = request_refresh  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fedisora.for_you.candidates", fake)
    ann, bob = await local_account("ann"), await local_account("bob")
    c = await clip(bob, "#sea")
    await signals.record_feedback(ann, [ev(c, "impression"), ev(c, "watch", 1000)])
    assert asked == []  # a glance moves little
    await interactions.like(ann, c)
    await signals.not_interested(ann, await clip(bob))
    await signals.reset_interests(ann)
    await signals.update_settings(ann, popular=0.9)
    assert asked == [ann.pk] * 4


async def test_the_aging_chore_fits_the_instance_half_life_from_its_views(db: str) -> None:
    """Views whose engagement halves every 4 days of a clip's age: the daily fit finds about
    4 days, keeps it in the chore's row, and each refresh's taste carries it. Views only
    served (to a client that reports nothing) say nothing and are left out."""
    from chores import Clock, engine_for, run_chore

    from fedisora.config import load_settings
    from fedisora.for_you import candidates
    from fedisora.work.housekeeping import ensure_chores

    now = utcnow()
    bob = await remote_account("bob")
    viewers = [await remote_account(f"v{n}") for n in range(25)]
    ages = [n * 0.5 for n in range(40)]  # 0 to 19.5 days
    made = [
        Clip(
            id=1000 + n,
            account_id=bob.pk,
            uri=f"https://remote.example/c/{n}",
            local=False,
            created_at=now - timedelta(days=age),
        )
        for n, age in enumerate(ages)
    ]
    await Clip.bulk_create(made)
    rows = []
    for c, age in zip(made, ages, strict=True):
        engaged = round(len(viewers) * 0.6 * 2 ** (-age / 4.0))  # exact shares
        for n, v in enumerate(viewers):
            rows.append(
                ClipView(
                    account_id=v.pk,
                    clip_id=c.pk,
                    impressions=1,
                    completions=1 if n < engaged else 0,
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
    await ClipView.bulk_create(rows)
    # Served to a client that reports nothing: of old clips, never "engaged".
    ann = await local_account("ann")
    await ClipView.bulk_create(
        [ClipView(account_id=ann.pk, clip_id=c.pk, impressions=1, served=True) for c in made[:10]]
    )
    assert await signals.instance_half_life() is None

    await ensure_chores()
    settings = load_settings({"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": "/x"})
    engine = engine_for(settings, Clock())
    row = await run_chore(engine, "for_you_aging")
    kept = row.progress["half_life"]
    assert kept["views"] == 1000 and abs(kept["days"] / 4.0 - 1) < 0.1, kept
    assert await signals.instance_half_life() == kept["days"]
    _features, taste = await candidates.gather(ann, utcnow())
    assert taste.half_life == kept["days"]

    # Fitted once a day: an hour later the chore keeps it.
    await ClipView.filter(completions=1).update(completions=0, replays=0)
    row = await run_chore(engine, "for_you_aging")
    assert row.progress["half_life"] == kept
