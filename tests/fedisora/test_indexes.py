"""Every timeline page is an index range scan with no sort: its cost does not grow with the table.

The check reads the query plans of the real ORM queries. On PostgreSQL (whose planner prefers a
scan and a sort on small tables) sequential scans, bitmap scans and sorts are disabled for the
check: if an index can serve both the filter and the order the planner then shows it, and if
none can it falls back to a scan and a sort anyway.
"""

from __future__ import annotations

from typing import Any

import pytest
from tortoise import connections

from fedisora.models import (
    Account,
    Clip,
    ClipTag,
    Comment,
    ForYouCandidate,
    Notification,
    TimelineEntry,
    Visibility,
)

QUERY_NAMES = [
    "home",
    "public",
    "local",
    "account",
    "tag",
    "notifications",
    "comments",
    "for_you",
    "remixes",
    "silenced",
]


def _queries() -> dict[str, Any]:
    return {
        "home": TimelineEntry.filter(owner_id=1, clip_id__lt=2**62).order_by("-clip_id").limit(20),
        "public": Clip.filter(visibility=Visibility.PUBLIC, id__lt=2**62).order_by("-id").limit(20),
        "local": Clip.filter(local=True, visibility=Visibility.PUBLIC).order_by("-id").limit(20),
        "account": Clip.filter(account_id=1).order_by("-id").limit(20),
        "tag": ClipTag.filter(tag_id=1).order_by("-clip_id").limit(20),
        "notifications": Notification.filter(recipient_id=1).order_by("-id").limit(20),
        "comments": Comment.filter(clip_id=1).order_by("id").limit(40),
        # fedisora.for_you.feed: a page of an account's list after the cursor's position
        "for_you": ForYouCandidate.filter(account_id=1, generation=3, position__gt=19)
        .order_by("position")
        .limit(40),
        # fedisora.for_you.candidates: a clip's newest remixes (the remix source)
        "remixes": Clip.filter(remix_of_id=1, visibility=Visibility.PUBLIC, deleted_at=None)
        .order_by("-id")
        .limit(20),
        # fedisora.services.visibility.limited_account_ids: read by every public list and
        # For You page (a few silenced accounts among all those the instance has seen)
        "silenced": Account.filter(silenced_at__not_isnull=True).values_list("id", flat=True),
    }


@pytest.mark.parametrize("name", QUERY_NAMES)
async def test_timeline_query_uses_an_index_without_sorting(db: str, name: str) -> None:
    query = _queries()[name]
    sql = query.sql(params_inline=True)
    conn = connections.get("default")
    if db.startswith("sqlite"):
        rows = await conn.execute_query_dict(f"EXPLAIN QUERY PLAN {sql}")
        plan = " | ".join(r["detail"] for r in rows)
        assert "USING" in plan and "INDEX" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert not any(
            r["detail"].startswith("SCAN ") and "INDEX" not in r["detail"] for r in rows
        ), plan
    else:
        async with conn._in_transaction() as tx:
            await tx.execute_script(
                "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;"
                " SET LOCAL enable_sort = off"
            )
            rows = await tx.execute_query_dict(f"EXPLAIN {sql}")
        plan = " | ".join(r["QUERY PLAN"] for r in rows)
        assert "Index" in plan, plan
        assert "Sort" not in plan and "Seq Scan" not in plan, plan
