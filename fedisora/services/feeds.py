"""Home feeds are written at post time (fan-out on write): see ``TimelineEntry``."""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.backends.base.client import BaseDBAsyncClient

from fedisora.models import Follow, FollowState, TimelineEntry

__all__ = ["add_to_feeds", "local_follower_ids"]


async def local_follower_ids(account_id: int, conn: BaseDBAsyncClient) -> list[int]:
    """Ids of the local accounts whose follow of *account_id* is accepted."""
    rows = (
        await Follow.filter(target_id=account_id, state=FollowState.ACCEPTED, follower__domain=None)
        .using_db(conn)
        .values("follower_id")
    )
    return [int(r["follower_id"]) for r in rows]


async def add_to_feeds(
    owner_ids: Iterable[int],
    clip_id: int,
    conn: BaseDBAsyncClient,
    *,
    boosted_by_id: int | None = None,
) -> None:
    """Put a clip into these home feeds (already present: left as is)."""
    await TimelineEntry.bulk_create(
        [
            TimelineEntry(owner_id=o, clip_id=clip_id, boosted_by_id=boosted_by_id)
            for o in sorted(set(owner_ids))
        ],
        ignore_conflicts=True,
        using_db=conn,
    )
