"""Loading the rows an endpoint names, with Mastodon's 404 for anything the viewer may not see."""

from __future__ import annotations

from typing import Any

from fedisora.errors import NotFound
from fedisora.fastload import by_ids
from fedisora.models import Account, Clip, Comment
from fedisora.services.visibility import can_see_clip, can_see_comment

__all__ = ["column", "get_account", "get_status", "get_status_row"]


async def get_account(account_id: int) -> Account:
    found = await by_ids(Account, [account_id]) if account_id >= 0 else []
    account = found[0] if found else None
    if account is None or account.suspended:
        raise NotFound("Record not found")
    return account


async def get_status_row(status_id: int) -> Clip | Comment | None:
    """The clip or comment with this id (one id space), deleted or not."""
    if status_id < 0:
        return None
    clips = await by_ids(Clip, [status_id])
    if clips:
        return clips[0]
    comments = await by_ids(Comment, [status_id])
    return comments[0] if comments else None


async def get_status(viewer: Account | None, status_id: int) -> Clip | Comment:
    """A status *viewer* may see. Private ones answer 404, exactly like missing ones."""
    status = await get_status_row(status_id)
    if status is None:
        raise NotFound("Record not found")
    visible = (
        await can_see_clip(viewer, status)
        if isinstance(status, Clip)
        else await can_see_comment(viewer, status)
    )
    if not visible:
        raise NotFound("Record not found")
    return status


async def column(query: Any, field: str) -> list[Any]:
    """One column of *query* as a list (tortoise types ``values_list(flat=True)`` as tuples)."""
    rows: list[Any] = list(await query.values_list(field, flat=True))
    return rows
