"""The per-viewer streaming rules as they were before fan-out was batched (main at 934c7ed):
each connection ran its own queries. Kept as the oracle the batched :func:`fan_out` is
compared with, viewer by viewer (tests/api/test_api_streaming_channels.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterable
from typing import Any

from fedisora.api.entities import notification_entities, reblog_entity, status_entities
from fedisora.api.lookup import column
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.models import (
    Account,
    Boost,
    Clip,
    ClipTag,
    Comment,
    Follow,
    FollowState,
    Mention,
    Notification,
    TimelineEntry,
    Visibility,
)
from fedisora.services.events import Event
from fedisora.streaming.channels import (
    TAG_NAMES,
    USER_NAMES,
    Message,
    Stream,
    Viewer,
    _public_match,
)

__all__ = ["reference_messages"]


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def _in_home(viewer: Account, clip_id: int, boosted_by: int | None = None) -> bool:
    query = TimelineEntry.filter(owner_id=viewer.pk, clip_id=clip_id)
    if boosted_by is not None:
        query = query.filter(boosted_by_id=boosted_by)
    return bool(await query.exists())


async def _clip_messages(
    event: Event, viewer: Viewer, streams: Collection[Stream], kind: str
) -> list[Message]:
    clip = await Clip.get_or_none(pk=int(event.data.get("clip_id", -1)))
    if clip is None or clip.deleted_at is not None:
        return []
    me = viewer.account
    if clip.account_id in await hidden_account_ids(me):
        return []
    if not await visible_statuses(me, [clip]):
        return []
    targets: list[Stream] = []
    tags: set[str] | None = None
    for stream in streams:
        if stream.name == "user":
            if me is not None and viewer.may("read:statuses") and await _in_home(me, clip.pk):
                targets.append(stream)
        elif stream.name != "user:notification" and clip.visibility == Visibility.PUBLIC:
            if tags is None and stream.name in TAG_NAMES:
                tags = set(await column(ClipTag.filter(clip_id=clip.pk), "tag__name"))
            if _public_match(stream, clip, tags if tags is not None else set()):
                targets.append(stream)
    if not targets:
        return []
    (entity,) = await status_entities(me, [clip])
    payload = _dump(entity)
    return [Message(s.label, kind, payload) for s in targets]


async def _boost_messages(
    event: Event, viewer: Viewer, streams: Collection[Stream]
) -> list[Message]:
    me = viewer.account
    user_streams = [s for s in streams if s.name == "user"]
    if me is None or not user_streams or not viewer.may("read:statuses"):
        return []
    boost = await Boost.get_or_none(pk=int(event.data.get("boost_id", -1)))
    if boost is None or not await _in_home(me, boost.clip_id, boost.account_id):
        return []
    clip = await Clip.get_or_none(pk=boost.clip_id)
    booster = await Account.get_or_none(pk=boost.account_id)
    if clip is None or booster is None:
        return []
    hidden = await hidden_account_ids(me)
    if clip.account_id in hidden or booster.pk in hidden:
        return []
    if not await visible_statuses(me, [clip]):
        return []
    (inner,) = await status_entities(me, [clip])
    payload = _dump(reblog_entity(boost, booster, inner))
    return [Message(s.label, "update", payload) for s in user_streams]


async def _delete_messages(
    event: Event, viewer: Viewer, streams: Collection[Stream]
) -> list[Message]:
    """``delete`` for a status the viewer could see before it went (only its id is sent)."""
    status: Clip | Comment | None
    if event.kind == "clip.deleted":
        status = await Clip.get_or_none(pk=int(event.data.get("clip_id", -1)))
    else:
        status = await Comment.get_or_none(pk=int(event.data.get("comment_id", -1)))
    if status is None:
        return []
    before = _as_before(status)
    if not await visible_statuses(viewer.account, [before]):
        return []
    targets: list[Stream] = []
    for stream in streams:
        if stream.name == "user":
            if viewer.may("read:statuses") and await _had_it(viewer, before):
                targets.append(stream)
        elif (
            isinstance(before, Clip)
            and stream.name != "user:notification"
            and before.visibility == Visibility.PUBLIC
            and _public_match(stream, before, None)
        ):
            targets.append(stream)
    return [Message(s.label, "delete", str(status.pk)) for s in targets]


async def _had_it(viewer: Viewer, status: Clip | Comment) -> bool:
    """Whether the status reached the viewer's home stream or notifications: their own, a
    clip of someone they follow or that mentions them, a comment they were notified of."""
    me = viewer.account
    if me is None:
        return False
    if status.account_id == me.pk:
        return True
    if isinstance(status, Comment):
        return bool(await Notification.filter(recipient_id=me.pk, comment_id=status.pk).exists())
    follows = Follow.filter(
        follower_id=me.pk, target_id=status.account_id, state=FollowState.ACCEPTED
    )
    if await follows.exists():
        return True
    return bool(await Mention.filter(clip_id=status.pk, account_id=me.pk).exists())


def _as_before(status: Clip | Comment) -> Clip | Comment:
    """An in-memory copy of a deleted status as it was (for the visibility check only)."""
    before = copy.copy(status)
    before.deleted_at = None
    return before


async def _notification_messages(
    event: Event, viewer: Viewer, streams: Collection[Stream]
) -> list[Message]:
    me = viewer.account
    if me is None or event.actor_id != me.pk or not viewer.may("read:notifications"):
        return []
    targets = [s for s in streams if s.name in USER_NAMES]
    if not targets:
        return []
    note = await Notification.get_or_none(
        pk=int(event.data.get("notification_id", -1)), recipient_id=me.pk, dismissed=False
    )
    if note is None:
        return []
    rendered = await notification_entities(me, [note])
    if not rendered:
        return []
    payload = _dump(rendered[0])
    return [Message(s.label, "notification", payload) for s in targets]


async def reference_messages(
    event: Event, viewer: Viewer, streams: Iterable[Stream]
) -> list[Message]:
    """The messages *event* makes on *streams* for *viewer* (often none)."""
    chosen = list(dict.fromkeys(streams))
    if not chosen:
        return []
    try:
        if event.kind == "clip.created":
            return await _clip_messages(event, viewer, chosen, "update")
        if event.kind == "clip.updated":
            return await _clip_messages(event, viewer, chosen, "status.update")
        if event.kind == "boost.created":
            return await _boost_messages(event, viewer, chosen)
        if event.kind in ("clip.deleted", "comment.deleted"):
            return await _delete_messages(event, viewer, chosen)
        if event.kind == "notification.created":
            return await _notification_messages(event, viewer, chosen)
    except (TypeError, ValueError):  # malformed event data from another process
        return []
    return []
