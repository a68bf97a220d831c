"""What does a thread's context cost, as the thread grows?

``/api/v1/statuses/:id/context`` once answered a 1,722-comment thread whole (2.6 MB) to anyone.
It is bounded now (fedisora.services.threads): this builds clips with 100, 1,722 and 10,000
comments in a scratch database, then, in the same run and through the real app, times the
anonymous context of each next to one status (``GET /api/v1/statuses/:id``, the baseline),
and prints the bytes, the milliseconds and the ratios. The answer's size stays flat; its time
grows only with the one narrow scan of the thread's shape, which stops at 2,000 comments for
anonymous callers (so 10,000 comments cost what 1,722 do).

Run: `.venv/bin/python bench/context.py [--postgres URL] [--rounds N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
from typing import Any

import httpx

from fedisora import urls
from fedisora.app import create_app
from fedisora.config import load_settings
from fedisora.db import close_db, init_db, migrate
from fedisora.ids import new_id
from fedisora.models import Clip, Comment, MediaFile, MediaKind, Visibility
from fedisora.services import posts
from fedisora.services.accounts import create_local_account

SIZES = (100, 1722, 10_000)


async def thread(author: Any, commenter: Any, comments: int, start_ms: int) -> Clip:
    media = await MediaFile.create(
        account=author,
        kind=MediaKind.VIDEO,
        file=f"clips/{secrets.token_hex(4)}.mp4",
        content_type="video/mp4",
        provenance={"state": "trusted", "local": True},
    )
    clip = await posts.post_clip(author, media, caption="a thread")
    rows = []
    for n in range(comments):
        pk = new_id(start_ms + n)
        parent = rows[n // 3].pk if n >= 3 and n % 2 else None  # some nesting
        rows.append(
            Comment(
                id=pk,
                account_id=commenter.pk,
                clip_id=clip.pk,
                parent_id=parent,
                uri=f"https://bench.test/users/c/comments/{pk}",
                text=f"comment {n} " + "words " * 40,
                content=f"<p>comment {n} " + "words " * 40 + "</p>",
                visibility=Visibility.PUBLIC,
            )
        )
    await Comment.bulk_create(rows, batch_size=1000)
    return clip


async def timed(client: httpx.AsyncClient, path: str, rounds: int) -> tuple[float, int]:
    times = []
    size = 0
    for _ in range(rounds):
        began = time.perf_counter()
        r = await client.get(path)
        times.append(time.perf_counter() - began)
        assert r.status_code == 200, r.text[:200]
        size = len(r.content)
    return statistics.median(times) * 1000, size


async def main(database: str | None, rounds: int) -> None:
    scratch = tempfile.mkdtemp(prefix="fedisora-bench-")
    url = database or f"sqlite://{scratch}/bench.sqlite3"
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "bench.test",
            "FEDISORA_DATA_DIR": scratch,
            "FEDISORA_SECRET_KEY": "b" * 40,
            "FEDISORA_DATABASE_URL": url,
        }
    )
    urls.configure(settings)
    await migrate(url)
    await init_db(url)
    try:
        author = await create_local_account("ann", "ann@bench.test", "a bench password")
        commenter = await create_local_account("bob", "bob@bench.test", "a bench password")
        start = int(time.time() * 1000)
        clips = {}
        for size in SIZES:
            clips[size] = await thread(author, commenter, size, start)
            start += size
        app = create_app(settings, run_work=False, manage_db=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bench.test") as c:
            base_ms, base_bytes = await timed(c, f"/api/v1/statuses/{clips[SIZES[0]].pk}", rounds)
            print(f"one status (baseline): {base_ms:7.1f} ms, {base_bytes:8d} bytes")
            first = None
            for size in SIZES:
                ms, body = await timed(c, f"/api/v1/statuses/{clips[size].pk}/context", rounds)
                first = first or ms
                print(
                    f"anonymous context of {size:6d} comments: {ms:7.1f} ms, {body:8d} bytes; "
                    f"x{ms / base_ms:5.1f} the baseline, x{ms / first:5.2f} the smallest thread"
                )
    finally:
        await close_db()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL to use instead of scratch SQLite")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    os.environ.pop("FEDISORA_TEST_REDIS", None)
    asyncio.run(main(args.postgres, args.rounds))
