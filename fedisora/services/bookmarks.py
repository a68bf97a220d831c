"""Bookmarks and pins: private or profile-level marks on statuses, never federated as activities."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

from fedisora.errors import Invalid
from fedisora.models import Account, Bookmark, Clip, Comment, Visibility

__all__ = ["MAX_PINNED", "bookmark", "pin", "unbookmark", "unpin"]

MAX_PINNED = 5


async def bookmark(account: Account, status: Clip | Comment) -> Bookmark:
    """Bookmark a status the caller can see (checked by the caller). Idempotent."""
    existing = await Bookmark.get_or_none(account_id=account.pk, status_id=status.pk)
    if existing is not None:
        return existing
    try:
        return await Bookmark.create(account=account, status_id=status.pk)
    except IntegrityError:
        return await Bookmark.get(account_id=account.pk, status_id=status.pk)


async def unbookmark(account: Account, status: Clip | Comment) -> bool:
    return bool(await Bookmark.filter(account_id=account.pk, status_id=status.pk).delete())


async def pin(account: Account, status: Clip | Comment) -> Clip:
    """Pin one of the caller's own clips to their profile (at most :data:`MAX_PINNED`)."""
    if not isinstance(status, Clip):
        raise Invalid("only clips can be pinned, not comments")
    if status.account_id != account.pk:
        raise Invalid("you can only pin your own clips")
    if status.visibility == Visibility.DIRECT:
        raise Invalid("direct clips cannot be pinned")
    if status.pinned:
        return status
    if await Clip.filter(account_id=account.pk, pinned=True, deleted_at=None).count() >= MAX_PINNED:
        raise Invalid(f"you can pin at most {MAX_PINNED} clips")
    await Clip.filter(pk=status.pk).update(pinned=True)
    status.pinned = True
    return status


async def unpin(account: Account, status: Clip | Comment) -> Clip:
    if not isinstance(status, Clip) or status.account_id != account.pk:
        raise Invalid("you can only unpin your own clips")
    await Clip.filter(pk=status.pk).update(pinned=False)
    status.pinned = False
    return status
