"""fedisora.for_you.rank: the formula's directions, diversity, reasons, the global ranking."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedisora.for_you.rank import (
    SOURCES,
    Features,
    Ranked,
    Taste,
    fit_half_life,
    rank,
    score,
    slider_half_life,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
NEUTRAL = Taste(creators={}, tags={})


def clip(clip_id: int, author_id: int = 1, **kw: object) -> Features:
    """A day-old local clip with middling counts; *kw* overrides any field."""
    values: dict[str, object] = {
        "clip_id": clip_id,
        "author_id": author_id,
        "author": f"@user{author_id}",
        "tags": (),
        "created_at": NOW - timedelta(days=1),
        "likes": 10,
        "boosts": 1,
        "comments": 2,
        "remixes": 0,
        "views": 80,
        "completions": 40,
        "skips": 10,
        "local": True,
        "sources": frozenset({"tag"}),
    }
    values.update(kw)
    return Features(**values)  # type: ignore[arg-type]


def ids(ranked: list[Ranked]) -> list[int]:
    return [r.clip_id for r in ranked]


def position(ranked: list[Ranked], clip_id: int) -> int:
    return ids(ranked).index(clip_id)


def test_diversity_no_creator_twice_and_no_tag_thrice_in_any_five() -> None:
    tags = ("cats", "dogs", "food", "art")
    # Six creators, the first with far better clips: unrestricted, it would fill the top.
    candidates = [
        clip(
            i,
            author_id=i % 6,
            tags=(tags[(i // 6) % 4],),
            likes=200 if i % 6 == 0 else 5,
            views=300,
        )
        for i in range(120)
    ]
    taste = Taste(creators={0: 20.0}, tags={"cats": 10.0})
    ranked = rank(candidates, taste, NOW, 60)
    assert len(ranked) == 60
    by_id = {f.clip_id: f for f in candidates}
    shown = [by_id[r.clip_id] for r in ranked]
    for start in range(len(shown) - 4):
        window = shown[start : start + 5]
        authors = [f.author_id for f in window]
        assert len(set(authors)) == 5, (start, authors)
        for tag in tags:
            assert sum(tag in f.tags for f in window) <= 2, (start, tag)
    # The favourite creator still leads.
    assert shown[0].author_id == 0


def test_one_creator_only_still_gives_a_full_list() -> None:
    candidates = [clip(i, author_id=7, tags=("cats",)) for i in range(12)]
    assert len(rank(candidates, NEUTRAL, NOW, 10)) == 10


def test_too_few_creators_take_turns() -> None:
    # Three creators cannot keep "no creator twice in 5": they take turns instead, even
    # though creator 0's clips are all better.
    candidates = [
        clip(i, author_id=i % 3, likes=300 if i % 3 == 0 else 5, views=400) for i in range(60)
    ]
    authors = [c % 3 for c in ids(rank(candidates, NEUTRAL, NOW, 30))]
    assert len(authors) == 30
    for start in range(len(authors) - 2):
        assert len(set(authors[start : start + 3])) == 3, authors


def test_limit_and_duplicates() -> None:
    candidates = [clip(i, author_id=i) for i in range(30)]
    assert len(rank(candidates, NEUTRAL, NOW, 7)) == 7
    assert rank(candidates, NEUTRAL, NOW, 0) == []
    assert rank([], NEUTRAL, NOW, 10) == []
    # One clip from two sources is ranked once.
    twice = [clip(1, sources=frozenset({"tag"})), clip(1, sources=frozenset({"trending"}))]
    assert ids(rank(twice, NEUTRAL, NOW, 10)) == [1]


def test_seen_clips_are_not_ranks_job() -> None:
    """rank() orders what it is given: a clip the viewer watched (many views and skips,
    even one by a creator they skip) is still in the list; the candidates module filters."""
    candidates = [clip(i, author_id=i) for i in range(10)]
    candidates.append(clip(99, author_id=99, views=10_000, skips=9_000, likes=0))
    taste = Taste(creators={99: -50.0}, tags={})
    ranked = rank(candidates, taste, NOW, 100)
    assert sorted(ids(ranked)) == sorted(f.clip_id for f in candidates)
    assert ids(ranked)[-1] == 99


@pytest.mark.parametrize("kind", ["creator", "tag"])
@pytest.mark.parametrize("discovery", [0.0, 0.3, 1.0])
def test_negative_interest_pushes_down(kind: str, discovery: float) -> None:
    candidates = [clip(i, author_id=i, tags=(f"tag{i}",)) for i in range(1, 6)]
    neutral = replace(NEUTRAL, discovery=0.0)  # no exploration: equal clips, newest id first
    assert ids(rank(candidates, neutral, NOW, 10))[0] == 5
    if kind == "creator":
        taste = Taste(creators={5: -8.0}, tags={}, discovery=discovery)
    else:
        taste = Taste(creators={}, tags={"tag5": -8.0}, discovery=discovery)
    assert ids(rank(candidates, taste, NOW, 10))[-1] == 5


def test_positive_interests_pull_up() -> None:
    candidates = [clip(i, author_id=i, tags=(f"tag{i}",)) for i in range(1, 6)]
    assert ids(rank(candidates, Taste(creators={2: 9.0}, tags={}), NOW, 10))[0] == 2
    assert ids(rank(candidates, Taste(creators={}, tags={"tag3": 9.0}), NOW, 10))[0] == 3


def test_popular_slider_moves_from_fresh_to_popular() -> None:
    fresh = clip(
        1,
        author_id=1,
        created_at=NOW - timedelta(hours=1),
        likes=2,
        views=10,
        completions=5,
        skips=2,
    )
    popular = clip(
        2,
        author_id=2,
        created_at=NOW - timedelta(days=6),
        likes=900,
        comments=120,
        boosts=80,
        views=4000,
        completions=2500,
        skips=400,
    )
    at_fresh = rank([fresh, popular], replace(NEUTRAL, popular=0.0), NOW, 2)
    at_popular = rank([fresh, popular], replace(NEUTRAL, popular=1.0), NOW, 2)
    assert ids(at_fresh) == [1, 2]
    assert ids(at_popular) == [2, 1]


def test_discovery_slider_moves_from_following_to_new_creators() -> None:
    many = {"likes": 300, "views": 1000, "completions": 600, "skips": 100}  # little exploration
    followed = clip(1, author_id=1, author_followed=True, sources=frozenset({"following"}), **many)
    newcomer = clip(2, author_id=2, author_new=True, sources=frozenset({"discovery"}), **many)
    taste = Taste(creators={1: 6.0}, tags={})
    at_following = rank([followed, newcomer], replace(taste, discovery=0.0), NOW, 2)
    at_discovery = rank([followed, newcomer], replace(taste, discovery=1.0), NOW, 2)
    assert ids(at_following) == [1, 2]
    assert ids(at_discovery) == [2, 1]
    assert at_discovery[0].reason == "new creator"
    assert at_discovery[0].source == "discovery"


def test_better_engagement_per_view_ranks_higher_and_few_views_count_little() -> None:
    loved = clip(1, author_id=1, likes=60, views=100, completions=90, skips=2)
    ignored = clip(2, author_id=2, likes=3, views=100, completions=10, skips=70)
    assert ids(rank([ignored, loved], NEUTRAL, NOW, 2)) == [1, 2]
    # Two likes out of two views is not evidence of a great clip.
    lucky = clip(3, author_id=3, likes=2, views=2, completions=2, skips=0)
    assert score(loved, NEUTRAL, NOW)[0] > score(lucky, NEUTRAL, NOW)[0]


def test_reasons_in_plain_words() -> None:
    taste = Taste(
        creators={1: 12.0, 2: 9.0},
        tags={"cats": 12.0},
        liked_by_creator={1: 3, 2: 1},
        picked_tags=("diy",),
    )
    candidates = [
        clip(1, author_id=1, author="@ann"),
        clip(2, author_id=2, author="@ann2@peer.example", local=False),
        clip(3, author_id=3, author="@bob", author_followed=True),
        clip(4, author_id=4, remix_of_liked=True, sources=frozenset({"remix"})),
        clip(5, author_id=5, tags=("cats",), sources=frozenset({"tag"})),
        clip(6, author_id=6, sources=frozenset({"trending"})),
        clip(7, author_id=7, sources=frozenset({"trending"}), local=False),
        clip(8, author_id=8, author_new=True, sources=frozenset({"discovery"})),
        clip(9, author_id=9, tags=("diy",), sources=frozenset({"cold_start"})),
        clip(10, author_id=10, sources=frozenset(), created_at=NOW - timedelta(hours=2)),
        clip(11, author_id=11, sources=frozenset()),
    ]
    reasons = {r.clip_id: (r.source, r.reason) for r in rank(candidates, taste, NOW, 20)}
    assert reasons == {
        1: ("creator", "because you liked 3 clips by @ann"),
        2: ("creator", "because you liked a clip by @ann2@peer.example"),
        3: ("following", "from @bob, whom you follow"),
        4: ("remix", "a remix of a clip you liked"),
        5: ("tag", "because you watch #cats"),
        6: ("trending", "trending on this instance"),
        7: ("trending", "trending across the fediverse"),
        8: ("discovery", "new creator"),
        9: ("cold_start", "because you picked #diy"),
        10: ("discovery", "someone new to you"),
        11: ("discovery", "someone new to you"),
    }
    # Without the discovery slider, someone new is not a reason: the global ones remain.
    following = rank(candidates[9:], replace(taste, discovery=0.0), NOW, 20)
    assert {r.clip_id: (r.source, r.reason) for r in following} == {
        10: ("trending", "fresh on this instance"),
        11: ("trending", "popular on this instance"),
    }
    for source, reason in reasons.values():
        assert source in SOURCES
        assert not re.search(r"[_{}]|\bNone\b|\d\.\d", reason), reason


def test_personalised_off_is_one_global_ranking() -> None:
    candidates = [
        clip(
            i,
            author_id=i % 9,
            tags=(f"tag{i % 5}",),
            likes=i * 3 % 40,
            views=50 + i,
            created_at=NOW - timedelta(hours=i * 3),
            author_followed=i % 4 == 0,
            remix_of_liked=i % 7 == 0,
            author_new=i % 11 == 0,
            sources=frozenset({"trending"} if i % 6 == 0 else {"tag"}),
        )
        for i in range(60)
    ]
    ann = Taste(
        creators={1: 30.0, 2: -20.0},
        tags={"tag1": 15.0},
        liked_by_creator={1: 4},
        personalised=False,
        viewer=1,
    )
    bob = Taste(creators={5: 40.0}, tags={"tag3": -9.0}, personalised=False, viewer=2)
    nobody = Taste(creators={}, tags={}, personalised=False)
    lists = [rank(candidates, t, NOW, 30) for t in (ann, bob, nobody)]
    assert lists[0] == lists[1] == lists[2]
    personal = ("you", "follow")
    assert not any(w in r.reason for r in lists[0] for w in personal)
    # Personalised, the same viewers get different lists.
    assert ids(rank(candidates, replace(ann, personalised=True), NOW, 30)) != ids(
        rank(candidates, replace(bob, personalised=True), NOW, 30)
    )


def test_deterministic() -> None:
    candidates = [clip(i, author_id=i % 7, tags=(f"t{i % 3}",), likes=i) for i in range(40)]
    taste = Taste(creators={1: 4.0}, tags={"t1": 2.0}, viewer=42)
    assert rank(candidates, taste, NOW, 20) == rank(list(reversed(candidates)), taste, NOW, 20)


def test_rank_is_pure() -> None:
    # A fresh interpreter: this test process has the I/O stack loaded already.
    script = (
        "import json, sys, fedisora.for_you.rank, fedisora.for_you.interest\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[3],
    )
    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint({"tortoise", "httpx", "starlette", "asyncpg", "redis"}), loaded


def _synthetic_views(half_life: float, seed: int, n: int = 20_000) -> list[tuple[float, int, int]]:
    """*n* views of clips up to 60 days old, each engaging with probability
    0.5 * 2 ** (-age / half_life), grouped by quarter day as the aging chore groups them."""
    import random

    rng = random.Random(seed)
    groups: dict[int, list[int]] = {}
    for _ in range(n):
        age = rng.uniform(0, 60)
        group = groups.setdefault(int(age * 4), [0, 0])
        group[0] += 1
        group[1] += rng.random() < 0.5 * 2 ** (-age / half_life)
    return [((b + 0.5) / 4, v, k) for b, (v, k) in groups.items()]


@pytest.mark.parametrize("half_life", [1.5, 4.0, 11.0, 30.0])
def test_the_fit_recovers_a_known_half_life(half_life: float) -> None:
    fitted = fit_half_life(_synthetic_views(half_life, seed=int(half_life * 10)))
    assert fitted is not None
    assert abs(fitted / half_life - 1) < 0.15, fitted


def test_the_fit_needs_enough_views_and_engagement() -> None:
    assert fit_half_life([]) is None
    assert fit_half_life(_synthetic_views(4.0, seed=1, n=300)) is None  # too few views
    assert fit_half_life([(1.0, 1000, 5), (9.0, 1000, 2)]) is None  # too few engaged
    # No decay at all: the longest half-life considered.
    flat = fit_half_life([(a / 4, 100, 30) for a in range(200)])
    assert flat is not None and flat > 300


def test_the_fitted_half_life_is_the_slider_middle() -> None:
    # Not fitted: as before, linear from the fresh end to the popular end.
    assert slider_half_life(0.0) == 2.0 and slider_half_life(1.0) == 20.0
    assert slider_half_life(0.5) == 11.0 and slider_half_life(0.25) == 6.5
    # Fitted: the middle (the default, where the slider stays until moved) is the fit.
    assert slider_half_life(0.5, 4.0) == 4.0
    assert slider_half_life(0.0, 4.0) == 2.0 and slider_half_life(1.0, 4.0) == 20.0
    assert slider_half_life(0.75, 4.0) == 12.0
    assert slider_half_life(0.5, 500.0) == 20.0 and slider_half_life(0.5, 0.1) == 2.0
    # And the ranking uses it: with a short instance half-life, an old clip loses more.
    old = clip(1, created_at=NOW - timedelta(days=10))
    fresh = clip(2, created_at=NOW - timedelta(hours=1))
    gap_default = score(fresh, NEUTRAL, NOW)[0] - score(old, NEUTRAL, NOW)[0]
    short = replace(NEUTRAL, half_life=2.5)
    gap_short = score(fresh, short, NOW)[0] - score(old, short, NOW)[0]
    assert gap_short > gap_default + 1.5
