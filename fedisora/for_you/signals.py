"""Recording what For You learns: the player's reports, people's actions, their controls.

Three kinds of input move a viewer's :class:`~fedisora.models.Interest` rows (one per
creator and per hashtag, weights from :data:`fedisora.for_you.interest.SIGNAL_WEIGHTS`,
decayed on read by :func:`fedisora.for_you.interest.decayed`):

- **The player's reports** (:func:`record_feedback`, ``POST /api/fedisora/v1/feedback`` and
  the web player's ``POST /feedback``): batches of at most :data:`MAX_EVENTS` events
  ``{"clip_id", "type", "watch_ms"}``. They are aggregated into one
  :class:`~fedisora.models.ClipView` row per viewer and clip (so a flood costs one row), and
  a viewer counts once per clip in the clip's ``views_count``, ``completions_count`` and
  ``skips_count`` (the transition of the row's count from zero, under the row's lock).
  Clips that do not exist, were deleted or that the viewer may not see
  (:func:`fedisora.services.visibility.visible_to`, the rule of ``can_see_clip`` for the
  batch's clips at once) are ignored and counted as such; a
  malformed batch (not a list, more than :data:`MAX_EVENTS`, an unknown type, a negative
  or non-integer ``watch_ms``, or one over :data:`MAX_WATCH_MS`) is refused whole (422).
  Watch time within that bound is *clamped*, not refused, to the clip's length times
  :data:`MAX_VIEWINGS` per event (a clip of unknown length counts as
  :data:`DEFAULT_CLIP_MS`): a player may report a loop that played several times, no more.
  Batches count against the ``feedback`` rate limit per account
  (:mod:`fedisora.ratelimits`).
- **Pages served** (:func:`note_served`, called by :func:`fedisora.for_you.feed.page`): each
  clip of a For You page counts as an impression for its viewer (Mastodon clients send no
  reports), once: the player's first impression report of a clip served so is that same
  impression (``ClipView.served``), not a second one.
- **Actions** (:func:`record_action`): likes, comments, boosts, remixes and follows (an
  unlike, unboost or unfollow takes one back, so that a loop of them adds nothing), called
  by the services (:mod:`fedisora.services.interactions`, :mod:`~fedisora.services.posts`,
  :mod:`~fedisora.services.follows`) so that the API, the web and federation all count.
  Only local viewers learn: a peer's like of a local clip counts in the clip's own counters
  (``likes_count``...), as it always did, and makes no interest row.
- **Explicit choices**: :func:`not_interested` hides the clip for the viewer
  (``ClipView.hidden``) and lowers its creator and hashtags once; :func:`show_less` lowers
  them more softly and hides nothing.

**Influence is capped.** What one clip's player reports are worth is clamped to
±:data:`CLIP_CAP` (a like's worth) a day: a day's first report of a clip is worth at most
that, and further reports later that day only what is left of the cap over the clip's
running totals. Comments and remixes count once per clip (the first one), likes and boosts
exist once per clip, a clip's hashtags count up to :data:`MAX_TAGS`, and every interest is
bounded by :data:`~fedisora.for_you.interest.MAX_WEIGHT`. Interests are personal: nothing
here ranks a clip for anyone but the viewer, and the global counters move once per viewer.

After a change of at least :data:`NOTICEABLE`, the viewer's candidate list is made due for a
refresh (``fedisora.for_you.candidates.request_refresh``, when that module is present).

**Control**: :func:`interests_of` lists what was learned (decayed, strongest first),
:func:`reset_interests` forgets all or one, :func:`settings_of` and :func:`update_settings`
read and change :class:`~fedisora.models.ForYouSettings`.

**Aging** (:func:`age_out`, the ``for_you_aging`` chore of
:mod:`fedisora.work.housekeeping`, hourly): view rows not seen for :data:`VIEW_RETENTION` are
deleted (the clip may come back in For You), and interests whose decayed weight fell under
:data:`FORGET_BELOW`. Once a day (:data:`FIT_EVERY`) the same chore fits the instance's
recency half-life (:func:`refit_half_life`: :func:`fedisora.for_you.rank.fit_half_life` over
the latest :data:`FIT_SAMPLE` view rows the players reported, each the clip's age when first
seen and whether it was finished or replayed) and keeps it in its row's progress, where
:func:`instance_half_life` reads it for each refresh.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from fedisora import ratelimits
from fedisora.errors import Invalid, NotFound
from fedisora.for_you.interest import (
    HALF_LIFE,
    MAX_WEIGHT,
    MIN_WEIGHT,
    SIGNAL_WEIGHTS,
    added,
    decayed,
)
from fedisora.models import (
    Account,
    Clip,
    ClipTag,
    ClipView,
    Comment,
    ForYouSettings,
    Interest,
    InterestKind,
    MediaFile,
    Tag,
    utcnow,
)
from fedisora.services.retention import Fence
from fedisora.services.text import HASHTAG_RE
from fedisora.services.visibility import can_see_clip, visible_to

__all__ = [
    "ACTIONS",
    "CLIP_CAP",
    "EVENT_TYPES",
    "MAX_EVENTS",
    "MAX_SETTINGS_TAGS",
    "MAX_WATCH_MS",
    "RATE",
    "InterestEntry",
    "age_out",
    "fit_views",
    "instance_half_life",
    "interests_of",
    "not_interested",
    "note_action",
    "note_served",
    "record_action",
    "record_feedback",
    "refit_half_life",
    "reset_interests",
    "settings_of",
    "show_less",
    "update_settings",
    "weights_of",
]

log = logging.getLogger("fedisora.for_you")

RATE = "feedback"
"""The rate limit every batch of reports counts against, per account."""
MAX_EVENTS = 100
"""Events one batch may carry."""
EVENT_TYPES = ("impression", "watch", "complete", "replay", "skip", "not_interested", "show_less")
MAX_WATCH_MS = 3_600_000
"""``watch_ms`` over this (an hour, for clips of seconds) is refused as absurd."""
MAX_VIEWINGS = 5
"""One event's watch time counts up to the clip's length this many times (a loop)."""
DEFAULT_CLIP_MS = 10_000
"""The length assumed for a clip whose media does not say (a remote one, say)."""
WATCH_UNITS_CAP = 3.0
"""Complete viewings' worth of watch time that count toward interests."""
CLIP_CAP = SIGNAL_WEIGHTS["like"]
"""What one clip's player reports may move an interest by in a day, either way."""
MAX_TAGS = 5
"""Hashtags of one clip whose interests a signal moves (a clip with fifty counts five)."""
COUNT_CAP = 100_000
"""A view row's counters stop here (no flood can overflow a column)."""
NOTICEABLE = 3.0
"""The total interest change after which the viewer's list is refreshed."""
VIEW_RETENTION = timedelta(days=90)
FORGET_BELOW = 0.05
"""Interests whose decayed weight is smaller than this (either way) are shown as nothing
and forgotten by the aging chore."""
AGING_BATCH = 5000
FIT_EVERY = timedelta(days=1)
"""How often the aging chore fits the instance's recency half-life again."""
FIT_SAMPLE = 20_000
"""The latest view rows the fit reads."""
FIT_BIN_DAYS = 0.25
FIT_MAX_AGE_DAYS = 120.0
AGING_CHORE = "for_you_aging"
MAX_SETTINGS_TAGS = 10

#: What each action adds to the creator's and the clip's hashtags' interests.
ACTIONS: dict[str, float] = {
    "like": SIGNAL_WEIGHTS["like"],
    "unlike": -SIGNAL_WEIGHTS["like"],  # takes the like back
    "comment": SIGNAL_WEIGHTS["comment"],
    "boost": SIGNAL_WEIGHTS["boost"],
    "unboost": -SIGNAL_WEIGHTS["boost"],
    "remix": SIGNAL_WEIGHTS["remix"],
    "follow": SIGNAL_WEIGHTS["follow"],  # the creator only
    "unfollow": -SIGNAL_WEIGHTS["follow"],
}

Key = tuple[InterestKind, str]


# --------------------------------------------------------------------------- validation


@dataclass
class _Tally:
    """One clip's events of a batch, summed."""

    events: int = 0
    impressions: int = 0
    watch_ms: int = 0
    completions: int = 0
    replays: int = 0
    skips: int = 0
    not_interested: bool = False
    show_less: bool = False
    watch_events: list[int] = field(default_factory=list)


def _parse(events: object) -> dict[int, _Tally]:
    """The batch summed per clip id (-1 for an id that names no clip), or Invalid naming
    the first thing wrong with it."""
    if not isinstance(events, list):
        raise Invalid("events must be a list of {clip_id, type, watch_ms} objects")
    if len(events) > MAX_EVENTS:
        raise Invalid(f"events: at most {MAX_EVENTS} a batch, not {len(events)}")
    tallies: dict[int, _Tally] = {}
    for n, event in enumerate(events):
        where = f"events[{n}]"
        if not isinstance(event, dict):
            raise Invalid(f"{where} must be an object with clip_id and type")
        raw_id = event.get("clip_id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise Invalid(f"{where}.clip_id must be a clip's id (a string of digits)")
        kind = event.get("type")
        if kind not in EVENT_TYPES:
            raise Invalid(f"{where}.type must be one of {', '.join(EVENT_TYPES)}")
        watch = event.get("watch_ms", 0)
        if watch is None:
            watch = 0
        if isinstance(watch, float) and watch.is_integer():
            watch = int(watch)
        if isinstance(watch, bool) or not isinstance(watch, int):
            raise Invalid(f"{where}.watch_ms must be a whole number of milliseconds")
        if not 0 <= watch <= MAX_WATCH_MS:
            raise Invalid(f"{where}.watch_ms must be between 0 and {MAX_WATCH_MS}")
        clip_id = _clip_id(raw_id)
        tally = tallies.setdefault(clip_id, _Tally())
        tally.events += 1
        if kind == "not_interested":
            tally.not_interested = True
        elif kind == "show_less":
            tally.show_less = True
        else:
            tally.impressions += kind == "impression"
            tally.completions += kind == "complete"
            tally.replays += kind == "replay"
            tally.skips += kind == "skip"
            if watch:
                tally.watch_events.append(watch)
    return tallies


def _clip_id(raw: str | int) -> int:
    try:
        number = int(str(raw).strip())
    except ValueError:
        return -1
    return number if 0 <= number < 2**63 else -1


# --------------------------------------------------------------------------- worth


@dataclass(frozen=True)
class _Counts:
    watch_ms: int = 0
    completions: int = 0
    replays: int = 0
    skips: int = 0


def _worth(counts: _Counts, clip_ms: int) -> float:
    """What a viewer's reports of one clip say of their taste, within ±CLIP_CAP: watch
    time in complete viewings (up to WATCH_UNITS_CAP), one completion, two replays, one
    skip. Counts past those say nothing more."""
    units = min(WATCH_UNITS_CAP, counts.watch_ms / max(clip_ms, 1))
    value = (
        SIGNAL_WEIGHTS["watch"] * units
        + SIGNAL_WEIGHTS["complete"] * min(counts.completions, 1)
        + SIGNAL_WEIGHTS["replay"] * min(counts.replays, 2)
        + SIGNAL_WEIGHTS["skip"] * min(counts.skips, 1)
    )
    return max(-CLIP_CAP, min(CLIP_CAP, value))


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------- interests


async def _clip_keys(clips: Sequence[Clip]) -> dict[int, list[Key]]:
    """Per clip, the interests a signal about it moves: its creator's and (up to
    MAX_TAGS) its hashtags'."""
    keys: dict[int, list[Key]] = {c.pk: [(InterestKind.CREATOR, str(c.account_id))] for c in clips}
    if not clips:
        return keys
    rows = await ClipTag.filter(clip_id__in=[c.pk for c in clips]).values("clip_id", "tag_id")
    tag_ids = {int(r["tag_id"]) for r in rows}
    names = {t.pk: t.name for t in await Tag.filter(pk__in=sorted(tag_ids))} if tag_ids else {}
    per_clip: dict[int, list[str]] = {}
    for r in rows:
        name = names.get(int(r["tag_id"]))
        if name:
            per_clip.setdefault(int(r["clip_id"]), []).append(name.lower())
    for clip_id, tags in per_clip.items():
        for name in sorted(set(tags))[:MAX_TAGS]:
            keys[clip_id].append((InterestKind.TAG, name))
    return keys


async def _apply(viewer_id: int, deltas: Mapping[Key, float], now: datetime) -> float:
    """Add *deltas* to the viewer's interests (decayed first, clamped); returns the total
    change. One transaction; a concurrent first insert of the same interest is retried."""
    wanted = {k: d for k, d in deltas.items() if abs(d) > 1e-9}
    if not wanted:
        return 0.0
    await _ensure_aging()
    for attempt in range(3):
        try:
            async with in_transaction() as conn:
                await _apply_in(conn, viewer_id, wanted, now)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return sum(abs(d) for d in wanted.values())


async def _apply_in(
    conn: BaseDBAsyncClient, viewer_id: int, deltas: Mapping[Key, float], now: datetime
) -> None:
    existing = {
        (InterestKind(row.kind), row.key): row
        for row in await Interest.filter(
            account_id=viewer_id, key__in=sorted({key for _, key in deltas})
        )
        .order_by("id")  # locked in one order: concurrent batches cannot deadlock
        .select_for_update()
        .using_db(conn)
    }
    changed: list[Interest] = []
    fresh: list[Interest] = []
    for key, delta in deltas.items():
        row = existing.get(key)
        if row is None:
            weight = added(0.0, now, delta, now)
            fresh.append(
                Interest(
                    account_id=viewer_id,
                    kind=key[0],
                    key=key[1],
                    weight=weight,
                    events=1,
                    updated_at=now,
                )
            )
        else:
            row.weight = added(row.weight, row.updated_at, delta, now)
            row.events = min(row.events + 1, COUNT_CAP)
            row.updated_at = now
            changed.append(row)
    if changed:
        await Interest.bulk_update(
            changed, fields=["weight", "events", "updated_at"], using_db=conn
        )
    if fresh:
        await Interest.bulk_create(fresh, using_db=conn)


async def _request_refresh(viewer: Account) -> None:
    """Make the viewer's For You list due for a refresh. The serving side
    (``fedisora.for_you.candidates``, issue 17) may not be merged yet: without it there is
    no list to refresh, and nothing to do."""
    try:
        module = importlib.import_module("fedisora.for_you.candidates")
    except ImportError:
        return
    request: Callable[[Account], Awaitable[object] | object] | None = getattr(
        module, "request_refresh", None
    )
    if request is None:
        return
    try:
        result = request(viewer)
        if inspect.isawaitable(result):
            await result
    except Exception:  # the signal is stored; the list refreshes when it next runs low
        log.exception("For You: could not request a refresh of account %s's list", viewer.pk)


_aging_ensured = False


async def _ensure_aging() -> None:
    """Make sure the aging chore has its row (a database migrated before the chore existed
    has none), once per process, before the first row it ages is written."""
    global _aging_ensured
    if not _aging_ensured:
        from fedisora.work.housekeeping import ensure_chores

        await ensure_chores()
        _aging_ensured = True


async def _changed(viewer: Account, total: float) -> None:
    if total >= NOTICEABLE:
        await _request_refresh(viewer)


# --------------------------------------------------------------------------- the player


async def record_feedback(
    viewer: Account,
    events: object,
    *,
    now: datetime | None = None,
    limits: ratelimits.Store | None = None,
) -> dict[str, int]:
    """Record a batch of the player's reports (see the module docstring): ``{"accepted":
    n, "ignored": m}``, events counted. Raises :class:`~fedisora.errors.Invalid` (422) for
    a malformed batch, :class:`~fedisora.errors.RateLimited` (429) over the ``feedback``
    limit of *limits* (the process's store by default)."""
    await ratelimits.enforce(RATE, f"account:{viewer.pk}", limits)  # malformed ones count too
    tallies = _parse(events)
    now = now or utcnow()
    ids = sorted(i for i in tallies if i >= 0)
    found = list(await Clip.filter(pk__in=ids, deleted_at=None).order_by("id")) if ids else []
    visible = await visible_to(viewer, found)  # (one batch: a fixed number of queries)
    accepted = sum(tallies[c.pk].events for c in visible)
    ignored = sum(t.events for t in tallies.values()) - accepted
    if not visible:
        return {"accepted": accepted, "ignored": ignored}
    await _ensure_aging()
    lengths = await _lengths(visible)
    learns = viewer.local
    keys = await _clip_keys([c for c in visible if c.account_id != viewer.pk]) if learns else {}
    deltas: dict[Key, float] = {}
    for clip in visible:
        worth = await _record_view(viewer, clip, tallies[clip.pk], lengths[clip.pk], now)
        for key in keys.get(clip.pk, ()):
            deltas[key] = deltas.get(key, 0.0) + worth
    total = await _apply(viewer.pk, deltas, now) if learns else 0.0
    await _changed(viewer, total)
    return {"accepted": accepted, "ignored": ignored}


async def note_served(
    viewer: Account, clips: Sequence[Clip], *, now: datetime | None = None
) -> int:
    """Count the clips of a page served to *viewer* as shown to it (an impression), as the
    web player's report of them would: a Mastodon client reports nothing, and without this
    its For You would serve the same top clips again until the next refresh.

    Only clips the viewer has no view row for count (one row per viewer and clip, as the
    player's reports make): the row is made with one impression, marked ``served``, and the
    clip's ``views_count`` moves as for a player's first impression. The player's own first
    impression report of the clip later is that impression, not another
    (:func:`record_feedback`). The row marks the clip as seen: For You leaves it out from
    then on (:func:`fedisora.for_you.candidates.eligible`). A fixed number of queries for a
    page (one transaction); returns how many clips were counted."""
    ids = sorted({c.pk for c in clips if c.account_id != viewer.pk})
    if not ids:
        return 0
    now = now or utcnow()
    had = await ClipView.filter(account_id=viewer.pk, clip_id__in=ids).values_list(
        "clip_id", flat=True
    )
    seen: set[Any] = set(had)
    fresh = [i for i in ids if i not in seen]
    if not fresh:
        return 0
    await _ensure_aging()
    async with in_transaction() as conn:
        await ClipView.bulk_create(
            [
                ClipView(
                    account_id=viewer.pk,
                    clip_id=clip_id,
                    impressions=1,
                    served=True,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for clip_id in fresh
            ],
            ignore_conflicts=True,  # (a player's report made one meanwhile: it counted)
            using_db=conn,
        )
        made: list[Any] = list(
            await ClipView.filter(
                account_id=viewer.pk, clip_id__in=fresh, served=True, first_seen_at=now
            )
            .using_db(conn)
            .values_list("clip_id", flat=True)
        )
        if made:
            await Clip.filter(pk__in=made).using_db(conn).update(views_count=F("views_count") + 1)
    return len(made)


async def _lengths(clips: Sequence[Clip]) -> dict[int, int]:
    """Each clip's length in milliseconds (DEFAULT_CLIP_MS when its media does not say)."""
    media_ids = [c.media_id for c in clips if c.media_id is not None]
    durations: dict[int, float] = {}
    if media_ids:
        for row in await MediaFile.filter(pk__in=media_ids).values("id", "duration"):
            if row["duration"]:
                durations[int(row["id"])] = float(row["duration"])
    out = {}
    for clip in clips:
        seconds = durations.get(clip.media_id) if clip.media_id is not None else None
        out[clip.pk] = int(seconds * 1000) if seconds and seconds > 0 else DEFAULT_CLIP_MS
    return out


async def _record_view(
    viewer: Account, clip: Clip, tally: _Tally, clip_ms: int, now: datetime
) -> float:
    """Fold one clip's events into the viewer's view row (locked), bump the clip's counters
    on each count's first time, apply "not interested"; returns what the reports are worth
    for the viewer's interests (0 for their own clip, or a remote viewer)."""
    per_event = clip_ms * MAX_VIEWINGS
    watch = sum(min(w, per_event) for w in tally.watch_events)
    played = tally.impressions or tally.completions or tally.replays or tally.skips or watch
    own = clip.account_id == viewer.pk
    worth = 0.0
    await _ensure_view_row(viewer.pk, clip.pk, now)
    async with in_transaction() as conn:
        # locked for this transaction (PostgreSQL; SQLite's writers take turns anyway)
        row = await (
            ClipView.filter(account_id=viewer.pk, clip_id=clip.pk)
            .using_db(conn)
            .select_for_update()
            .get()
        )
        before = _Counts(row.watch_ms, row.completions, row.replays, row.skips)
        # (a row made just now has zero counts: either way its worth is the batch's)
        fresh_day = row.last_seen_at < _day_start(now)
        shown = max(tally.impressions, 1 if played else 0)
        # A page that served the clip counted one impression already: this is that one.
        absorbed = 1 if row.served and shown else 0
        impressions = row.impressions + shown - absorbed
        after = _Counts(
            min(row.watch_ms + watch, COUNT_CAP * per_event),
            min(row.completions + tally.completions, COUNT_CAP),
            min(row.replays + tally.replays, COUNT_CAP),
            min(row.skips + tally.skips, COUNT_CAP),
        )
        hide = tally.not_interested and not row.hidden
        await (
            ClipView.filter(pk=row.pk)
            .using_db(conn)
            .update(
                impressions=min(impressions, COUNT_CAP),
                watch_ms=after.watch_ms,
                completions=after.completions,
                replays=after.replays,
                skips=after.skips,
                hidden=row.hidden or tally.not_interested,
                served=row.served and not absorbed,
                last_seen_at=now,
            )
        )
        if not own:
            bumps: dict[str, Any] = {}
            if row.impressions == 0 and impressions > 0:
                bumps["views_count"] = F("views_count") + 1
            if before.completions == 0 and after.completions > 0:
                bumps["completions_count"] = F("completions_count") + 1
            if before.skips == 0 and after.skips > 0:
                bumps["skips_count"] = F("skips_count") + 1
            if bumps:
                await Clip.filter(pk=clip.pk).using_db(conn).update(**bumps)
    if own or not viewer.local:
        return 0.0
    if fresh_day:  # a new day: the day's reports start from nothing
        worth = _worth(_since(after, before), clip_ms)
    else:
        worth = _worth(after, clip_ms) - _worth(before, clip_ms)
    if hide:
        worth += SIGNAL_WEIGHTS["not_interested"]
    elif tally.show_less:
        worth += SIGNAL_WEIGHTS["show_less"]
    return worth


def _since(after: _Counts, before: _Counts) -> _Counts:
    return _Counts(
        after.watch_ms - before.watch_ms,
        after.completions - before.completions,
        after.replays - before.replays,
        after.skips - before.skips,
    )


async def _ensure_view_row(viewer_id: int, clip_id: int, now: datetime) -> None:
    """Make the viewer's row for the clip when missing, in a statement of its own (a
    concurrent batch making it first is no failure; PostgreSQL would abort a transaction
    that met the conflict)."""
    if await ClipView.filter(account_id=viewer_id, clip_id=clip_id).exists():
        return
    try:
        await ClipView.create(
            account_id=viewer_id, clip_id=clip_id, first_seen_at=now, last_seen_at=now
        )
    except IntegrityError:
        pass


# --------------------------------------------------------------------------- explicit choices


async def not_interested(
    viewer: Account,
    clip: Clip,
    *,
    now: datetime | None = None,
    limits: ratelimits.Store | None = None,
) -> None:
    """Hide *clip* from the viewer's For You and lower its creator's and hashtags'
    interests (once: hiding it again changes nothing). NotFound for a clip they cannot see;
    it counts as a batch of reports (the ``feedback`` limit of *limits*)."""
    await _choice(viewer, clip, "not_interested", now, limits)


async def show_less(
    viewer: Account,
    clip: Clip,
    *,
    now: datetime | None = None,
    limits: ratelimits.Store | None = None,
) -> None:
    """Lower the interests of *clip*'s creator and hashtags, more softly than
    :func:`not_interested`, without hiding it. Each time counts (it is what the viewer
    asks for), within the interests' bounds and the ``feedback`` limit."""
    await _choice(viewer, clip, "show_less", now, limits)


async def _choice(
    viewer: Account,
    clip: Clip,
    kind: str,
    now: datetime | None,
    limits: ratelimits.Store | None,
) -> None:
    if clip.deleted_at is not None or not await can_see_clip(viewer, clip):
        raise NotFound("that clip does not exist or is not visible to you")
    await record_feedback(viewer, [{"clip_id": str(clip.pk), "type": kind}], now=now, limits=limits)


# --------------------------------------------------------------------------- actions


async def record_action(
    viewer: Account, target: Clip | Account, kind: str, *, now: datetime | None = None
) -> float:
    """What an action says of the viewer's taste: ``like``, ``unlike``, ``comment``,
    ``boost``, ``unboost``, ``remix`` (of *target*, a clip: its creator and hashtags) or
    ``follow``, ``unfollow`` (*target* an account, or a clip whose creator it is). Only local
    viewers learn, never of themselves; a second comment on or remix of the same clip adds
    nothing. Returns the total change."""
    if kind not in ACTIONS:
        raise ValueError(f"unknown For You action {kind!r}")
    if not viewer.local:
        return 0.0
    now = now or utcnow()
    author_id = target.pk if isinstance(target, Account) else target.account_id
    if author_id == viewer.pk:
        return 0.0
    weight = ACTIONS[kind]
    if (
        isinstance(target, Clip)
        and kind in ("comment", "remix")
        and await _again(viewer, target, kind)
    ):
        return 0.0
    if isinstance(target, Clip) and kind not in ("follow", "unfollow"):
        keys = (await _clip_keys([target]))[target.pk]
    else:
        keys = [(InterestKind.CREATOR, str(author_id))]
    total = await _apply(viewer.pk, {key: weight for key in keys}, now)
    await _changed(viewer, total)
    return total


async def _again(viewer: Account, clip: Clip, kind: str) -> bool:
    """Whether the viewer commented on (remixed) *clip* before this one."""
    if kind == "comment":
        count = await Comment.filter(account_id=viewer.pk, clip_id=clip.pk).count()
    else:
        count = await Clip.filter(account_id=viewer.pk, remix_of_id=clip.pk).count()
    return count > 1


async def note_action(viewer: Account, target: Clip | Account, kind: str) -> None:
    """:func:`record_action` for the services, after their action is committed: a failure
    here is logged, and the like (or follow...) stands."""
    try:
        await record_action(viewer, target, kind)
    except Exception:
        log.exception("For You: could not record a %s by account %s", kind, viewer.pk)


# --------------------------------------------------------------------------- control


@dataclass(frozen=True)
class InterestEntry:
    """One learned interest, as the viewer is shown it."""

    kind: str  # "creator" or "tag"
    key: str  # the account's id, or the hashtag's name
    label: str  # "@ann", "@bob@peer.example", "#cats"
    weight: float  # decayed to now
    events: int
    updated_at: datetime
    account: Account | None = None


async def interests_of(viewer: Account, *, now: datetime | None = None) -> list[InterestEntry]:
    """What For You learned of the viewer: creators (with their accounts; gone ones left
    out) and hashtags, weights decayed to *now*, strongest first, the negligible left out."""
    now = now or utcnow()
    rows = await Interest.filter(account_id=viewer.pk)
    creator_ids = [int(r.key) for r in rows if r.kind == InterestKind.CREATOR and r.key.isdigit()]
    accounts = {a.pk: a for a in await Account.filter(pk__in=creator_ids)} if creator_ids else {}
    out: list[InterestEntry] = []
    for row in rows:
        weight = decayed(row.weight, row.updated_at, now)
        if abs(weight) < FORGET_BELOW:
            continue
        kind = InterestKind(row.kind)
        if kind == InterestKind.CREATOR:
            account = accounts.get(int(row.key)) if row.key.isdigit() else None
            if account is None:
                continue
            out.append(
                InterestEntry(
                    kind.value,
                    row.key,
                    f"@{account.acct}",
                    weight,
                    row.events,
                    row.updated_at,
                    account,
                )
            )
        else:
            out.append(
                InterestEntry(
                    kind.value, row.key, f"#{row.key}", weight, row.events, row.updated_at
                )
            )
    out.sort(key=lambda e: (-e.weight, e.kind, e.label))
    return out


async def weights_of(
    viewer: Account, *, now: datetime | None = None, limit: int | None = None
) -> tuple[dict[int, float], dict[str, float]]:
    """The viewer's decayed interests as ranking reads them: by creator id and by hashtag
    (the *limit* most recently updated, when given)."""
    now = now or utcnow()
    creators: dict[int, float] = {}
    tags: dict[str, float] = {}
    query = Interest.filter(account_id=viewer.pk)
    if limit is not None:
        query = query.order_by("-updated_at").limit(limit)
    for row in await query:
        weight = decayed(row.weight, row.updated_at, now)
        if abs(weight) < FORGET_BELOW:
            continue
        if row.kind == InterestKind.CREATOR and row.key.isdigit():
            creators[int(row.key)] = weight
        elif row.kind == InterestKind.TAG:
            tags[row.key] = weight
    return creators, tags


async def reset_interests(
    viewer: Account, *, kind: str | None = None, key: str | None = None
) -> int:
    """Forget what was learned: everything; everything of one *kind* (``creator`` or
    ``tag``); or one interest (*kind* with *key*: an account id, or a hashtag; a *key*
    alone forgets it under either kind). Returns how many were forgotten. Hidden clips stay
    hidden."""
    query = Interest.filter(account_id=viewer.pk)
    if kind is not None:
        if kind not in {k.value for k in InterestKind}:
            raise Invalid("kind must be creator or tag")
        query = query.filter(kind=kind)
    if key is not None:
        key = key.strip()
        tag = key.lstrip("#").lower()
        if kind == InterestKind.TAG:
            query = query.filter(key=tag)
        elif kind == InterestKind.CREATOR:
            query = query.filter(key=key)
        else:
            query = query.filter(
                Q(kind=InterestKind.TAG, key=tag) | Q(kind=InterestKind.CREATOR, key=key)
            )
    removed = await query.delete()
    if removed:
        await _request_refresh(viewer)
    return removed


async def settings_of(viewer: Account) -> ForYouSettings:
    """The viewer's For You controls; the defaults (unsaved) without a row."""
    row = await ForYouSettings.get_or_none(account_id=viewer.pk)
    return row if row is not None else ForYouSettings(account_id=viewer.pk, tags=[])


def _fraction(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise Invalid(f"{name} must be a number between 0 and 1")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be a number between 0 and 1, not {value!r}") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise Invalid(f"{name} must be a number between 0 and 1")
    return number


def normalize_tags(raw: Iterable[object]) -> list[str]:
    """Hashtags as picked for the cold start: ``#`` optional, lower-cased, unique, at most
    MAX_SETTINGS_TAGS; Invalid naming a bad one."""
    out: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise Invalid("tags must be a list of hashtags")
        text = item.strip()
        if not text:
            continue
        name = text[1:] if text.startswith("#") else text
        if not HASHTAG_RE.fullmatch(f"#{name}"):
            raise Invalid(f"{text[:40]!r} is not a hashtag (letters, digits and _ only)")
        if name.lower() not in out:
            out.append(name.lower())
    if len(out) > MAX_SETTINGS_TAGS:
        raise Invalid(f"tags: at most {MAX_SETTINGS_TAGS} hashtags, not {len(out)}")
    return out


async def update_settings(
    viewer: Account,
    *,
    personalised: bool | None = None,
    popular: object = None,
    discovery: object = None,
    include_unverified: bool | None = None,
    tags: Iterable[object] | None = None,
) -> ForYouSettings:
    """Change the viewer's controls (None: unchanged). Invalid (422) names a bad value:
    *popular* and *discovery* are numbers from 0 to 1, *tags* up to MAX_SETTINGS_TAGS
    hashtags."""
    row = await settings_of(viewer)
    if personalised is not None:
        row.personalised = bool(personalised)
    if popular is not None:
        row.popular = _fraction("popular", popular)
    if discovery is not None:
        row.discovery = _fraction("discovery", discovery)
    if include_unverified is not None:
        row.include_unverified = bool(include_unverified)
    if tags is not None:
        row.tags = normalize_tags(tags)
    row.updated_at = utcnow()
    try:
        await row.save()
    except IntegrityError:  # a concurrent first save: change that row instead
        saved = await ForYouSettings.get(account_id=viewer.pk)
        row.pk = saved.pk
        row._saved_in_db = True
        await row.save()
    await _request_refresh(viewer)
    return row


# --------------------------------------------------------------------------- aging


def _forget_buckets() -> list[tuple[float, timedelta]]:
    """(bound, age): an interest with |weight| ≤ bound older than age has decayed under
    FORGET_BELOW (bounds doubling from FORGET_BELOW: a half-life each)."""
    out = []
    bound, age = FORGET_BELOW, timedelta(0)
    while bound < max(MAX_WEIGHT, -MIN_WEIGHT):
        bound, age = bound * 2, age + HALF_LIFE
        out.append((bound, age))
    return out


async def age_out(
    *, now: datetime, fence: Fence, batch: int = AGING_BATCH
) -> tuple[dict[str, int], bool]:
    """One bounded step of the aging chore: view rows unseen for VIEW_RETENTION (up to
    *batch*), and interests decayed under FORGET_BELOW (conservatively: up to a half-life
    late), deleted in one transaction fenced on the chore's lease. Returns the counts and
    whether more view rows are due at once."""
    old = (
        await ClipView.filter(last_seen_at__lt=now - VIEW_RETENTION)
        .limit(batch)
        .values_list("id", flat=True)
    )
    ids: list[Any] = list(old)
    async with in_transaction() as conn:
        views = await ClipView.filter(pk__in=ids).using_db(conn).delete() if ids else 0
        forgotten = (
            await Interest.filter(weight__gt=-FORGET_BELOW, weight__lt=FORGET_BELOW)
            .using_db(conn)
            .delete()
        )
        for bound, age in _forget_buckets():
            forgotten += await (
                Interest.filter(
                    Q(weight__gte=-bound) & Q(weight__lte=bound),
                    updated_at__lt=now - age,
                )
                .using_db(conn)
                .delete()
            )
        await fence(conn)
    counts = {k: v for k, v in (("views_aged", views), ("interests_forgotten", forgotten)) if v}
    return counts, len(ids) == batch


# --------------------------------------------------------------------------- recency


async def fit_views(limit: int = FIT_SAMPLE) -> list[tuple[float, int, int]]:
    """The latest *limit* view rows the players reported (not those only served to a
    client that reports nothing: their outcome is unknown), grouped by the clip's age when
    first seen (:data:`FIT_BIN_DAYS` wide, up to :data:`FIT_MAX_AGE_DAYS`): ``(age in
    days, views, engaged)``, engaged meaning finished or replayed."""
    rows = (
        await ClipView.filter(served=False, impressions__gt=0)
        .order_by("-id")
        .limit(limit)
        .values("first_seen_at", "completions", "replays", "clip__created_at")
    )
    groups: dict[int, list[int]] = {}
    for row in rows:
        made = row["clip__created_at"]
        if made is None:
            continue
        age = max(0.0, (row["first_seen_at"] - made).total_seconds() / 86400)
        if age > FIT_MAX_AGE_DAYS:
            continue
        group = groups.setdefault(int(age / FIT_BIN_DAYS), [0, 0])
        group[0] += 1
        group[1] += 1 if row["completions"] or row["replays"] else 0
    return [((b + 0.5) * FIT_BIN_DAYS, n, k) for b, (n, k) in sorted(groups.items())]


async def refit_half_life(progress: dict[str, Any], now: datetime) -> float | None:
    """The aging chore's step: when the last fit is older than :data:`FIT_EVERY`, fit the
    instance's recency half-life from :func:`fit_views` (in a thread: it is a second of
    arithmetic) and keep it in *progress* (``half_life``: ``days``, None when there were too
    few views, and ``at``). Returns the half-life kept."""
    kept = progress.get("half_life")
    if isinstance(kept, dict):
        try:
            fresh = now - datetime.fromisoformat(str(kept.get("at"))) < FIT_EVERY
        except ValueError:
            fresh = False
        if fresh:
            days = kept.get("days")
            return float(days) if isinstance(days, (int, float)) else None
    from fedisora.for_you.rank import fit_half_life

    groups = await fit_views()
    days = await asyncio.to_thread(fit_half_life, groups)
    progress["half_life"] = {
        "days": days,
        "views": sum(n for _, n, _ in groups),
        "at": now.isoformat(),
    }
    return days


async def instance_half_life() -> float | None:
    """The recency half-life in days the aging chore last fitted (None: none yet)."""
    from fedisora.models import Chore

    rows = await Chore.filter(name=AGING_CHORE).values("progress")
    if not rows:
        return None
    kept = (rows[0]["progress"] or {}).get("half_life")
    days = kept.get("days") if isinstance(kept, dict) else None
    return float(days) if isinstance(days, (int, float)) and days > 0 else None
