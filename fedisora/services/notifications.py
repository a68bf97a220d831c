"""Reading a user's notifications: which they may see, how they group, dismissing them.

The API (``/api/v1/notifications``, the grouped ``/api/v2/notifications``) and the web page
(``/notifications``) both read through here, so the rules are written once:

- **Visibility**: a notification about a clip or comment the recipient can no longer see
  (deleted, made private, its author blocked) is not shown (:func:`visible_targets`).
- **Grouping**, as Mastodon groups (``favourite``, ``reblog`` and ``follow``): likes of the
  same clip (or comment), boosts of the same clip, and follows, that arrived within the same
  :data:`GROUP_SPAN` window form one group, "alice and 3 others liked your clip". The key is
  computed from the notification itself (its type, target and time window), so a group can
  be found again from its key (:func:`find_group`) without storing it. Every other type is
  its own group, ``ungrouped-<id>``, as Mastodon names those.
- **Pages of groups**: a group appears once, on the page where its newest notification falls
  (:func:`grouped_page`); its count and sample accounts cover all its notifications.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.queryset import QuerySet

from fedisora.api.visibility import visible_statuses
from fedisora.models import Account, Clip, Comment, Notification, NotificationType

__all__ = [
    "GROUPED_TYPES",
    "GROUP_SPAN",
    "SAMPLE_ACCOUNTS",
    "UNGROUPED",
    "GroupPage",
    "NotificationGroup",
    "clear_all",
    "dismiss_group",
    "dismiss_one",
    "find_group",
    "group_key",
    "grouped_page",
    "notifications_query",
    "unread_count",
    "visible_targets",
]

GROUPED_TYPES: frozenset[str] = frozenset(
    {NotificationType.FAVOURITE.value, NotificationType.REBLOG.value, NotificationType.FOLLOW.value}
)
"""The types that group (Mastodon's ``favourite``, ``reblog`` and ``follow``)."""
GROUP_SPAN = timedelta(hours=12)
"""The window a group's notifications arrived in (fixed windows, from the epoch)."""
UNGROUPED = "ungrouped-"
SAMPLE_ACCOUNTS = 8
"""Accounts a group names at most (Mastodon's ``sample_account_ids``)."""
UNREAD_CAP = 1000
"""The most :func:`unread_count` counts (it reads at most that many index entries)."""
_SCAN_ROUNDS = 5
_KEY_RE = re.compile(r"(favourite|reblog|follow)-(?:(s|c)(\d{1,19})-)?(\d{1,12})")


def _bucket(at: datetime) -> int:
    return int(at.timestamp()) // int(GROUP_SPAN.total_seconds())


def group_key(note: Notification, grouped_types: Collection[str] = GROUPED_TYPES) -> str:
    """The key of the group *note* belongs to (``ungrouped-<id>`` for a type that does not
    group, or one left out of *grouped_types*)."""
    kind = str(getattr(note.type, "value", note.type))
    if kind not in GROUPED_TYPES or kind not in grouped_types:
        return f"{UNGROUPED}{note.pk}"
    bucket = _bucket(note.created_at)
    if kind == NotificationType.FOLLOW.value:
        return f"follow-{bucket}"
    if note.comment_id is not None:
        return f"{kind}-c{note.comment_id}-{bucket}"
    if note.clip_id is not None:
        return f"{kind}-s{note.clip_id}-{bucket}"
    return f"{UNGROUPED}{note.pk}"


def notifications_query(
    recipient: Account,
    *,
    types: Collection[str] = (),
    exclude_types: Collection[str] = (),
    from_account_id: int | None = None,
) -> QuerySet[Notification]:
    """*recipient*'s undismissed notifications; *types* and *exclude_types* are stored type
    names (unknown ones ignored), as Mastodon's ``types[]`` and ``exclude_types[]``."""
    known = {t.value for t in NotificationType}
    query = Notification.filter(recipient_id=recipient.pk, dismissed=False)
    if types:
        query = query.filter(type__in=sorted(set(types) & known))
    excluded = sorted(set(exclude_types) & known)
    if excluded:
        query = query.exclude(type__in=excluded)
    if from_account_id is not None:
        query = query.filter(from_account_id=from_account_id)
    return query


def _group_query(recipient: Account, key: str) -> QuerySet[Notification] | None:
    """The undismissed notifications of *recipient* whose group is *key* (None: not a key)."""
    base = Notification.filter(recipient_id=recipient.pk, dismissed=False)
    if key.startswith(UNGROUPED):
        raw = key[len(UNGROUPED) :]
        if not raw.isdigit() or len(raw) > 19:
            return None
        return base.filter(pk=int(raw))
    found = _KEY_RE.fullmatch(key)
    if found is None:
        return None
    kind, target_kind, target, bucket = found.groups()
    span = int(GROUP_SPAN.total_seconds())
    start = datetime.fromtimestamp(int(bucket) * span, UTC)
    query = base.filter(type=kind, created_at__gte=start, created_at__lt=start + GROUP_SPAN)
    if kind == NotificationType.FOLLOW.value:
        return None if target_kind else query
    if not target_kind:
        return None
    if target_kind == "c":
        return query.filter(comment_id=int(target))
    return query.filter(clip_id=int(target), comment_id=None)


async def visible_targets(
    viewer: Account, notes: Sequence[Notification]
) -> dict[int, Clip | Comment | None]:
    """The notifications of *notes* that *viewer* may see, by id, with the clip or comment
    each is about (None: about no status, e.g. a follow). One about a status the viewer can
    no longer see is left out."""
    clip_ids = {n.clip_id for n in notes if n.clip_id is not None and n.comment_id is None}
    comment_ids = {n.comment_id for n in notes if n.comment_id is not None}
    statuses: list[Clip | Comment] = [*await Clip.filter(pk__in=clip_ids)]
    statuses += list(await Comment.filter(pk__in=comment_ids))
    visible = {f"{type(s).__name__}:{s.pk}": s for s in await visible_statuses(viewer, statuses)}
    out: dict[int, Clip | Comment | None] = {}
    for note in notes:
        if note.comment_id is not None:
            target = visible.get(f"Comment:{note.comment_id}")
            if target is None:
                continue
            out[note.pk] = target
        elif note.clip_id is not None:
            clip = visible.get(f"Clip:{note.clip_id}")
            if clip is None:
                continue
            out[note.pk] = clip
        else:
            out[note.pk] = None
    return out


@dataclass
class NotificationGroup:
    """One group: its newest notification, how many it holds, who sent them."""

    key: str
    latest: Notification
    target: Clip | Comment | None
    count: int = 1
    sample_account_ids: list[int] = field(default_factory=list)
    oldest_in_page: Notification | None = None

    @property
    def type(self) -> str:
        return str(getattr(self.latest.type, "value", self.latest.type))


@dataclass
class GroupPage:
    groups: list[NotificationGroup]
    next_max_id: int | None
    """Where the next (older) page starts: ``max_id`` of its request (None: no more)."""
    newest_id: int | None
    """The newest notification id on this page (for ``min_id`` of a newer page)."""


async def _fill(recipient: Account, group: NotificationGroup) -> None:
    """The group's count and sample accounts, over all its notifications."""
    if group.key.startswith(UNGROUPED):
        group.sample_account_ids = (
            [group.latest.from_account_id] if group.latest.from_account_id is not None else []
        )
        return
    query = _group_query(recipient, group.key)
    if query is None:  # pragma: no cover - keys made by group_key always parse
        return
    group.count = await query.count()
    senders: list[Any] = list(
        await query.order_by("-id")
        .limit(SAMPLE_ACCOUNTS * 4)
        .values_list("from_account_id", flat=True)
    )
    sample: list[int] = []
    for sender in senders:
        if sender is not None and sender not in sample:
            sample.append(int(sender))
    group.sample_account_ids = sample[:SAMPLE_ACCOUNTS]


async def grouped_page(
    recipient: Account,
    query: QuerySet[Notification],
    *,
    limit: int,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    grouped_types: Collection[str] = GROUPED_TYPES,
) -> GroupPage:
    """A page of at most *limit* groups of *query*'s notifications that *recipient* may see,
    newest first, each where its newest notification falls: paging on with
    :attr:`GroupPage.next_max_id` never shows a group twice."""
    scan = max(limit * 4, 40)
    groups: dict[str, NotificationGroup] = {}
    shown_before: set[str] = set()
    before = max_id
    rounds = 0
    while rounds < _SCAN_ROUNDS and len(groups) < limit:
        rounds += 1
        q = query
        if before is not None:
            q = q.filter(id__lt=before)
        if since_id is not None:
            q = q.filter(id__gt=since_id)
        if min_id is not None:
            rows = list(reversed(await q.filter(id__gt=min_id).order_by("id").limit(scan)))
        else:
            rows = list(await q.order_by("-id").limit(scan))
        if not rows:
            break
        seen = await visible_targets(recipient, rows)
        for note in rows:
            if note.pk not in seen:
                continue
            key = group_key(note, grouped_types)
            if key in groups:
                groups[key].oldest_in_page = note
                continue
            if key in shown_before or len(groups) >= limit:
                continue
            if max_id is not None and not key.startswith(UNGROUPED):
                # a group whose newest notification is at max_id or above was on a newer page
                members = _group_query(recipient, key)
                if members is not None and await members.filter(id__gte=max_id).exists():
                    shown_before.add(key)
                    continue
            groups[key] = NotificationGroup(
                key=key, latest=note, target=seen[note.pk], oldest_in_page=note
            )
        if len(rows) < scan or min_id is not None:
            break
        before = rows[-1].pk
    page = list(groups.values())
    for group in page:
        await _fill(recipient, group)
    more = len(page) == limit
    return GroupPage(
        groups=page,
        next_max_id=min(g.latest.pk for g in page) if page and more else None,
        newest_id=max(g.latest.pk for g in page) if page else None,
    )


async def find_group(recipient: Account, key: str) -> NotificationGroup | None:
    """The group *key* names among *recipient*'s undismissed notifications, if they may see
    it (``ungrouped-<id>`` names any one notification)."""
    query = _group_query(recipient, key)
    if query is None:
        return None
    latest = await query.order_by("-id").first()
    if latest is None:
        return None
    seen = await visible_targets(recipient, [latest])
    if latest.pk not in seen:
        return None
    group = NotificationGroup(key=key, latest=latest, target=seen[latest.pk])
    await _fill(recipient, group)
    return group


async def dismiss_group(recipient: Account, key: str) -> bool:
    """Dismiss every notification of the group *key* (False: there is no such group)."""
    query = _group_query(recipient, key)
    if query is None:
        return False
    return await query.update(dismissed=True) > 0


async def dismiss_one(recipient: Account, note_id: int) -> bool:
    """Dismiss one of *recipient*'s notifications (False: none with that id)."""
    return (
        await Notification.filter(pk=note_id, recipient_id=recipient.pk, dismissed=False).update(
            dismissed=True
        )
        > 0
    )


async def clear_all(recipient: Account) -> None:
    """Dismiss all of *recipient*'s notifications."""
    await Notification.filter(recipient_id=recipient.pk, dismissed=False).update(dismissed=True)


async def unread_count(recipient: Account) -> int:
    """*recipient*'s undismissed notifications, counted up to :data:`UNREAD_CAP`."""
    query = Notification.filter(recipient_id=recipient.pk, dismissed=False)
    ids: list[Any] = list(
        await query.order_by("-id").limit(UNREAD_CAP).values_list("id", flat=True)
    )
    return len(ids)
