"""Does a timeline page cost the same with 10 thousand and 1 million clips?

Builds a scratch PostgreSQL database (FEDISORA_TEST_POSTGRES, default the local `test` server),
applies the migrations, fills it with 10k clips, times the ORM's timeline page queries, grows it
to 1M clips and times them again in the same run. Prints the per-query ratio (1M over 10k);
an index range scan keeps it near 1. Run: `.venv/bin/python bench/timeline_scaling.py`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time

import asyncpg

from fedisora.db import close_db, init_db, migrate
from fedisora.models import Clip, Notification, TimelineEntry, Visibility

ADMIN = os.environ.get("FEDISORA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
ACCOUNTS = 100  # each account has >= 100 clips even at 10k, so every page is full


async def fill(conn: asyncpg.Connection, start: int, stop: int) -> None:
    """Clips start..stop spread over ACCOUNTS accounts, each in its author's follower's feed."""
    await conn.execute(
        """
        INSERT INTO clips (id, account_id, uri, caption, content, visibility, local, sensitive,
                           spoiler_text, likes_count, comments_count, boosts_count,
                           remixes_count, pinned, created_at)
        SELECT (1700000000000::bigint + g) << 16, 1 + g % $3, 'https://b.example/c/' || g, '',
               '', CASE WHEN g % 5 = 0 THEN 'private' ELSE 'public' END, g % 3 <> 0, false, '',
               0, 0, 0, 0, false, now()
        FROM generate_series($1::bigint, $2::bigint - 1) AS g
        """,
        start,
        stop,
        ACCOUNTS,
    )
    await conn.execute(
        """
        INSERT INTO timeline_entries (owner_id, clip_id)
        SELECT 1 + (g + 1) % $3, (1700000000000::bigint + g) << 16
        FROM generate_series($1::bigint, $2::bigint - 1) AS g
        """,
        start,
        stop,
        ACCOUNTS,
    )
    await conn.execute(
        """
        INSERT INTO notifications (recipient_id, type, dedupe_key, dismissed, created_at)
        SELECT 1 + g % $3, 'favourite', 'n' || g, false, now()
        FROM generate_series($1::bigint, $2::bigint - 1) AS g
        """,
        start,
        stop,
        ACCOUNTS,
    )
    await conn.execute("VACUUM ANALYZE")


async def time_queries(rounds: int = 300) -> dict[str, float]:
    queries = {
        "home page": lambda i: (
            TimelineEntry.filter(owner_id=1 + i % ACCOUNTS).order_by("-clip_id").limit(20)
        ),
        "public page": lambda i: (
            Clip.filter(visibility=Visibility.PUBLIC, deleted_at=None).order_by("-id").limit(20)
        ),
        "local page": lambda i: (
            Clip.filter(local=True, visibility=Visibility.PUBLIC).order_by("-id").limit(20)
        ),
        "account page": lambda i: (
            Clip.filter(account_id=1 + i % ACCOUNTS).order_by("-id").limit(20)
        ),
        "notifications": lambda i: (
            Notification.filter(recipient_id=1 + i % ACCOUNTS).order_by("-id").limit(20)
        ),
    }
    result = {}
    for name, make in queries.items():
        for i in range(20):  # warm the cache
            await make(i)
        samples = []
        for i in range(rounds):
            t = time.perf_counter()
            await make(i)
            samples.append(time.perf_counter() - t)
        result[name] = statistics.median(samples)
    return result


async def main() -> None:
    name = f"fedisora_bench_{secrets.token_hex(3)}"
    admin = ADMIN.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"{ADMIN.rsplit('/', 1)[0]}/{name}"
    try:
        await migrate(url)
        data = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        await data.execute(
            "INSERT INTO accounts (id, username, uri, display_name, note, actor_type, locked,"
            " discoverable, indexable, followers_count, following_count, clips_count,"
            " created_at, updated_at) SELECT g, 'u' || g, 'https://b.example/u/' || g, '', '',"
            " 'Person', false, true, true, 0, 0, 0, now(), now()"
            f" FROM generate_series(1, {ACCOUNTS}) AS g"
        )
        await fill(data, 0, 10_000)
        await init_db(url)
        small = await time_queries()
        await close_db()
        t = time.perf_counter()
        await fill(data, 10_000, 1_000_000)
        print(f"grew to 1,000,000 clips in {time.perf_counter() - t:.1f} s")
        await data.close()
        await init_db(url)
        large = await time_queries()
        await close_db()
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    print(f"{'query':<16}{'10k clips':>12}{'1M clips':>12}{'ratio':>8}")
    for key in small:
        print(
            f"{key:<16}{small[key] * 1e3:>10.3f}ms{large[key] * 1e3:>10.3f}ms"
            f"{large[key] / small[key]:>8.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
