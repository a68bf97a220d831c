"""Serving a page of an account's For You list.

A page is an index range scan of ``ForYouCandidate`` on ``(account_id, generation,
position)`` (the table's unique index): positions after the cursor's, in order. Its cost
depends on the page size, not on how many clips the instance has.

The cursor is opaque to clients: the generation and the position of the last clip served,
with an HMAC under a key derived from the instance's secret key, bound to the viewer. A
cursor made for another account, altered, or not a cursor at all is :class:`BadCursor` (400).
A refresh keeps the generation before the new one (:mod:`.candidates`), so a cursor into it
goes on where it was; once it is used up, the page continues with the new generation,
leaving out the clips of the old one served already. A cursor older than that starts the
new generation from its beginning.

The clips of a page are checked again (a clip deleted, an author blocked, muted, silenced or
suspended since the list was made, a clip seen or hidden since): those are skipped, and more
positions read in their place, a bounded number of times (:data:`ROUNDS`). The clips served
count as shown to the viewer (:func:`fedisora.for_you.signals.note_served`): they are seen
from then on, so the next first page starts with clips not served yet, for Mastodon
clients (which report no impressions) as for the web player. When fewer than
two pages are left of the current generation, a refresh is requested
(:func:`~fedisora.for_you.candidates.request_refresh`), unless the list held every clip there
was (it is shorter than :data:`~.candidates.LIST_SIZE`) and was made less than
:data:`AGAIN_AFTER` ago; a list older than :data:`STALE` is refreshed at a first page too. A
first visit without any list computes one inline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from fedisora.api.lookup import column
from fedisora.api.visibility import hidden_account_ids
from fedisora.errors import FedisoraError
from fedisora.for_you import candidates, signals
from fedisora.models import (
    Account,
    Clip,
    ForYouCandidate,
    ForYouRefresh,
    ForYouSettings,
    utcnow,
)
from fedisora.services.visibility import limited_account_ids, visible_to

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "BadCursor",
    "FeedItem",
    "FeedPage",
    "cursor_for",
    "open_cursor",
    "page",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 40
ROUNDS = 4
"""Reads of the list one page makes at most: one of *limit* positions, then, when the checks
left clips out, reads of 2, 4 and 8 times *limit* (a first page after a few others skips
what they served: 15 times *limit* covers a list of :data:`~.candidates.LIST_SIZE`)."""
STALE = timedelta(hours=6)
"""A list older than this is refreshed when its first page is served."""
AGAIN_AFTER = timedelta(minutes=1)
"""A list that held every clip there was is not made again this soon when it runs low: on a
small instance every page would ask for a refresh (all of its clips fit in one list), each
as much work as a page and more, to find at most the clips posted since."""
MAX_CURSOR = 200


class BadCursor(FedisoraError):
    """A cursor that is not this viewer's (another account's, altered, or garbage)."""

    status = 400


@dataclass(frozen=True)
class FeedItem:
    clip: Clip
    reason: str
    source: str


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    next_cursor: str | None
    """Where the next page starts (None: the list is used up; its refresh was asked for,
    and a first page shows it once made)."""
    hidden: frozenset[int] = frozenset()
    """The accounts this page's check of who may see each clip left out
    (:func:`~fedisora.services.visibility.visible_to` with this *hidden*): the viewer's
    blocks both ways, mutes, domain blocks and the silenced accounts it does not follow. A
    caller showing the items in the same request need not ask again
    (``web.clips.clip_cards``' *checked_with*)."""
    authors: dict[int, Account] = field(default_factory=dict)
    """The items' authors, read by that check (by id): not read again to show them."""


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"fedisora for you cursor\0" + secret.encode()).digest()


def _mac(secret: str, viewer_id: int, generation: int, position: int) -> str:
    message = f"{viewer_id}\0{generation}\0{position}".encode()
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def cursor_for(viewer_id: int, generation: int, position: int, *, secret: str) -> str:
    """The opaque cursor of *viewer_id*'s list after *position* of *generation*."""
    body = base64.urlsafe_b64encode(f"{generation}.{position}".encode()).decode().rstrip("=")
    return f"{body}.{_mac(secret, viewer_id, generation, position)}"


def open_cursor(cursor: str, viewer_id: int, *, secret: str) -> tuple[int, int]:
    """(generation, position) of *cursor*; :class:`BadCursor` unless *viewer_id*'s."""
    refused = BadCursor(
        "This cursor is not valid for your account (it belongs to another account, or was "
        "altered): load the first page without one."
    )
    if len(cursor) > MAX_CURSOR or cursor.count(".") != 1:
        raise refused
    body, mac = cursor.split(".")
    try:
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
        generation_text, position_text = text.split(".")
        generation, position = int(generation_text), int(position_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refused from None
    if generation < 0 or position < -1 or generation > 2**31 or position > 2**31:
        raise refused
    if not hmac.compare_digest(mac, _mac(secret, viewer_id, generation, position)):
        raise refused
    return generation, position


async def _shown(viewer: Account, ids: list[int], rules: _Rules) -> dict[int, Clip]:
    """The clips of *ids* that may still be served to *viewer*, by id: the candidates' own
    rule, now (blocks, deletions, views and provenance since the list was made). No clip is
    checked twice in a page (:attr:`_Rules.checked`), and who may see a clip is asked only
    of the clips this pass would show (a pass skipping seen clips does not ask it of them)."""
    new = [i for i in ids if i not in rules.checked]
    if new:
        found = await candidates.check(viewer, new, rules.settings, rules.hidden, visible=False)
        rules.checked.update(dict.fromkeys(new))
        rules.checked.update((c.pk, _Checked(c, c.pk in found.seen)) for c in found.clips)
    wanted = [
        c for i in ids if (c := rules.checked[i]) is not None and (rules.allow_seen or not c.seen)
    ]
    unasked = [c.clip for c in wanted if c.visible is None]
    if unasked:
        seen_by = {
            s.pk
            for s in await visible_to(viewer, unasked, hidden=rules.hidden, authors=rules.authors)
        }
        for c in wanted:
            if c.visible is None:
                c.visible = c.clip.pk in seen_by
    return {c.clip.pk: c.clip for c in wanted if c.visible}


@dataclass
class _Checked:
    clip: Clip
    seen: bool
    visible: bool | None = None
    """Whether the viewer may see it (None: not asked yet)."""


@dataclass(frozen=True)
class _Rules:
    """What a page's checks need of the viewer, read once a page, and what they found."""

    settings: ForYouSettings
    hidden: set[int]
    allow_seen: bool = False
    """A first page with nothing unseen left shows seen clips again (not an empty feed)."""
    checked: dict[int, _Checked | None] = field(default_factory=dict)
    """Each clip id checked in this page (None: it may not be shown). A first page that
    found only seen clips shows them again without asking about any twice."""
    rows: dict[tuple[int, int, int], list[ForYouCandidate]] = field(default_factory=dict)
    """The list's rows read in this page, by (generation, after position, how many)."""
    ends: dict[int, int] = field(default_factory=dict)
    """Where a list ends, by generation, once a read in this page found no row after it."""
    authors: dict[int, Account] = field(default_factory=dict)
    """The account rows the visibility checks read (the page's authors among them)."""


async def _read(
    viewer: Account,
    generation: int,
    after: int,
    limit: int,
    items: list[FeedItem],
    skip: set[int],
    rules: _Rules,
) -> tuple[int, bool]:
    """Add to *items* up to *limit* clips of *generation* after position *after* (clips in
    *skip* left out); return the position of the last row read and whether rows were left."""
    position = after
    for round_ in range(ROUNDS):
        wanted = limit - len(items)
        if wanted <= 0:
            return position, True
        # Most pages lose none: read no clip more than needed. A first page after others
        # were served skips what they served: each further read is twice the one before.
        batch = wanted if round_ == 0 else max(wanted, limit << round_)
        rows = rules.rows.get((generation, position, batch))
        if rows is None:
            rows = list(
                await ForYouCandidate.filter(
                    account_id=viewer.pk, generation=generation, position__gt=position
                )
                .order_by("position")
                .limit(batch)
            )
            rules.rows[(generation, position, batch)] = rows
            if len(rows) < batch:
                rules.ends[generation] = rows[-1].position if rows else position
        shown = await _shown(viewer, [r.clip_id for r in rows if r.clip_id not in skip], rules)
        for row in rows:
            if len(items) >= limit:
                return position, True
            position = row.position
            clip = shown.get(row.clip_id) if row.clip_id not in skip else None
            if clip is not None:
                items.append(FeedItem(clip, row.reason, row.source))
        if len(rows) < batch:
            return position, False
    return position, True


async def _runs_low(
    viewer: Account,
    state: ForYouRefresh,
    position: int,
    limit: int,
    *,
    end: int | None,
    now: datetime,
) -> bool:
    """Whether *viewer*'s current list, served up to *position*, should be made again: fewer
    than two pages are left of it, and it is not a list that held every clip there was, made
    less than :data:`AGAIN_AFTER` ago. *end*: where the list ends, when the page's reads
    found it (what they found is not asked again)."""
    ahead = position + 2 * limit
    if end is None or ahead <= end:
        query = ForYouCandidate.filter(
            account_id=viewer.pk, generation=state.generation, position=ahead
        )
        if await query.exists():
            return False
    if state.refreshed_at is None or state.refreshed_at < now - AGAIN_AFTER:
        return True
    # Made lately: low only if it was a full list (shorter ones held every clip there was).
    if end is not None and end < candidates.LIST_SIZE - 1:
        return False
    last = ForYouCandidate.filter(
        account_id=viewer.pk, generation=state.generation, position=candidates.LIST_SIZE - 1
    )
    return await last.exists()


async def page(
    viewer: Account,
    cursor: str | None,
    limit: int = DEFAULT_LIMIT,
    *,
    secret: str,
    now: datetime | None = None,
) -> FeedPage:
    """A page of *viewer*'s For You list after *cursor* (None: the first page), at most
    *limit* clips (clamped to 1..:data:`MAX_LIMIT`), each with its reason in plain words.
    *secret* is the instance's secret key (the cursor's HMAC key is derived from it)."""
    now = now or utcnow()
    limit = max(1, min(limit, MAX_LIMIT))
    place = open_cursor(cursor, viewer.pk, secret=secret) if cursor else None
    state = await ForYouRefresh.get_or_none(account_id=viewer.pk)
    current = state.generation if state is not None else 0
    if current == 0:
        current = await candidates.refresh_now(viewer, now)
        state = await ForYouRefresh.get_or_none(account_id=viewer.pk)
    elif place is None and state is not None:
        stale = state.refreshed_at is None or state.refreshed_at < now - STALE
        if stale and state.state != "pending":
            await candidates.request_refresh(viewer, now)
    if current == 0:
        return FeedPage([], None)

    items: list[FeedItem] = []
    rules = _Rules(
        await signals.settings_of(viewer),
        await hidden_account_ids(viewer) | await limited_account_ids(viewer),
    )
    generation, position = place if place is not None else (current, -1)
    left = False
    if generation != current:
        # A cursor into the generation before: go on there, then into the current one.
        position, left = await _read(viewer, generation, position, limit, items, set(), rules)
        if not left and len(items) < limit:
            served = set(
                await column(
                    ForYouCandidate.filter(
                        account_id=viewer.pk, generation=generation, position__lte=position
                    ),
                    "clip_id",
                )
            )
            generation, position = current, -1
            position, left = await _read(viewer, current, position, limit, items, served, rules)
    else:
        position, left = await _read(viewer, generation, position, limit, items, set(), rules)

    if place is None and not items and current:
        # Everything on the list was seen (a small instance, a long session): the feed shows
        # it again, best first, rather than nothing, until the refresh finds new clips.
        again = replace(rules, allow_seen=True)
        generation = current
        position, left = await _read(viewer, current, -1, limit, items, set(), again)
    # Served is shown: the next page, or the next visit, goes on with other clips (a
    # Mastodon client reports no impressions; the web player's later report is this one).
    await signals.note_served(viewer, [item.clip for item in items], now=now)
    if generation == current and state is not None and state.state != "pending":
        end = rules.ends.get(current)
        if await _runs_low(viewer, state, position, limit, end=end, now=now):
            await candidates.request_refresh(viewer, now)
    hidden, authors = frozenset(rules.hidden), rules.authors
    if position < 0 or (not left and (generation == current or not items)):
        return FeedPage(items, None, hidden, authors)  # used up (a refresh was asked for)
    next_cursor = cursor_for(viewer.pk, generation, position, secret=secret)
    return FeedPage(items, next_cursor, hidden, authors)
