"""Versions of what a Status entity shows from rows other than its own.

A clip's entity shows its own row (counts, text, flags: compared as read by the rendering
cache, :mod:`fedisora.api.entity_cache`) and other rows: its hashtags, its mentions (with the
mentioned accounts' names and addresses) and its media row. Whoever changes one of those
raises the clip's (or comment's) ``version`` here, in the same transaction as the change and
atomically (``version + 1`` in SQL: two writers never leave the same version behind), so that
a cached entity can never be served for a row that moved on: every web process compares the
version on the rows its page reads.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Subquery

from fedisora.models import Clip, Comment, Mention

__all__ = ["bump_clips", "bump_comments", "bump_media", "bump_mentioning"]


async def bump_clips(ids: Iterable[int], conn: BaseDBAsyncClient | None = None) -> None:
    """Raise the version of the clips *ids* (their hashtags or mentions changed)."""
    wanted = sorted(set(ids))
    if wanted:
        await Clip.filter(pk__in=wanted).using_db(conn).update(version=F("version") + 1)


async def bump_comments(ids: Iterable[int], conn: BaseDBAsyncClient | None = None) -> None:
    """Raise the version of the comments *ids* (their mentions changed)."""
    wanted = sorted(set(ids))
    if wanted:
        await Comment.filter(pk__in=wanted).using_db(conn).update(version=F("version") + 1)


async def bump_media(media_id: int, conn: BaseDBAsyncClient | None = None) -> None:
    """Raise the version of the clips showing the media row *media_id* (it changed)."""
    await Clip.filter(media_id=media_id).using_db(conn).update(version=F("version") + 1)


async def bump_mentioning(account_id: int, conn: BaseDBAsyncClient | None = None) -> None:
    """Raise the version of the clips and comments mentioning *account_id* (its name or
    address, which their ``mentions`` show, changed)."""
    clips = Mention.filter(account_id=account_id, clip_id__not_isnull=True).values("clip_id")
    await Clip.filter(pk__in=Subquery(clips)).using_db(conn).update(version=F("version") + 1)
    comments = Mention.filter(account_id=account_id, comment_id__not_isnull=True).values(
        "comment_id"
    )
    await Comment.filter(pk__in=Subquery(comments)).using_db(conn).update(version=F("version") + 1)
