"""Media no clip holds: attaching it to a clip, and collecting it when nothing does.

An upload or a render's output is a :class:`~fedisora.models.MediaFile` before it is posted.
One that no clip holds (never posted, or its clip was deleted) is removed, with its files,
once it is older than ``FEDISORA_MEDIA_UNATTACHED_HOURS`` (24), unless it is still needed:

- a clip holds it (``attached_at`` is set, or a clip row points at it);
- it is the output of a render that is not over: a ``ready`` render is the owner's draft,
  kept however old until it is published or discarded.

(An image uploaded as the still of an image-to-video render is copied when the render is
queued, so a queued render does not need the upload; scheduled posts do not exist here.)

**The fence.** Posting may take media at the very moment it is collected. Both sides write
the media row under a condition on the other's mark, so the database orders them, on
PostgreSQL (row locks; the later UPDATE re-reads the row it waited for) and SQLite (one
writer) alike:

- the transaction that stores a clip sets ``attached_at`` only where ``doomed_at`` is null
  (:func:`attach_media`), or refuses the post;
- collection sets ``doomed_at`` only where ``attached_at`` is null, and deletes files and
  row only once that UPDATE marked it. From then on no clip can take it.

A clip's deletion clears ``attached_at`` (:func:`detach_media`) in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from fedisora.errors import Invalid
from fedisora.media_store import MediaStore
from fedisora.models import Clip, MediaFile, RenderJob, utcnow
from fedisora.services.retention import BATCH, Fence

__all__ = ["CURSOR", "attach_media", "collect_unattached", "detach_media", "needed"]

CURSOR = "media_gc:after"
"""The progress key of the collection's cursor (a media id; a pass starts again at 0)."""

# Render states in which a job is not over: its output (if any) is still its owner's.
_LIVE_RENDER = ("queued", "rendering", "encoding", "signing", "ready")


async def attach_media(media_id: int, conn: BaseDBAsyncClient) -> None:
    """Mark *media_id* as held by a clip, in the transaction that stores the clip; refuse
    (:class:`~fedisora.errors.Invalid`, which rolls it back) media being collected."""
    taken = await (
        MediaFile.filter(pk=media_id, doomed_at=None).using_db(conn).update(attached_at=utcnow())
    )
    if not taken:
        raise Invalid(
            "that media was removed: it was not posted within a day of its upload or render"
        )


async def detach_media(media_id: int | None, conn: BaseDBAsyncClient) -> None:
    """*media_id* is no longer held by its clip (deleted in *conn*'s transaction)."""
    if media_id is not None:
        await MediaFile.filter(pk=media_id).using_db(conn).update(attached_at=None)


async def needed(media_ids: Iterable[int]) -> set[int]:
    """Those of *media_ids* a clip or a render that is not over still points at."""
    ids = list(media_ids)
    if not ids:
        return set()
    held: list[Any] = await Clip.filter(media_id__in=ids).values_list("media_id", flat=True)
    drafts: list[Any] = await RenderJob.filter(
        output_id__in=ids, state__in=_LIVE_RENDER
    ).values_list("output_id", flat=True)
    return {int(i) for i in (*held, *drafts) if i is not None}


async def collect_unattached(
    *,
    now: datetime,
    older_than: timedelta,
    store: MediaStore,
    progress: dict[str, Any],
    fence: Fence,
) -> tuple[int, bool]:
    """One step of the collection: up to :data:`~fedisora.services.retention.BATCH` media rows
    no clip holds, from the cursor in *progress* on. Returns how many rows were removed and
    whether the pass goes on (the next step is due at once)."""
    after = int(progress.get(CURSOR) or 0)
    rows = await (
        MediaFile.filter(attached_at=None, id__gt=after)
        .order_by("id")
        .limit(BATCH)
        .values("id", "created_at", "doomed_at")
    )
    cutoff = now - older_than
    old = [r["id"] for r in rows if r["doomed_at"] is not None or r["created_at"] <= cutoff]
    busy = await needed(old)
    free = [pk for pk in old if pk not in busy]
    if free:
        # The mark: only rows no clip took meanwhile (attached_at is re-read under the row's
        # lock on PostgreSQL, after the attaching transaction committed or rolled back).
        await MediaFile.filter(pk__in=free, attached_at=None, doomed_at=None).update(doomed_at=now)
    doomed = await MediaFile.filter(
        pk__in=free, attached_at=None, doomed_at__not_isnull=True
    ).values("id", "file", "poster_file")
    paths = [p for r in doomed for p in (r["file"], r["poster_file"]) if p]
    if paths:  # files first: a crash before the row goes removes them again, harmlessly
        await store.delete(paths)
    full = len(rows) == BATCH
    progress[CURSOR] = rows[-1]["id"] if full else 0
    async with in_transaction() as conn:
        removed = 0
        if doomed:
            removed = await (
                MediaFile.filter(
                    pk__in=[r["id"] for r in doomed], attached_at=None, doomed_at__not_isnull=True
                )
                .using_db(conn)
                .delete()
            )
        await fence(conn)
    return removed, full
