"""Read positions (Mastodon's markers): where a user stopped reading their home timeline and
their notifications, shared by every app they use and by the web pages.

A save names the newest item read; it never moves a marker back (a second device that read
less does not undo the first's reading, as Mastodon's apps expect of a shared position).
``version`` grows by one with each save that changes the marker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from fedisora.errors import Invalid
from fedisora.models import Account, Marker, Notification, utcnow

__all__ = ["TIMELINES", "SavedMarker", "get_markers", "save_markers", "unread_after"]

TIMELINES = ("home", "notifications")
UNREAD_CAP = 100
"""Unread notifications are counted up to this many ("99+" beyond, as apps show it)."""


@dataclass(frozen=True)
class SavedMarker:
    timeline: str
    last_read_id: int
    version: int
    updated_at: datetime


def _timelines(names: Iterable[str]) -> list[str]:
    wanted = []
    for name in names:
        if name not in TIMELINES:
            raise Invalid(f"timeline must be one of {', '.join(TIMELINES)}, not {name!r}")
        if name not in wanted:
            wanted.append(name)
    return wanted


async def get_markers(account: Account, timelines: Iterable[str]) -> dict[str, SavedMarker]:
    """The markers of *timelines* the user has set (one never set is absent)."""
    wanted = _timelines(timelines)
    if not wanted:
        return {}
    rows = await Marker.filter(account_id=account.pk, timeline__in=wanted)
    return {
        r.timeline: SavedMarker(r.timeline, r.last_read_id, r.version, r.updated_at) for r in rows
    }


async def save_markers(account: Account, positions: Mapping[str, int]) -> dict[str, SavedMarker]:
    """Move the markers of *positions* (timeline → id of the newest item read) forward."""
    for name in _timelines(positions):
        last = positions[name]
        if last < 0:
            raise Invalid("last_read_id must be the id of a status or a notification")
        now = utcnow()
        # One statement: two saves at once both move it forward, never back, and each
        # counts in the version.
        moved = await Marker.filter(
            account_id=account.pk, timeline=name, last_read_id__lt=last
        ).update(last_read_id=last, updated_at=now, version=F("version") + 1)
        if not moved and not await Marker.filter(account_id=account.pk, timeline=name).exists():
            try:
                await Marker.create(
                    account_id=account.pk, timeline=name, last_read_id=last, version=1
                )
            except IntegrityError:  # a concurrent first save: move it forward instead
                await save_markers(account, {name: last})
    return await get_markers(account, positions)


async def unread_after(account: Account) -> tuple[int, int | None]:
    """How many notifications arrived after the notifications marker (at most
    :data:`UNREAD_CAP`), and the marker's position (None: never set, all are unread)."""
    marker = await Marker.get_or_none(account_id=account.pk, timeline="notifications")
    query = Notification.filter(recipient_id=account.pk, dismissed=False)
    if marker is not None:
        query = query.filter(id__gt=marker.last_read_id)
    count = len(await query.limit(UNREAD_CAP).values_list("id", flat=True))
    return count, (marker.last_read_id if marker is not None else None)
