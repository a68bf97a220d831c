"""For You's candidates: where each account's list comes from, and its durable refresh.

A refresh gathers candidate clips from several sources, each one bounded query on an index
(its cost does not grow with the number of clips on the instance):

- ``following``: the newest :data:`FOLLOWING_SCAN` clips of the accounts the viewer follows,
  from its home feed's fan-out rows (``TimelineEntry``, index ``(owner_id, clip_id)``);
- ``creator``: the newest :data:`PER_CREATOR` clips of each of the :data:`TOP_CREATORS`
  creators the viewer has most interest in (index ``(account_id, id)``);
- ``tag``: the newest :data:`PER_TAG` clips of each of the :data:`TOP_TAGS` hashtags the
  viewer has most interest in (the clip-tag join's ``(tag_id, clip_id)`` index);
- ``cold_start``: the same for the hashtags picked at sign-up (``ForYouSettings.tags``);
- ``remix``: the newest :data:`PER_REMIXED` public remixes of each of the :data:`REMIX_SOURCES`
  newest clips with remixes (``remixes_count``) that the viewer liked (its :data:`LIKED_SCAN`
  latest likes) or watched to the end (its :data:`COMPLETED_SCAN` latest view rows with a
  completion), one range of the clips' ``(remix_of_id, id)`` index each (remix momentum:
  what people build on what the viewer enjoyed);
- ``trending``: :func:`fedisora.api.timelines.trending_clips`, local and federated;
- ``discovery``: the newest public clips (among the newest :data:`RECENT_SCAN`) of new
  creators, whose first :data:`NEW_CREATOR_CLIPS` clips they are.

:func:`sources` gathers them, all or only clips newer than a given id (what the web feed's
"N new" counts for For You: :func:`new_candidates`).

Every candidate then passes the rules every timeline applies, reused from where they live:
:func:`fedisora.api.visibility.visible_statuses` (deleted, suspended authors, blocks),
:func:`~fedisora.api.visibility.hidden_account_ids` (blocks both ways, mutes, the viewer's
domain blocks), :func:`fedisora.services.visibility.limited_account_ids` (silenced
accounts the viewer does not follow) and :func:`~fedisora.api.visibility.public_timeline`
(domains this instance silences or suspends). Only public clips are listed, never the
viewer's own; a remote clip only once its provenance check says ``verified`` (or, with
``ForYouSettings.include_unverified``, ``unverified`` once its video was fetched; never
``invalid``). Clips the viewer has a ``ClipView`` row for (seen, or "not interested") are
left out. Content warnings and sensitive flags are not filters: the entities and cards carry
them as every timeline's do.

:func:`fedisora.for_you.rank.rank` orders what is left; :func:`write_generation` stores the
best :data:`LIST_SIZE` as a new generation of ``ForYouCandidate`` rows in one transaction and
deletes the generations before the previous one (kept for cursors in flight, see
:mod:`.feed`), then points the account's ``ForYouRefresh`` row at it.

The refresh is durable work (:data:`REFRESH_GRAPH`): one ``ForYouRefresh`` row per account,
``pending`` (due) -> ``idle`` (waiting for the next request). :func:`request_refresh` makes
the row due, creating it if missing; a request that arrives while a refresh runs makes it
run again when done (``requested_at`` is later than its start). A refresh that fails is
retried with backoff, and never gives up (a list that cannot be refreshed keeps serving the
old one).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fedisora.api.lookup import column
from fedisora.api.visibility import hidden_account_ids, public_timeline, visible_statuses
from fedisora.config import Settings
from fedisora.for_you import rank, signals
from fedisora.ids import id_for_time
from fedisora.models import (
    Account,
    Clip,
    ClipTag,
    ClipView,
    Follow,
    FollowState,
    ForYouCandidate,
    ForYouRefresh,
    ForYouSettings,
    Like,
    MediaFile,
    Tag,
    TimelineEntry,
    Visibility,
    utcnow,
)
from fedisora.services.visibility import limited_account_ids
from fedisora.work.engine import Machine, Outcome, WorkContext
from fedisora.work.graph import State, StateGraph, exponential

__all__ = [
    "LIST_SIZE",
    "REFRESH_GRAPH",
    "Checked",
    "check",
    "eligible",
    "eligible_provenance",
    "gather",
    "machines",
    "new_candidates",
    "refresh_now",
    "request_refresh",
    "sources",
    "write_generation",
]

log = logging.getLogger("fedisora.for_you")

LIST_SIZE = 300
"""Clips in one generation of an account's list."""
FOLLOWING_SCAN = 150
TOP_CREATORS = 20
PER_CREATOR = 10
TOP_TAGS = 10
PER_TAG = 30
LIKED_SCAN = 200
COMPLETED_SCAN = 200
REMIX_SOURCES = 20
"""Liked or finished clips (the newest that have remixes) whose remixes are read."""
PER_REMIXED = 10
RECENT_SCAN = 1000
NEW_SCAN = 100
"""Clips newer than a page one source reads at most for the "N new" count."""
NEW_INTEREST_ROWS = 200
"""The viewer's latest interests the "N new" count reads (a refresh reads more)."""
TRENDING_LOCAL = 100
TRENDING_FEDERATED = 60
MAX_INTEREST_ROWS = 2000
NEW_CREATOR_CLIPS = 3
"""A creator whose clips number at most this is new (``discovery``)."""

REFRESH_RETRY = exponential(timedelta(seconds=30), 2.0, timedelta(hours=1), timedelta(days=1))
REFRESH_GRAPH = StateGraph(
    "for_you_refreshes",
    [
        # Never fails for good: the old list is served meanwhile, and the backoff caps at 1 h.
        State("pending", to=("idle",), retry=REFRESH_RETRY),
        State("idle", to=("pending",), automatic=False),  # made due by request_refresh
        State("failed", terminal=True),  # every graph has one; a refresh never gets there
    ],
    initial="pending",
    failed="failed",
)


class _Raced(RuntimeError):
    """Another refresh of the same account wrote a generation meanwhile."""


def eligible_provenance(provenance: dict[str, Any] | None, include_unverified: bool) -> bool:
    """Whether a remote clip whose media has *provenance* may be a candidate."""
    from fedisora.federation.media_proxy import video_checked

    prov = provenance or {}
    state = prov.get("state", "unverified")
    if state == "verified":
        return True
    if state != "unverified" or not include_unverified:
        return False
    return video_checked(MediaFile(provenance=prov))


@dataclass
class _Found:
    """Candidate clip ids, each with the sources that found it."""

    sources: dict[int, set[str]]

    def add(self, ids: Iterable[Any], source: str) -> None:
        for i in ids:
            self.sources.setdefault(int(i), set()).add(source)


def _top(weights: dict[Any, float], n: int) -> list[Any]:
    positive = [(w, k) for k, w in weights.items() if w > 0]
    return [k for _, k in sorted(positive, key=lambda p: (-p[0], str(p[1])))[:n]]


async def _tagged(names: Iterable[str], after: int | None = None) -> list[int]:
    """The newest :data:`PER_TAG` clip ids of each hashtag (one index range each); with
    *after*, the clips newer than that id of all of them (one query)."""
    wanted = sorted({n.lower().lstrip("#") for n in names if n})
    if not wanted:
        return []
    tag_ids = [int(i) for i in await column(Tag.filter(name__in=wanted), "id")]
    if not tag_ids:
        return []
    if after is not None:
        query = ClipTag.filter(tag_id__in=tag_ids, clip_id__gt=after)
        return [int(i) for i in await column(query.order_by("-clip_id").limit(NEW_SCAN), "clip_id")]
    ids: list[int] = []
    for tag_id in tag_ids:
        query = ClipTag.filter(tag_id=tag_id).order_by("-clip_id").limit(PER_TAG)
        ids.extend(int(i) for i in await column(query, "clip_id"))
    return ids


@dataclass
class Sources:
    """What :func:`sources` found: the candidate ids, and what ranking reads of how."""

    found: _Found
    liked: set[int]
    """Clips the viewer liked (its latest :data:`LIKED_SCAN`)."""
    watched: set[int]
    """Clips the viewer watched to the end (its latest :data:`COMPLETED_SCAN`)."""
    liked_by_creator: Counter[int]
    new_authors: set[int]


async def sources(
    viewer: Account,
    settings: ForYouSettings,
    creators: dict[int, float],
    tags: dict[str, float],
    after: int | None = None,
) -> Sources:
    """The candidate sources of the module, merged (not yet checked by :func:`eligible`).
    With *after* (a clip id): only clips newer than it, each source one query, and no
    trending (a clip that just arrived has no engagement to trend with yet)."""
    from fedisora.api.timelines import trending_clips

    found = _Found({})
    newer: dict[str, Any] = {} if after is None else {"id__gt": after}

    # following: the home feed's own clips (not boosts) of followed accounts
    home = TimelineEntry.filter(owner_id=viewer.pk, boosted_by_id=None)
    if after is not None:
        home = home.filter(clip_id__gt=after)
    found.add(await column(home.order_by("-clip_id").limit(FOLLOWING_SCAN), "clip_id"), "following")

    top = _top(creators, TOP_CREATORS)
    if after is not None and top:
        query = Clip.filter(account_id__in=top, **newer).order_by("-id").limit(NEW_SCAN)
        found.add(await column(query, "id"), "creator")
    for creator in top if after is None else ():
        query = Clip.filter(account_id=creator).order_by("-id").limit(PER_CREATOR)
        found.add(await column(query, "id"), "creator")
    found.add(await _tagged(_top(tags, TOP_TAGS), after), "tag")
    found.add(await _tagged(settings.tags or [], after), "cold_start")

    liked_rows = (
        await Like.filter(account_id=viewer.pk, clip_id__not_isnull=True)
        .order_by("-id")
        .limit(LIKED_SCAN)
        .values("clip_id", "clip__account_id")
    )
    liked = {int(r["clip_id"]) for r in liked_rows}
    liked_by_creator = Counter(int(r["clip__account_id"]) for r in liked_rows)
    completed = (
        ClipView.filter(account_id=viewer.pk, completions__gt=0)
        .order_by("-last_seen_at")
        .limit(COMPLETED_SCAN)
    )
    watched = {int(i) for i in await column(completed, "clip_id")}
    if liked or watched:
        # The newest of those clips that have remixes (primary key lookups), then each one's
        # newest remixes: one range of the (remix_of_id, id) index each. (One query for all
        # of them would let PostgreSQL walk the clips newest first instead, filtering.)
        remixed = (
            Clip.filter(pk__in=sorted(liked | watched), remixes_count__gt=0)
            .order_by("-id")
            .limit(REMIX_SOURCES)
        )
        for source in await column(remixed, "id"):
            remixes = (
                Clip.filter(
                    remix_of_id=source, visibility=Visibility.PUBLIC, deleted_at=None, **newer
                )
                .order_by("-id")
                .limit(PER_REMIXED)
            )
            found.add(await column(remixes, "id"), "remix")

    if after is None:
        found.add((c.pk for c in await trending_clips(viewer, 0, TRENDING_LOCAL)), "trending")
        trending_remote = await trending_clips(viewer, 0, TRENDING_FEDERATED, federated=True)
        found.add((c.pk for c in trending_remote), "trending")

    recent = (
        await Clip.filter(visibility=Visibility.PUBLIC, deleted_at=None, **newer)
        .order_by("-id")
        .limit(RECENT_SCAN if after is None else NEW_SCAN)
        .values("id", "account_id")
    )
    recent_authors = {int(r["account_id"]) for r in recent}
    new_authors: set[int] = set()
    if recent_authors:
        new_authors = set(
            await column(
                Account.filter(pk__in=recent_authors, clips_count__lte=NEW_CREATOR_CLIPS), "id"
            )
        )
    found.add((r["id"] for r in recent if r["account_id"] in new_authors), "discovery")
    return Sources(found, liked, watched - liked, liked_by_creator, new_authors)


REFILL_BELOW = 60
"""Under this many unseen candidates, a refresh keeps the seen ones on the list too."""


async def gather(viewer: Account, now: datetime) -> tuple[list[rank.Features], rank.Taste]:
    """The viewer's candidates that pass every rule (see the module), and its taste."""
    settings = await signals.settings_of(viewer)
    creators, tags = await signals.weights_of(viewer, now=now, limit=MAX_INTEREST_ROWS)
    found = await sources(viewer, settings, creators, tags)
    ids = sorted(found.found.sources)
    checked = await check(viewer, ids, settings)
    clips = checked.unseen()
    if len(clips) < REFILL_BELOW:
        # Few clips left unseen (a small instance, a long session): the list keeps the seen
        # ones too, so that a first page shows them again rather than nothing (pages serve
        # the unseen ones first: they skip seen clips while any unseen is left).
        clips += [c for c in checked.clips if c.pk in checked.seen]
    features = await _features(viewer, clips, found)
    taste = rank.Taste(
        creators=creators,
        tags=tags,
        liked_by_creator=dict(found.liked_by_creator),
        personalised=settings.personalised,
        popular=settings.popular,
        discovery=settings.discovery,
        picked_tags=tuple(t.lower().lstrip("#") for t in settings.tags or []),
        viewer=viewer.pk,
        half_life=await signals.instance_half_life(),
    )
    return features, taste


async def new_candidates(viewer: Account, after: int, limit: int) -> list[Clip]:
    """The clips newer than *after* that would enter *viewer*'s list at its next refresh:
    the candidate sources (:func:`sources` with *after*) and :func:`eligible`, newest first,
    at most *limit*. What the web feed's "N new" counts on the For You tab; each source is
    one bounded query on an index. When there are some and the viewer's list was made before
    the newest arrived, the list is made due for a refresh (so that the page the notice
    links to can have them)."""
    settings = await signals.settings_of(viewer)
    creators, tags = await signals.weights_of(viewer, limit=NEW_INTEREST_ROWS)
    found = await sources(viewer, settings, creators, tags, after)
    clips = sorted(
        await eligible(viewer, sorted(found.found.sources), settings), key=lambda c: -c.pk
    )
    if clips:
        # The list should have them when the viewer opens it: due if made before they came.
        row = await ForYouRefresh.get_or_none(account_id=viewer.pk)
        if (
            row is not None
            and row.state == "idle"
            and (
                row.refreshed_at is None  # (ids are arrival times; created_at may be older)
                or id_for_time(int(row.refreshed_at.timestamp() * 1000)) < clips[0].pk
            )
        ):
            await request_refresh(viewer)
    return clips[: max(limit, 0)]


@dataclass(frozen=True)
class Checked:
    """What :func:`check` found of some clip ids."""

    clips: list[Clip]
    """Those that may be For You clips, seen ones included (not those marked "not
    interested"), in the order read."""
    seen: set[int]
    """The ids of *clips* the viewer saw."""

    def unseen(self) -> list[Clip]:
        return [c for c in self.clips if c.pk not in self.seen]


async def check(
    viewer: Account,
    ids: list[int],
    settings: ForYouSettings,
    hidden: set[int] | None = None,
    *,
    visible: bool = True,
) -> Checked:
    """The clips of *ids* that may be For You clips for *viewer*, now (see the module), and
    which of them the viewer saw: the one rule, for a refresh's candidates and again for each
    page served (*hidden*: the viewer's hidden and limited accounts, when the caller has them
    already). Seen or not is an answer, not a question asked again: a page that finds only
    seen clips and then shows them again checks each clip once.

    With *visible* false, the last rule (who sees which status,
    :func:`fedisora.services.visibility.visible_to`) is left to the caller, for the clips it
    shows: a page that skips seen clips does not ask it of them."""
    if not ids:
        return Checked([], set())
    query = Clip.filter(pk__in=ids, visibility=Visibility.PUBLIC, deleted_at=None)
    query = query.exclude(account_id=viewer.pk)
    if hidden is None:
        hidden = await hidden_account_ids(viewer) | await limited_account_ids(viewer)
    if hidden:
        query = query.exclude(account_id__in=sorted(hidden))
    clips = await (await public_timeline(query))
    views = await ClipView.filter(account_id=viewer.pk, clip_id__in=ids).values("clip_id", "hidden")
    not_interested = {int(v["clip_id"]) for v in views if v["hidden"]}
    clips = [c for c in clips if c.pk not in not_interested]
    remote_media = [c.media_id for c in clips if not c.local and c.media_id is not None]
    provenance: dict[int, Any] = {}
    if remote_media:
        rows = await MediaFile.filter(pk__in=remote_media).values("id", "provenance")
        provenance = {int(r["id"]): r["provenance"] for r in rows}
    include = settings.include_unverified
    clips = [
        c
        for c in clips
        if c.local
        or (
            c.media_id is not None
            and c.media_id in provenance
            and eligible_provenance(provenance[c.media_id], include)
        )
    ]
    seen = {int(v["clip_id"]) for v in views}
    if not visible:
        return Checked(clips, seen)
    return Checked(await visible_statuses(viewer, clips), seen)


async def eligible(viewer: Account, ids: list[int], settings: ForYouSettings) -> list[Clip]:
    """The clips of *ids* that may be For You clips for *viewer* and that it has not seen
    (:func:`check`)."""
    return (await check(viewer, ids, settings)).unseen()


async def _features(viewer: Account, clips: list[Clip], src: Sources) -> list[rank.Features]:
    if not clips:
        return []
    ids = [c.pk for c in clips]
    author_ids = {c.account_id for c in clips}
    authors = {
        int(r["id"]): r
        for r in await Account.filter(pk__in=author_ids).values(
            "id", "username", "domain", "clips_count"
        )
    }
    followed = set(
        await column(
            Follow.filter(
                follower_id=viewer.pk, target_id__in=author_ids, state=FollowState.ACCEPTED
            ),
            "target_id",
        )
    )
    tags: dict[int, list[str]] = {}
    for row in await ClipTag.filter(clip_id__in=ids).values("clip_id", "tag__name"):
        tags.setdefault(int(row["clip_id"]), []).append(str(row["tag__name"]).lower())
    out: list[rank.Features] = []
    for clip in clips:
        author = authors.get(clip.account_id)
        if author is None:
            continue
        acct = f"@{author['username']}" + (f"@{author['domain']}" if author["domain"] else "")
        new = clip.account_id in src.new_authors or author["clips_count"] <= NEW_CREATOR_CLIPS
        out.append(
            rank.Features(
                clip_id=clip.pk,
                author_id=clip.account_id,
                author=acct,
                tags=tuple(sorted(tags.get(clip.pk, []))),
                created_at=clip.created_at,
                likes=clip.likes_count,
                boosts=clip.boosts_count,
                comments=clip.comments_count,
                remixes=clip.remixes_count,
                views=clip.views_count,
                completions=clip.completions_count,
                skips=clip.skips_count,
                local=clip.local,
                sources=frozenset(src.found.sources.get(clip.pk, ())),
                remix_of_liked=clip.remix_of_id is not None and clip.remix_of_id in src.liked,
                remix_of_watched=clip.remix_of_id is not None and clip.remix_of_id in src.watched,
                author_followed=clip.account_id in followed,
                author_new=new,
            )
        )
    return out


async def write_generation(
    account_id: int, ranked: list[rank.Ranked], now: datetime, conn: BaseDBAsyncClient
) -> int:
    """Store *ranked* as the account's next generation in *conn*'s transaction, delete the
    generations before the one it replaces, and point the account's refresh row at it;
    return the new generation. Raises :class:`_Raced` when another refresh wrote one
    meanwhile (the transaction must then roll back)."""
    row = await ForYouRefresh.filter(account_id=account_id).using_db(conn).first()
    if row is None:
        raise _Raced(f"no refresh row for account {account_id}")
    generation = row.generation + 1
    await ForYouCandidate.bulk_create(
        [
            ForYouCandidate(
                account_id=account_id,
                clip_id=r.clip_id,
                generation=generation,
                position=position,
                score=r.score,
                source=r.source[:16],
                reason=r.reason[:300],
            )
            for position, r in enumerate(ranked)
        ],
        using_db=conn,
    )
    await (
        ForYouCandidate.filter(account_id=account_id, generation__lt=generation - 1)
        .using_db(conn)
        .delete()
    )
    updated = await (
        ForYouRefresh.filter(pk=row.pk, generation=row.generation)
        .using_db(conn)
        .update(generation=generation, refreshed_at=now)
    )
    if updated != 1:
        raise _Raced(f"account {account_id}: generation {row.generation} was replaced")
    return generation


async def _ranked(viewer: Account, now: datetime) -> list[rank.Ranked]:
    features, taste = await gather(viewer, now)
    return rank.rank(features, taste, now, LIST_SIZE)


async def _ensure_row(account_id: int, state: str, now: datetime) -> ForYouRefresh:
    row = await ForYouRefresh.get_or_none(account_id=account_id)
    if row is not None:
        return row
    try:
        return await ForYouRefresh.create(
            account_id=account_id,
            state=state,
            state_changed_at=now,
            next_attempt_at=now if state in REFRESH_GRAPH.active_states else None,
            created_at=now,
            requested_at=now,
        )
    except IntegrityError:  # made meanwhile by another request
        return await ForYouRefresh.get(account_id=account_id)


async def refresh_now(viewer: Account, now: datetime | None = None) -> int:
    """Compute the viewer's list here and now (a first visit with no list): the same work
    as the durable refresh, outside of it. Returns the generation served afterwards (0: none
    could be written)."""
    now = now or utcnow()
    await _ensure_row(viewer.pk, "idle", now)
    ranked = await _ranked(viewer, now)
    try:
        async with in_transaction() as conn:
            return await write_generation(viewer.pk, ranked, now, conn)
    except (_Raced, IntegrityError):  # a concurrent refresh won: serve its list
        row = await ForYouRefresh.get_or_none(account_id=viewer.pk)
        return row.generation if row is not None else 0


async def request_refresh(account: Account, now: datetime | None = None) -> None:
    """Make *account*'s refresh due (creating its row if missing) and wake a runner. A
    refresh running now runs again once done. For local accounts; a remote one is ignored."""
    from fedisora.federation.rows import wake_row

    if account.domain is not None:
        return
    now = now or utcnow()
    made_due = await ForYouRefresh.filter(account_id=account.pk, state="idle").update(
        state="pending",
        state_changed_at=now,
        next_attempt_at=now,
        attempts=0,
        last_error="",
        requested_at=now,
    )
    if not made_due:
        if await ForYouRefresh.filter(account_id=account.pk, state="pending").update(
            requested_at=now
        ):
            return  # due already, or running: it sees the later request when done
        existed = await ForYouRefresh.filter(account_id=account.pk).exists()
        await _ensure_row(account.pk, "pending", now)
        if existed:  # (a state of another version: leave it)
            return
    row = await ForYouRefresh.get_or_none(account_id=account.pk)
    if row is not None:
        try:
            await wake_row(ForYouRefresh, row)
        except Exception:  # the next sweep finds it
            log.warning("waking the For You refresh failed", exc_info=True)


async def _refresh(row: ForYouRefresh, ctx: WorkContext) -> Outcome:
    started = ctx.now()
    account = await Account.get_or_none(pk=row.account_id)
    if account is None or account.domain is not None or account.suspended:
        await ctx.move("idle")
        return "idle"
    ranked = await _ranked(account, started)
    async with ctx.transition("idle") as conn:
        generation = await write_generation(account.pk, ranked, started, conn)
    log.debug("for you: account %s, generation %s, %s clips", account.pk, generation, len(ranked))
    # Asked again while this ran (new signals): due again at once.
    now = ctx.now()
    again = await ForYouRefresh.filter(pk=row.pk, state="idle", requested_at__gt=started).update(
        state="pending", state_changed_at=now, next_attempt_at=now, attempts=0
    )
    if again:
        fresh = await ForYouRefresh.get_or_none(pk=row.pk)
        if fresh is not None:
            await ctx.engine.wake(ctx.machine, fresh)
    return None


def machines(settings: Settings) -> list[Machine]:
    """The provider listed in ``fedisora.work.machines.PROVIDERS``."""
    return [Machine(ForYouRefresh, REFRESH_GRAPH, {"pending": _refresh}, light=False)]
