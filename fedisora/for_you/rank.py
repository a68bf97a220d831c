"""The For You scoring model: a documented formula, diversity, and a reason per clip. Pure.

:func:`rank` takes the candidates the candidates module loaded (:class:`Features`), what
the feed has learned of the viewer (:class:`Taste`) and the time, and returns the list to
serve (:class:`Ranked`), best first. Seen, hidden and invisible clips are the candidates
module's job: every candidate given is ranked (duplicates of one clip are merged).

Score of a clip (natural-log units; higher is better), all terms added::

    score = quality + popularity + recency + affinity + priors

- **quality**, smoothed engagement per view: the clip's engagement
  ``e = likes + 2 comments + 2 boosts + 3 remixes + 0.5 completions`` over its exposure
  ``n = max(views, likes + comments + boosts + remixes)`` (remote clips have no local
  views), shrunk toward the instance-wide prior by ``PRIOR_VIEWS`` pseudo-views:
  ``QUALITY * ln(((e + PRIOR_RATE * PRIOR_VIEWS) / (n + PRIOR_VIEWS)) / PRIOR_RATE)``,
  minus ``SKIP_PENALTY`` times the smoothed skip rate above the prior skip rate. A clip
  with few views scores near 0 whatever its counts, so a handful of likes cannot push a
  clip up; a clip that most viewers finish and like scores high.
- **popularity**: ``popular_weight * ln(1 + likes + boosts + comments + remixes)`` where
  ``popular_weight`` grows with the fresh-popular slider (``POPULAR_MIN .. POPULAR_MAX``).
- **recency**: ``-ln 2 * age / half_life``, i.e. the score halves every ``half_life``,
  from ``HALF_LIFE_FRESH`` (slider at fresh) to ``HALF_LIFE_POPULAR`` (slider at popular).
- **affinity** (personalised only): ``CREATOR * tanh(creator interest / SCALE)`` plus, over
  the clip's hashtags, ``TAG * sum(tanh(tag interest / SCALE)) / sqrt(number of tags)``
  (so many tags do not add up to more than one strong one). Interests are the decayed
  weights of :mod:`.interest` and may be negative: a creator or a hashtag the viewer skips
  or asked to see less of pushes the clip down.
- **priors** by source: a followed author adds ``FOLLOWED * (1 - discovery / 2)``, a remix
  of a clip the viewer liked adds ``REMIX_OF_LIKED`` (personalised only); a new creator
  adds ``NEW_CREATOR * discovery`` (the following-discovery slider), trending adds
  ``TRENDING``.

With ``personalised=False`` the affinity and the personal priors (followed, remix of a liked
clip) are left out: the score is quality + popularity + recency + the new-creator and
trending priors, the same for every viewer with the same sliders (a global ranking).

**Diversity**: the list is built greedily from the best remaining clip that keeps the
rules within every ``WINDOW`` consecutive clips: no creator twice, no hashtag more than
``MAX_TAG_IN_WINDOW`` times. When no remaining clip fits, the hashtag rule is relaxed
first, then the creator rule (a viewer who follows one creator still gets a list).

**Reason**: the largest personal contribution, in plain words ("from @bob, whom you
follow", "a remix of a clip you liked", "because you liked 3 clips by @ann", "because you
watch #cats"), else "new creator", "trending on this instance" (or "... across the
fediverse" for a remote clip), "because you picked #cats" for cold-start clips, else
"popular on this instance" / "fresh on this instance". ``Ranked.source`` is the source
that reason speaks for.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["SOURCES", "Features", "Ranked", "Taste", "rank", "score"]

SOURCES = ("following", "creator", "tag", "remix", "trending", "discovery", "cold_start")

# The formula's constants (see the module docstring; tuned with bench/for_you.py).
PRIOR_RATE = 0.15  # instance-wide engagement per view assumed before a clip has views
PRIOR_SKIP = 0.3  # skips per view assumed before a clip has views
PRIOR_VIEWS = 20.0  # how many views' worth that prior counts for
QUALITY = 1.0
SKIP_PENALTY = 1.0
POPULAR_MIN = 0.05
POPULAR_MAX = 0.5
HALF_LIFE_FRESH = 1.0  # days
HALF_LIFE_POPULAR = 10.0  # days
SCALE = 5.0  # interest weight at which tanh reaches 0.76
CREATOR = 1.5
TAG = 1.2
FOLLOWED = 0.8
REMIX_OF_LIKED = 0.8
NEW_CREATOR = 1.0
TRENDING = 0.2
WINDOW = 5
MAX_TAG_IN_WINDOW = 2
#: The least affinity contribution worth naming as the reason.
REASON_MIN = 0.3


@dataclass(frozen=True, slots=True)
class Features:
    """One candidate clip, as the candidates module loads it."""

    clip_id: int
    author_id: int
    author: str  # "@ann" or "@ann@peer.example", for reasons
    tags: tuple[str, ...]  # lower-case names, without '#'
    created_at: datetime
    likes: int
    boosts: int
    comments: int
    remixes: int
    views: int
    completions: int
    skips: int
    local: bool
    sources: frozenset[str]  # of SOURCES
    remix_of_liked: bool = False  # a remix of a clip the viewer liked
    author_followed: bool = False
    author_new: bool = False  # the creator's first clips (discovery)


@dataclass(frozen=True, slots=True)
class Taste:
    """What the feed knows of one viewer, and the viewer's controls."""

    creators: Mapping[int, float]  # decayed interest weights (may be negative)
    tags: Mapping[str, float]
    liked_by_creator: Mapping[int, int] = field(default_factory=dict)  # for reasons
    personalised: bool = True
    popular: float = 0.5  # slider: 0 fresh .. 1 popular
    discovery: float = 0.3  # slider: 0 following .. 1 discovery
    picked_tags: tuple[str, ...] = ()  # hashtags picked at sign-up (cold start), for reasons


@dataclass(frozen=True, slots=True)
class Ranked:
    clip_id: int
    score: float
    source: str
    reason: str


@dataclass(slots=True)
class _Scored:
    features: Features
    score: float
    source: str
    reason: str


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def _quality(f: Features) -> float:
    exposure = max(f.views, f.likes + f.comments + f.boosts + f.remixes, 0)
    engagement = (
        max(f.likes, 0)
        + 2 * max(f.comments, 0)
        + 2 * max(f.boosts, 0)
        + 3 * max(f.remixes, 0)
        + 0.5 * max(f.completions, 0)
    )
    rate = (engagement + PRIOR_RATE * PRIOR_VIEWS) / (exposure + PRIOR_VIEWS)
    skip_rate = (max(f.skips, 0) + PRIOR_SKIP * PRIOR_VIEWS) / (exposure + PRIOR_VIEWS)
    return QUALITY * math.log(rate / PRIOR_RATE) - SKIP_PENALTY * (skip_rate - PRIOR_SKIP)


def _tag_affinity(f: Features, taste: Taste) -> tuple[float, str | None, float]:
    """The tags' summed contribution, and the hashtag contributing most (and how much)."""
    if not f.tags:
        return 0.0, None, 0.0
    norm = math.sqrt(len(f.tags))
    total = 0.0
    best: str | None = None
    best_part = 0.0
    for tag in f.tags:
        part = TAG * math.tanh(taste.tags.get(tag, 0.0) / SCALE) / norm
        total += part
        if part > best_part:
            best, best_part = tag, part
    return total, best, best_part


def score(f: Features, taste: Taste, now: datetime) -> tuple[float, str, str]:
    """The clip's score, the source it is shown for and the reason, in plain words."""
    popular = _clamp01(taste.popular)
    discovery = _clamp01(taste.discovery)
    age_days = max(0.0, (now - f.created_at).total_seconds() / 86400)
    half_life = HALF_LIFE_FRESH + (HALF_LIFE_POPULAR - HALF_LIFE_FRESH) * popular
    interactions = max(0, f.likes + f.boosts + f.comments + f.remixes)
    popularity = (POPULAR_MIN + (POPULAR_MAX - POPULAR_MIN) * popular) * math.log1p(interactions)
    total = _quality(f) + popularity - math.log(2) * age_days / half_life

    # Contributions that can be named as the reason: (value, source, reason).
    named: list[tuple[float, str, str]] = []
    if f.author_new:
        part = NEW_CREATOR * discovery
        total += part
        named.append((part, "discovery", "new creator"))
    if "trending" in f.sources:
        total += TRENDING
        where = "on this instance" if f.local else "across the fediverse"
        named.append((REASON_MIN, "trending", f"trending {where}"))
    if taste.personalised:
        creator_part = CREATOR * math.tanh(taste.creators.get(f.author_id, 0.0) / SCALE)
        tags_part, best_tag, best_tag_part = _tag_affinity(f, taste)
        total += creator_part + tags_part
        liked = taste.liked_by_creator.get(f.author_id, 0)
        if liked > 0:
            clips = "a clip" if liked == 1 else f"{liked} clips"
            named.append((creator_part, "creator", f"because you liked {clips} by {f.author}"))
        else:
            named.append((creator_part, "creator", f"because you often watch {f.author}"))
        if best_tag is not None:
            named.append((best_tag_part, "tag", f"because you watch #{best_tag}"))
        if f.author_followed:
            part = FOLLOWED * (1 - discovery / 2)
            total += part
            named.append((part + REASON_MIN, "following", f"from {f.author}, whom you follow"))
        if f.remix_of_liked:
            total += REMIX_OF_LIKED
            named.append((REMIX_OF_LIKED + REASON_MIN, "remix", "a remix of a clip you liked"))
        if "cold_start" in f.sources:
            picked = next((t for t in f.tags if t in taste.picked_tags), None)
            if picked is not None:
                named.append((REASON_MIN, "cold_start", f"because you picked #{picked}"))

    best = max(named, key=lambda n: n[0], default=None)
    if best is not None and best[0] >= REASON_MIN:
        return total, best[1], best[2]
    where = "on this instance" if f.local else "across the fediverse"
    source = next((s for s in SOURCES if s in f.sources), "trending")
    if age_days < 1:
        return total, source, f"fresh {where}"
    return total, source, f"popular {where}"


def _fits(f: Features, recent: deque[Features], check_tags: bool, check_creator: bool) -> bool:
    if check_creator and any(r.author_id == f.author_id for r in recent):
        return False
    if check_tags:
        for tag in set(f.tags):
            if sum(tag in r.tags for r in recent) >= MAX_TAG_IN_WINDOW:
                return False
    return True


def _diversify(ordered: list[_Scored], limit: int) -> list[_Scored]:
    """Greedy: at each position the best remaining clip that keeps the rules over the last
    ``WINDOW`` clips; relax the hashtag rule, then the creator rule, when none fits."""
    remaining = list(ordered)
    out: list[_Scored] = []
    recent: deque[Features] = deque(maxlen=WINDOW - 1)
    while remaining and len(out) < limit:
        pick = None
        for check_tags, check_creator in ((True, True), (False, True), (False, False)):
            pick = next(
                (
                    i
                    for i, s in enumerate(remaining)
                    if _fits(s.features, recent, check_tags, check_creator)
                ),
                None,
            )
            if pick is not None:
                break
        assert pick is not None  # the last pass accepts anything
        chosen = remaining.pop(pick)
        out.append(chosen)
        recent.append(chosen.features)
    return out


def rank(candidates: Iterable[Features], taste: Taste, now: datetime, limit: int) -> list[Ranked]:
    """The viewer's list, best first, at most *limit* clips, diversified, each with its
    source and reason (see the module docstring for the formula)."""
    if limit <= 0:
        return []
    best: dict[int, _Scored] = {}
    for f in candidates:
        value, source, reason = score(f, taste, now)
        kept = best.get(f.clip_id)
        if kept is None or value > kept.score:
            best[f.clip_id] = _Scored(f, value, source, reason)
    ordered = sorted(best.values(), key=lambda s: (-s.score, -s.features.clip_id))
    return [
        Ranked(s.features.clip_id, s.score, s.source, s.reason) for s in _diversify(ordered, limit)
    ]
