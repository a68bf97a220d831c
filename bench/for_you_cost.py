"""For You's cost: does a page cost the same at 1 million clips as at 10 thousand?

Builds a scratch PostgreSQL database (FEDISORA_TEST_POSTGRES, default the local ``test``
server), applies the migrations and fills it with SQL (``generate_series``): the newest
10 thousand clips first, then the 990 thousand older ones, so that at both sizes the recent
window the candidate sources read looks alike. ``AUTHORS`` accounts (a fifth of them
remote, with verified provenance), ``TAGS`` hashtags (each clip has one), engagement with a
long tail; ``VIEWERS`` local viewers, each following ``FOLLOWS`` authors (their clips in the
viewer's home feed), with interests in creators and hashtags, likes and seen clips.

Two databases, one per size (the small one holds the same newest clips as the large one),
both built first. In each, for each viewer: the time to refresh its list
(:func:`fedisora.for_you.candidates.refresh_now`: the sources, the rules, the ranking, the
write of ~300 rows), then the latency of a For You page of 20 over the computed list, at
cursors spread over its first 200 positions: :func:`fedisora.for_you.feed.page` alone (the
list's range read and the page's re-checks), and with the Status entities the API renders
(:func:`fedisora.api.entities.status_entities`). The pages of the two sizes are timed side
by side: blocks of ``--block`` pages, one database then the other, so that the machine's
other load falls on both alike (timed one size after the other, the p99 ratio moved by
+-0.4 between runs on a busy machine). Printed: p50 and p99 of each at both sizes,
their ratio (target <= 1.3), and the refresh times.

Run: ``.venv/bin/python bench/for_you_cost.py`` (about a few minutes; ``--small``/``--large``
change the sizes). The lead's ``bench/for_you.py`` calls :func:`run_cost` and :func:`report`.

Found with it: the entities (:func:`~fedisora.api.entities.status_entities`, every
timeline's) load a page's hashtags with ``clip_tags.clip_id IN (...)``, and ``clip_tags``
has no index that starts with ``clip_id`` (only ``(tag_id, clip_id)``): a scan of the whole
join table, so the API page grows with the number of clips. ``--clip-tags-index`` measures
the same with such an index added to the scratch database.

Measured side by side (2 cores shared with five other jobs, load average about 10, PostgreSQL
15, 2026-12-07; the absolute times are the machine's load, the ratios are the measure):

=============================  ===========  ===========  =====
                               10 k clips   1 M clips    ratio
=============================  ===========  ===========  =====
page p50 (feed.page)           72.4 ms      71.4 ms      0.99
page p99 (feed.page)           798 ms       725 ms       0.91
API page p50 (entities too)    78.4 ms      75.1 ms      0.96
API page p99 (entities too)    798 ms       808 ms       1.01
refresh one user (median)      416 ms       367 ms       0.88
=============================  ===========  ===========  =====

(Timed one size after the other, as this bench did before, the p99 ratio was 1.51 in one
run and moved by +-0.4 between runs: the machine's other load, not the page.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from fedisora import urls
from fedisora.config import load_settings
from fedisora.db import close_db, init_db, migrate

ADMIN = os.environ.get("FEDISORA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
AUTHORS = 2000
TAGS = 300
VIEWERS = 5
FOLLOWS = 40
PAGE = 20
ROUNDS = 500
#: Pages timed in one database before the other's turn (see :func:`run_cost`).
BLOCK = 50
SECRET = "bench-secret-" + "x" * 30
BASE_MS = 1_700_000_000_000


@dataclass
class Sample:
    clips: int
    page_p50: float
    page_p99: float
    api_p50: float
    api_p99: float
    refresh_median: float
    refresh_max: float
    list_size: int


def _clip_id(g: str) -> str:
    """SQL: the id of clip number *g* (time-ordered, as fedisora's ids)."""
    return f"(({BASE_MS}::bigint + {g}) << 16)"


async def _base(conn: asyncpg.Connection, total: int) -> None:
    """Accounts (viewers 1..VIEWERS, then authors), tags, verified remote media."""
    await conn.execute(
        """
        INSERT INTO accounts (id, username, domain, uri, display_name, note, actor_type,
                              locked, discoverable, indexable, followers_count,
                              following_count, clips_count, created_at, updated_at)
        SELECT g, 'u' || g,
               CASE WHEN g > $1::int AND g % 5 = 0 THEN 'peer' || (g % 7) || '.example' END,
               'https://b.example/u/' || g, '', '', 'Person', false, true, true, 0, 0,
               CASE WHEN g % 50 = 0 THEN 2 ELSE 100 END, now(), now()
        FROM generate_series(1, $1::int + $2::int) AS g
        """,
        VIEWERS,
        AUTHORS,
    )
    await conn.execute(
        "INSERT INTO tags (id, name, created_at) SELECT g, 'tag' || g, now()"
        " FROM generate_series(1, $1) AS g",
        TAGS,
    )
    await conn.execute(
        """
        INSERT INTO media_files (id, kind, remote_url, content_type, description, provenance,
                                 created_at)
        SELECT g, 'video', 'https://peer.example/v/' || g || '.mp4', 'video/mp4', '',
               jsonb_build_object('state', 'verified', 'local', false, 'checked_at',
                                  now()::text, 'file_size', 1000), now()
        FROM generate_series(1, 100) AS g
        """
    )
    for viewer in range(1, VIEWERS + 1):
        followed = [VIEWERS + 1 + (viewer * 37 + k * 11) % AUTHORS for k in range(FOLLOWS)]
        await conn.executemany(
            "INSERT INTO follows (follower_id, target_id, state, uri, created_at)"
            " VALUES ($1, $2, 'accepted', $3, now()) ON CONFLICT DO NOTHING",
            [(viewer, t, f"f:{viewer}:{t}") for t in followed],
        )
        creators = [VIEWERS + 1 + (viewer * 13 + k * 29) % AUTHORS for k in range(30)]
        await conn.executemany(
            "INSERT INTO interests (account_id, kind, key, weight, events, updated_at)"
            " VALUES ($1, 'creator', $2, $3, 3, now()) ON CONFLICT DO NOTHING",
            [(viewer, str(c), 2.0 + (i % 7)) for i, c in enumerate(creators)],
        )
        await conn.executemany(
            "INSERT INTO interests (account_id, kind, key, weight, events, updated_at)"
            " VALUES ($1, 'tag', $2, $3, 3, now()) ON CONFLICT DO NOTHING",
            [(viewer, f"tag{1 + (viewer * 7 + k * 17) % TAGS}", 1.0 + k) for k in range(15)],
        )


async def fill(conn: asyncpg.Connection, start: int, stop: int, total: int) -> None:
    """Clips number start..stop (of *total*: number total - 1 is the newest, a minute ago;
    one every 2 s before it), their hashtags, the viewers' home feeds, likes and views."""
    cid = _clip_id("g")
    author = f"({VIEWERS} + 1 + (g * 7919) % {AUTHORS})"
    await conn.execute(
        f"""
        INSERT INTO clips (id, account_id, uri, caption, content, visibility, local,
                           sensitive, spoiler_text, media_id, likes_count, comments_count,
                           boosts_count, remixes_count, views_count, completions_count,
                           skips_count, pinned, created_at, remix_of_id)
        SELECT {cid}, {author}, 'https://b.example/c/' || g, '', '',
               CASE WHEN g % 10 = 0 THEN 'unlisted' ELSE 'public' END,
               ({author}) % 5 <> 0 OR ({author}) <= {VIEWERS}, false, '',
               CASE WHEN ({author}) % 5 = 0 THEN 1 + g % 100 ELSE NULL END,
               (power(random(), 6) * 300)::int, (power(random(), 8) * 40)::int,
               (power(random(), 8) * 30)::int, (power(random(), 10) * 10)::int,
               (power(random(), 3) * 3000)::int, (power(random(), 3) * 1500)::int,
               (power(random(), 3) * 800)::int, false,
               now() - interval '1 minute' - ($3::bigint - 1 - g) * interval '2 seconds',
               CASE WHEN g % 97 = 0 AND g - 50 >= $1 THEN {_clip_id("(g - 1 - (g % 50))")} END
        FROM generate_series($1::bigint, $2::bigint - 1) AS g
        """,
        start,
        stop,
        total,
    )
    await conn.execute(
        f"""
        INSERT INTO clip_tags (tag_id, clip_id)
        SELECT 1 + (g * 31) % {TAGS}, {cid} FROM generate_series($1::bigint, $2::bigint - 1) g
        """,
        start,
        stop,
    )
    await conn.execute(
        f"""
        INSERT INTO timeline_entries (owner_id, clip_id)
        SELECT f.follower_id, c.id FROM clips c JOIN follows f ON f.target_id = c.account_id
        WHERE c.id >= {_clip_id("$1::bigint")} AND c.id < {_clip_id("$2::bigint")}
        """,
        start,
        stop,
    )
    for viewer in range(1, VIEWERS + 1):
        # a like and a view of about one clip in 2000 (never of the newest: a like of the
        # source of the remixes the remix source finds)
        await conn.execute(
            f"""
            INSERT INTO likes (account_id, clip_id, target_key, uri, created_at)
            SELECT $3::int, {cid}, 'clip:' || {cid}, 'l:' || $3::int || ':' || g, now()
            FROM generate_series($1::bigint, $2::bigint - 1) g WHERE (g + $3::int) % 2000 = 0
            """,
            start,
            stop,
            viewer,
        )
        await conn.execute(
            f"""
            INSERT INTO clip_views (account_id, clip_id, impressions, watch_ms, completions,
                                    replays, skips, hidden, first_seen_at, last_seen_at)
            SELECT $3::int, {cid}, 1, 3000, 1, 0, 0, false, now(), now()
            FROM generate_series($1::bigint, $2::bigint - 1) g WHERE (g + $3::int) % 2000 = 1000
            """,
            start,
            stop,
            viewer,
        )
    await conn.execute("VACUUM ANALYZE")


def _pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Prepared:
    """A database whose viewers' lists are computed: where to time pages."""

    url: str
    clips: int
    refreshes: list[float]
    list_size: int
    cursors: list[tuple[int, str | None]]  # (viewer's account id, cursor)


async def prepare(url: str, clips: int) -> Prepared:
    """Refresh every viewer's list (timed) and lay out the cursors pages are read at."""
    from fedisora.for_you import candidates, feed
    from fedisora.models import Account, ForYouCandidate, ForYouRefresh

    await init_db(url)
    try:
        viewers = [await Account.get(pk=v) for v in range(1, VIEWERS + 1)]
        refreshes = []
        sizes = []
        for viewer in viewers:
            t = time.perf_counter()
            generation = await candidates.refresh_now(viewer)
            refreshes.append(time.perf_counter() - t)
            sizes.append(
                await ForYouCandidate.filter(account_id=viewer.pk, generation=generation).count()
            )
        cursors: list[tuple[int, str | None]] = []
        for viewer in viewers:
            cursors.append((viewer.pk, None))
            row = await ForYouRefresh.get(account_id=viewer.pk)
            for position in range(PAGE - 1, 200, PAGE):
                made = feed.cursor_for(viewer.pk, row.generation, position, secret=SECRET)
                cursors.append((viewer.pk, made))
    finally:
        await close_db()
    return Prepared(url, clips, refreshes, min(sizes), cursors)


async def time_pages(
    db: Prepared, start: int, count: int, page_times: list[float], api_times: list[float]
) -> None:
    """Time *count* pages of *db* (cursors from *start* on), after a few untimed ones."""
    from fedisora.api.entities import status_entities
    from fedisora.for_you import feed
    from fedisora.models import Account

    await init_db(db.url)
    try:
        viewers = {pk: await Account.get(pk=pk) for pk in range(1, VIEWERS + 1)}
        for i in range(5):  # warm the connection and the caches
            pk, cursor = db.cursors[(start + i) % len(db.cursors)]
            await feed.page(viewers[pk], cursor, PAGE, secret=SECRET)
        for i in range(start, start + count):
            pk, cursor = db.cursors[i % len(db.cursors)]
            viewer = viewers[pk]
            t = time.perf_counter()
            found = await feed.page(viewer, cursor, PAGE, secret=SECRET)
            middle = time.perf_counter()
            await status_entities(viewer, [item.clip for item in found.items])
            end = time.perf_counter()
            page_times.append(middle - t)
            api_times.append(end - t)
    finally:
        await close_db()


def _sample(db: Prepared, page_times: list[float], api_times: list[float]) -> Sample:
    return Sample(
        clips=db.clips,
        page_p50=statistics.median(page_times),
        page_p99=_pct(page_times, 0.99),
        api_p50=statistics.median(api_times),
        api_p99=_pct(api_times, 0.99),
        refresh_median=statistics.median(db.refreshes),
        refresh_max=max(db.refreshes),
        list_size=db.list_size,
    )


async def _scratch(admin: str, tag: str) -> tuple[str, str]:
    name = f"fedisora_bench_foryou_{tag}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name, f"{ADMIN.rsplit('/', 1)[0]}/{name}"


async def _build(url: str, clips: int, large: int) -> None:
    """The newest *clips* of a *large* instance (the same ids, authors and engagement as
    the large one's newest: the two databases differ only by the older clips)."""
    await migrate(url)
    data = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await _base(data, large)
        t = time.perf_counter()
        await fill(data, large - clips, large, large)
        print(f"built {clips:,} clips in {time.perf_counter() - t:.1f} s", flush=True)
    finally:
        await data.close()


async def run_cost(
    small: int = 10_000,
    large: int = 1_000_000,
    rounds: int = ROUNDS,
    block: int = BLOCK,
) -> tuple[Sample, Sample]:
    """Build two scratch databases (*small* and *large* clips), compute the viewers' lists
    in each, then time pages in both side by side: blocks of *block* pages, alternating,
    until each has *rounds* (so that whatever else the machine does falls on both alike);
    drop them. (An index on ``clip_tags (clip_id)``, added by migration 0032 after this bench
    showed the API page 5x slower at 1 M clips without it, is part of the schema.)"""
    admin = ADMIN.replace("postgres://", "postgresql://", 1)
    settings = load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": "/nonexistent"}
    )
    urls.configure(settings)
    names: list[str] = []
    try:
        small_name, small_url = await _scratch(admin, "small")
        names.append(small_name)
        large_name, large_url = await _scratch(admin, "large")
        names.append(large_name)
        await _build(small_url, small, large)
        await _build(large_url, large, large)
        dbs = [await prepare(small_url, small), await prepare(large_url, large)]
        times: list[tuple[list[float], list[float]]] = [([], []), ([], [])]
        for start in range(0, rounds, block):
            count = min(block, rounds - start)
            for db, (page_times, api_times) in zip(dbs, times, strict=True):
                await time_pages(db, start, count, page_times, api_times)
        first, second = (_sample(db, *t) for db, t in zip(dbs, times, strict=True))
    finally:
        conn = await asyncpg.connect(admin)
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    return first, second


def report(first: Sample, second: Sample) -> None:
    def ms(x: float) -> str:
        return f"{x * 1e3:9.2f} ms"

    print(f"{'For You cost':<34}{first.clips:>12,}{second.clips:>12,} clips{'ratio':>9}")
    for label, a, b in (
        ("page p50 (feed.page)", first.page_p50, second.page_p50),
        ("page p99 (feed.page)", first.page_p99, second.page_p99),
        ("page p50 + entities (API)", first.api_p50, second.api_p50),
        ("page p99 + entities (API)", first.api_p99, second.api_p99),
        ("refresh one user (median)", first.refresh_median, second.refresh_median),
        ("refresh one user (max)", first.refresh_max, second.refresh_max),
    ):
        print(f"{label:<34}{ms(a)}{ms(b)}      {b / a:8.2f}")
    print(f"{'list size (clips)':<34}{first.list_size:>12}{second.list_size:>12}")
    ratio = second.page_p50 / first.page_p50
    ratio99 = second.page_p99 / first.page_p99
    api = second.api_p50 / first.api_p50
    api99 = second.api_p99 / first.api_p99

    def verdict(*ratios: float) -> str:
        return "met" if max(ratios) <= 1.3 else "NOT met"

    print(
        f"For You page cost ratio {second.clips:,} / {first.clips:,} clips: feed.page p50 "
        f"{ratio:.2f}, p99 {ratio99:.2f} (target <= 1.3: {verdict(ratio, ratio99)}); "
        f"API page with entities p50 {api:.2f}, p99 {api99:.2f} "
        f"({verdict(api, api99)})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--block", type=int, default=BLOCK, help="pages per turn")
    args = parser.parse_args(argv)
    run = run_cost(args.small, args.large, args.rounds, args.block)
    first, second = asyncio.run(run)
    report(first, second)


if __name__ == "__main__":
    main()
