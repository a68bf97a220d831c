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
  views), shrunk toward an instance-wide prior by ``PRIOR_VIEWS`` pseudo-views:
  ``rate = (e + PRIOR_RATE * PRIOR_VIEWS) / (n + PRIOR_VIEWS)``, quality =
  ``QUALITY * ln(rate / PRIOR_RATE)`` minus ``SKIP_PENALTY`` times the smoothed skip rate
  above the prior skip rate. A clip with few views scores near 0 whatever its counts (a
  handful of likes cannot push a clip up); a clip most viewers finish and like scores high.
  *Exploration* (personalised only): ``rate`` is multiplied by ``exp(explore * z /
  sqrt(e + PRIOR_RATE * PRIOR_VIEWS))`` with ``explore = EXPLORE * discovery`` and ``z`` a
  fixed pseudo-random number of mean 0 and variance 1 per viewer, day and clip (Thompson
  sampling's idea: the less is known of a clip, the wider its draw), so new clips get
  their first viewers and different viewers see different clips among near-equals; the
  same inputs always give the same list.
- **popularity**: ``popular_weight * ln(1 + likes + boosts + comments + remixes)``;
  ``popular_weight`` goes from ``POPULAR_MIN`` to ``POPULAR_MAX`` with the fresh-popular
  slider.
- **recency**: ``-ln 2 * age / half_life``: the score halves every ``half_life``, from
  ``HALF_LIFE_FRESH`` days (slider at fresh) to ``HALF_LIFE_POPULAR`` (slider at popular),
  through the *instance's* half-life at the slider's middle, where it is until the viewer
  moves it: ``Taste.half_life``, fitted from the instance's own views by
  :func:`fit_half_life` (the aging chore, daily; kept within the slider's two ends), else
  the two ends' mean (11 days). In between, linear on either side of the middle.
  The fit: a view engages (the viewer finished or replayed the clip) with probability
  ``p0 * 2 ** (-age / h)``, age the clip's when the viewer first had it; ``h`` (and ``p0``)
  maximise the likelihood of the instance's latest views (:data:`FIT_MIN_VIEWS` at least),
  the same multiplicative decay the recency term gives a clip's score.
- **affinity** (personalised only): ``CREATOR * tanh(creator interest / SCALE)``, or
  ``UNKNOWN_CREATOR * discovery`` for a creator the viewer has no interest in and does not
  follow (someone new to them), plus over the clip's hashtags ``TAG * sum(tanh(tag
  interest / SCALE)) / sqrt(number of tags)`` (many tags do not add up to more than one
  strong one). Interests are the decayed weights of :mod:`.interest` and may be negative:
  a creator or a hashtag the viewer skips or asked to see less of pushes the clip down.
- **priors** by source: a followed author adds ``FOLLOWED * (1 - discovery / 2)``, a remix
  of a clip the viewer liked adds ``REMIX_OF_LIKED``, of one they watched to the end (and
  did not like) ``REMIX_OF_WATCHED`` (personalised only); a new creator's clip adds
  ``NEW_CREATOR * discovery``. Trending clips get no prior of their own: the
  trending source brings them into the candidates, their engagement ranks them.

``discovery`` and ``popular`` are the viewer's sliders (0..1). With ``personalised=False``
the affinity, the personal priors and exploration are left out: the score is quality +
popularity + recency + the new-creator prior, the same for every viewer with the same
sliders (a global ranking).

**Diversity**: the list is built greedily. At each position, among the remaining clips that
keep the rules within every ``WINDOW`` consecutive clips (no creator twice, no hashtag more
than ``MAX_TAG_IN_WINDOW`` times), the one with the best score less a diminishing-returns
penalty: ``CREATOR_REPEAT`` per clip of the same creator and ``TAG_REPEAT`` per clip
sharing a hashtag (averaged over the clip's tags) among the last ``SPREAD`` placed. When no
remaining clip fits, the hashtag rule is relaxed first, then the creator rule (a viewer who
follows one creator still gets a list; :func:`_diversify` tells how the work is bounded).
``Ranked.score`` is the score before the penalty.

**Reason**: the largest contribution that can be named, in plain words ("from @bob, whom
you follow", "a remix of a clip you liked", "because you liked 3 clips by @ann", "because
you often watch @ann", "because you watch #cats", "a remix of a clip you watched", "new
creator", "trending on this instance" or "... across the fediverse" for a remote clip,
"because you picked #cats" for a cold-start clip, "someone new to you"), else "fresh on
this instance" (under a day old) or "popular on this instance". Personal reasons only when
personalised.
``Ranked.source`` is the source that reason speaks for.

The constants were tuned with ``bench/for_you.py`` (synthetic instance; see its docstring).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "SOURCES",
    "Features",
    "Ranked",
    "Taste",
    "fit_half_life",
    "rank",
    "score",
    "slider_half_life",
]

SOURCES = ("following", "creator", "tag", "remix", "trending", "discovery", "cold_start")

# The formula's constants (see the module docstring; tuned with bench/for_you.py).
PRIOR_RATE = 0.15  # instance-wide engagement per view assumed before a clip has views
PRIOR_SKIP = 0.3  # skips per view assumed before a clip has views
PRIOR_VIEWS = 20.0  # how many views' worth that prior counts for
QUALITY = 1.0
SKIP_PENALTY = 1.0
POPULAR_MIN = 0.05
POPULAR_MAX = 0.2
HALF_LIFE_FRESH = 2.0  # days
HALF_LIFE_POPULAR = 20.0  # days
FIT_MIN_VIEWS = 500  # views a half-life is fitted from, at least
FIT_MIN_ENGAGED = 30  # ... of which engaged
FIT_RANGE = (0.25, 365.0)  # days: the half-lives the fit considers
SCALE = 5.0  # interest weight at which tanh reaches 0.76
CREATOR = 1.5
TAG = 1.2
FOLLOWED = 0.8
REMIX_OF_LIKED = 0.8
REMIX_OF_WATCHED = 0.5
NEW_CREATOR = 1.0
UNKNOWN_CREATOR = 3.0  # times the discovery slider: a creator the viewer has no interest in
EXPLORE = 4.0  # times the discovery slider: spread of the exploration draw on quality
WINDOW = 5
MAX_TAG_IN_WINDOW = 2
LOOKAHEAD = 200  # clips a position looks at (see _diversify)
SPREAD = 10  # how many of the last clips the diminishing-returns penalty looks at
CREATOR_REPEAT = 1.5  # less per clip of the same creator among them
TAG_REPEAT = 0.6  # less per clip sharing a hashtag among them (averaged over the tags)
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
    remix_of_watched: bool = False  # ... watched to the end (and did not like)
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
    viewer: int = 0  # the viewer's account id: seeds the exploration draw (see rank)
    half_life: float | None = None  # days: the instance's fitted one (None: not fitted)


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


@dataclass(frozen=True, slots=True)
class _Context:
    """What one call of :func:`rank` computes once: the sliders' effects and the time."""

    taste: Taste
    now: datetime
    recency_per_day: float  # ln 2 / half-life in days
    popular_weight: float
    new_creator: float
    unknown_creator: float
    followed: float
    explore: float
    draw_key: int  # viewer and day, for the exploration draw

    @classmethod
    def of(cls, taste: Taste, now: datetime) -> _Context:
        popular = min(1.0, max(0.0, taste.popular))
        discovery = min(1.0, max(0.0, taste.discovery))
        half_life = slider_half_life(popular, taste.half_life)
        return cls(
            taste=taste,
            now=now,
            recency_per_day=math.log(2) / half_life,
            popular_weight=POPULAR_MIN + (POPULAR_MAX - POPULAR_MIN) * popular,
            new_creator=NEW_CREATOR * discovery,
            unknown_creator=UNKNOWN_CREATOR * discovery,
            followed=FOLLOWED * (1 - discovery / 2),
            explore=EXPLORE * discovery if taste.personalised else 0.0,
            draw_key=(taste.viewer * 1_000_003 + int(now.timestamp()) // 86400) & _MASK,
        )


_MASK = (1 << 64) - 1


def slider_half_life(popular: float, fitted: float | None = None) -> float:
    """The recency half-life in days at the fresh-popular slider's *popular* (0..1): the
    instance's *fitted* one at the middle (kept between the two ends; None: their mean),
    linear from there to ``HALF_LIFE_FRESH`` at 0 and ``HALF_LIFE_POPULAR`` at 1."""
    middle = (HALF_LIFE_FRESH + HALF_LIFE_POPULAR) / 2
    if fitted is not None and math.isfinite(fitted):
        middle = min(HALF_LIFE_POPULAR, max(HALF_LIFE_FRESH, fitted))
    popular = min(1.0, max(0.0, popular))
    if popular <= 0.5:
        return HALF_LIFE_FRESH + (middle - HALF_LIFE_FRESH) * 2 * popular
    return middle + (HALF_LIFE_POPULAR - middle) * (2 * popular - 1)


def fit_half_life(views: Iterable[tuple[float, int, int]]) -> float | None:
    """The half-life in days that best explains engagement by a clip's age: *views* are
    ``(age in days, views, engaged)`` groups (views of clips of about that age, and how
    many of them engaged). Maximum likelihood of ``P(engaged) = p0 * 2 ** (-age / h)``
    over ``h`` in :data:`FIT_RANGE` (a log grid, then refined) and ``p0``. None when there
    are fewer than :data:`FIT_MIN_VIEWS` views or :data:`FIT_MIN_ENGAGED` engaged ones.
    Pure; cost linear in the number of groups (callers group views, e.g. by quarter day)."""
    groups = [(max(0.0, a), n, min(max(k, 0), n)) for a, n, k in views if n > 0]
    if sum(n for _, n, _ in groups) < FIT_MIN_VIEWS:
        return None
    if sum(k for _, _, k in groups) < FIT_MIN_ENGAGED:
        return None

    def best(rate: float) -> float:
        """The log-likelihood at decay *rate* (per day), maximised over log p0."""
        return _max_concave(lambda a: _log_likelihood(groups, a, rate), -30.0, 0.0)

    low, high = (math.log(h) for h in FIT_RANGE)
    steps = 60
    grid = [math.exp(low + (high - low) * i / steps) for i in range(steps + 1)]
    scores = [best(math.log(2) / h) for h in grid]
    i = max(range(len(grid)), key=lambda j: scores[j])
    lo, hi = math.log(grid[max(0, i - 1)]), math.log(grid[min(steps, i + 1)])
    log_h = _argmax(lambda x: best(math.log(2) / math.exp(x)), lo, hi)
    return math.exp(log_h)


def _log_likelihood(groups: list[tuple[float, int, int]], a: float, rate: float) -> float:
    total = 0.0
    for age, n, k in groups:
        log_p = min(a - rate * age, -1e-9)
        total += k * log_p + (n - k) * math.log1p(-math.exp(log_p))
    return total


_GOLDEN = (math.sqrt(5) - 1) / 2


def _argmax(f: Callable[[float], float], lo: float, hi: float, steps: int = 40) -> float:
    """Where a unimodal *f* is largest on [lo, hi] (golden-section search)."""
    a, b = lo, hi
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2


def _max_concave(f: Callable[[float], float], lo: float, hi: float) -> float:
    return f(_argmax(f, lo, hi))


def _draw(key: int, clip_id: int) -> float:
    """A fixed pseudo-random number in [-sqrt 3, sqrt 3) (mean 0, variance 1) for the viewer,
    the day and the clip: splitmix64's finaliser."""
    x = (key * 0x9E3779B97F4A7C15 + clip_id + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return (x / 2.0**63 - 1.0) * 1.7320508075688772


def _quality(f: Features, explore: float = 0.0, draw_key: int = 0) -> float:
    exposure = max(f.views, f.likes + f.comments + f.boosts + f.remixes, 0)
    engagement = (
        max(f.likes, 0)
        + 2 * max(f.comments, 0)
        + 2 * max(f.boosts, 0)
        + 3 * max(f.remixes, 0)
        + 0.5 * max(f.completions, 0)
    )
    rate = (engagement + PRIOR_RATE * PRIOR_VIEWS) / (exposure + PRIOR_VIEWS)
    if explore:
        # Thompson-style: the rate's log is known to about 1 / sqrt(engagements seen).
        rate *= math.exp(
            explore * _draw(draw_key, f.clip_id) / math.sqrt(engagement + PRIOR_RATE * PRIOR_VIEWS)
        )
    skip_rate = (max(f.skips, 0) + PRIOR_SKIP * PRIOR_VIEWS) / (exposure + PRIOR_VIEWS)
    return QUALITY * math.log(rate / PRIOR_RATE) - SKIP_PENALTY * (skip_rate - PRIOR_SKIP)


def _creator_affinity(f: Features, taste: Taste) -> float:
    weight = taste.creators.get(f.author_id)
    return CREATOR * math.tanh(weight / SCALE) if weight else 0.0


def _tag_parts(f: Features, taste: Taste) -> list[tuple[float, str]]:
    """Each hashtag's share of the affinity (the clip's tags share ``TAG`` by sqrt)."""
    if not f.tags:
        return []
    norm = TAG / math.sqrt(len(f.tags))
    tags = taste.tags
    return [(norm * math.tanh(tags.get(t, 0.0) / SCALE), t) for t in f.tags]


def _score(f: Features, ctx: _Context) -> float:
    """The formula of the module docstring."""
    age_days = max(0.0, (ctx.now - f.created_at).total_seconds() / 86400)
    interactions = max(0, f.likes + f.boosts + f.comments + f.remixes)
    total = (
        _quality(f, ctx.explore, ctx.draw_key)
        + ctx.popular_weight * math.log1p(interactions)
        - ctx.recency_per_day * age_days
    )
    if f.author_new:
        total += ctx.new_creator
    taste = ctx.taste
    if taste.personalised:
        if f.author_id in taste.creators:
            total += _creator_affinity(f, taste)
        elif not f.author_followed:
            total += ctx.unknown_creator
        if f.tags and taste.tags:
            total += sum(part for part, _ in _tag_parts(f, taste))
        if f.author_followed:
            total += ctx.followed
        if f.remix_of_liked:
            total += REMIX_OF_LIKED
        elif f.remix_of_watched:
            total += REMIX_OF_WATCHED
    return total


def _explain(f: Features, ctx: _Context) -> tuple[str, str]:
    """The source the clip is shown for and why, in plain words: the largest contribution
    that can be named (personal ones only when personalised), else a global reason."""
    taste = ctx.taste
    where = "on this instance" if f.local else "across the fediverse"
    named: list[tuple[float, str, str]] = []
    if f.author_new:
        named.append((ctx.new_creator, "discovery", "new creator"))
    if "trending" in f.sources:
        named.append((REASON_MIN, "trending", f"trending {where}"))
    if taste.personalised:
        liked = taste.liked_by_creator.get(f.author_id, 0)
        creator_part = _creator_affinity(f, taste)
        if liked > 0:
            clips = "a clip" if liked == 1 else f"{liked} clips"
            named.append((creator_part, "creator", f"because you liked {clips} by {f.author}"))
        else:
            named.append((creator_part, "creator", f"because you often watch {f.author}"))
        parts = _tag_parts(f, taste)
        if parts:
            part, tag = max(parts)
            named.append((part, "tag", f"because you watch #{tag}"))
        if f.author_followed:
            named.append(
                (ctx.followed + REASON_MIN, "following", f"from {f.author}, whom you follow")
            )
        if f.remix_of_liked:
            named.append((REMIX_OF_LIKED + REASON_MIN, "remix", "a remix of a clip you liked"))
        elif f.remix_of_watched:
            named.append((REMIX_OF_WATCHED + REASON_MIN, "remix", "a remix of a clip you watched"))
        if "cold_start" in f.sources:
            picked = next((t for t in f.tags if t in taste.picked_tags), None)
            if picked is not None:
                named.append((REASON_MIN, "cold_start", f"because you picked #{picked}"))
        if f.author_id not in taste.creators and not f.author_followed and ctx.unknown_creator:
            # Last: the reasons above say more when they apply (the first of equals wins).
            named.append((min(ctx.unknown_creator, REASON_MIN), "discovery", "someone new to you"))
    best = max(named, key=lambda n: n[0], default=None)
    if best is not None and best[0] >= REASON_MIN:
        return best[1], best[2]
    source = next((s for s in SOURCES if s in f.sources), "trending")
    if (ctx.now - f.created_at).total_seconds() < 86400:
        return source, f"fresh {where}"
    return source, f"popular {where}"


def score(f: Features, taste: Taste, now: datetime) -> tuple[float, str, str]:
    """One clip's score, the source it is shown for and the reason, in plain words."""
    ctx = _Context.of(taste, now)
    return (_score(f, ctx), *_explain(f, ctx))


class _Window:
    """The last *size* clips placed, with how many of them have each creator and hashtag."""

    __slots__ = ("clips", "creators", "tags")

    def __init__(self, size: int) -> None:
        self.clips: deque[Features] = deque(maxlen=size)
        self.creators: Counter[int] = Counter()
        self.tags: Counter[str] = Counter()

    def push(self, f: Features) -> None:
        if len(self.clips) == self.clips.maxlen:
            old = self.clips[0]
            self.creators[old.author_id] -= 1
            self.tags.subtract(set(old.tags))
        self.clips.append(f)
        self.creators[f.author_id] += 1
        self.tags.update(set(f.tags))


def _tags_fit(f: Features, recent: _Window) -> bool:
    return all(recent.tags[t] < MAX_TAG_IN_WINDOW for t in f.tags)


def _penalty(f: Features, spread: _Window) -> float:
    """Diminishing returns: how much the clips placed recently already cover this clip's
    creator and hashtags."""
    penalty = CREATOR_REPEAT * spread.creators[f.author_id]
    if f.tags:
        penalty += TAG_REPEAT * sum(spread.tags[t] for t in f.tags) / len(f.tags)
    return penalty


def _diversify(ordered: list[_Scored], limit: int) -> list[_Scored]:
    """Greedy: at each position the remaining clip with the best score less its
    :func:`_penalty` among those that keep the rules over the last ``WINDOW`` clips; when
    none does, the hashtag rule is relaxed, then the creator rule.

    The work is bounded: a position looks at the ``LOOKAHEAD`` best remaining clips (fewer
    when, *ordered* being by score and a penalty only lowering a score, a clip's bare score
    cannot beat the best fitting key found), so the hashtag rule and the penalty hold
    within that horizon. The creator rule holds whenever it can: remaining clips are
    counted per creator; when every remaining creator is in the window, the rule applies
    to the longest shorter window it can hold over (round robin among the last creators
    left); else the scan goes on past the horizon to the first clip that keeps it.
    Cost O(limit * LOOKAHEAD * WINDOW), whatever the number of candidates."""
    taken = [False] * len(ordered)
    head = 0  # every clip before it is taken
    out: list[_Scored] = []
    recent = _Window(WINDOW - 1)
    spread = _Window(SPREAD)
    by_creator = Counter(s.features.author_id for s in ordered)
    while len(out) < limit and head < len(ordered):
        # The creator rule over the last WINDOW - 1 clips, or over fewer when so few
        # creators remain that it cannot hold (three creators left: no repeat within 3).
        placed = list(recent.clips)
        while True:
            recent_creators = {r.author_id for r in placed}
            if len(by_creator) > len(recent_creators & by_creator.keys()):
                break
            placed.pop(0)
        creator_rule = bool(recent_creators)
        # Best index and key per level: 0 keeps both rules, 1 only the creator rule, 2 none.
        picks = [-1, -1, -1]
        keys = [-math.inf, -math.inf, -math.inf]
        scanned = 0
        for i in range(head, len(ordered)):
            if taken[i]:
                continue
            s = ordered[i]
            if s.score <= keys[0]:
                break
            scanned += 1
            if scanned > LOOKAHEAD and (picks[0] >= 0 or picks[1] >= 0 or not creator_rule):
                break
            f = s.features
            if creator_rule and f.author_id in recent_creators:
                level = 2
            else:
                level = 0 if _tags_fit(f, recent) else 1
            key = s.score - _penalty(f, spread)
            if key > keys[level]:
                picks[level], keys[level] = i, key
        pick = next(p for p in picks if p >= 0)
        taken[pick] = True
        while head < len(ordered) and taken[head]:
            head += 1
        chosen = ordered[pick]
        author = chosen.features.author_id
        by_creator[author] -= 1
        if not by_creator[author]:
            del by_creator[author]
        out.append(chosen)
        recent.push(chosen.features)
        spread.push(chosen.features)
    return out


def rank(candidates: Iterable[Features], taste: Taste, now: datetime, limit: int) -> list[Ranked]:
    """The viewer's list, best first, at most *limit* clips, diversified, each with its
    source and reason (see the module docstring for the formula)."""
    if limit <= 0:
        return []
    ctx = _Context.of(taste, now)
    best: dict[int, _Scored] = {}
    for f in candidates:
        value = _score(f, ctx)
        kept = best.get(f.clip_id)
        if kept is None or value > kept.score:
            best[f.clip_id] = _Scored(f, value)
    ordered = sorted(best.values(), key=lambda s: (-s.score, -s.features.clip_id))
    out = []
    for s in _diversify(ordered, limit):
        source, reason = _explain(s.features, ctx)
        out.append(Ranked(s.features.clip_id, s.score, source, reason))
    return out
