"""What must hold after every fault, read straight from the instance's database, its media
directory and the peer's record of what it received.

1. **Every acknowledged write is present**: each post, comment, like, follow, render and
   upload the load generator got a 2xx for, and each activity the inbox answered 202 to
   (and that activity's effect).
2. **No effect happened twice**: one clip or comment per ``Idempotency-Key``; every counter
   equal to the rows it counts; one media file per render (one row, one MP4 on disk, no
   leftover temporary files); no activity id delivered to the peer twice, and one
   ``Accept`` per follow.
3. **Every durable job reaches a terminal state within a bound** (:func:`settle`): no row
   of any work table left in an automatic state, the render queue's ``ready`` counting as
   done (it waits for its owner).
4. **Nothing committed is lost on the way out**: every committed local clip, comment, like
   of a peer clip and follow of a peer actor, and an ``Accept`` for every follow from the
   peer, acknowledged or not, reached the peer.

A delivery may arrive twice only where the sender lost the outcome of a request it had
made: ActivityPub delivery is at-least-once (the receiver deduplicates by activity id),
and a sender killed, or cut off from its database, between the peer's 2xx and the commit
of ``delivered`` sends it again. Such redeliveries are counted and allowed only when the
first copy arrived inside an *excused* window the test gives (a kill of the process that
delivers, a database outage); any other duplicate is a violation.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from load import Inbound, Ledger
from rig import ChaosRig

SETTLE_BOUND = 120.0
"""Seconds every durable row has, once the fault is over and the load stopped, to reach a
terminal state: a lease (5 s) and a sweep (5 s) for rows a dead worker held, the first
retry of the slowest machine (a delivery: 30 s, then 60 s if the fault cost it a second
attempt) and the renders queued one behind another, with room to spare."""

KEY = re.compile(r"\[([^\]]+)\]")


@functools.cache
def machines() -> tuple[Any, ...]:
    """The durable-work machines an instance runs (their tables and state graphs)."""
    from fedisora.config import load_settings
    from fedisora.work.machines import build_machines

    settings = load_settings({"FEDISORA_DOMAIN": "chaos.test", "FEDISORA_DATA_DIR": "/nonexistent"})
    return tuple(build_machines(settings))


def work_tables() -> list[tuple[str, list[str]]]:
    """Each durable-work table with the states a runner still has to move it out of."""
    return [(m.name, sorted(m.graph.active_states)) for m in machines()]


def perpetual_tables() -> set[str]:
    """Tables whose rows never end (housekeeping chores: the failed state is their only
    terminal one, and they never get there): such a row is settled while it is not due."""
    return {m.name for m in machines() if m.graph.terminal_states == [m.graph.failed]}


async def connect(rig: ChaosRig) -> asyncpg.Connection:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await asyncpg.connect(rig.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# The column naming the remote host a work row talks to, where it has one.
HOST_COLUMNS = {"deliveries": "host", "remote_media_checks": "origin", "quote_checks": "origin"}


async def unsettled(rig: ChaosRig, *, except_host: str | None = None) -> list[dict[str, Any]]:
    """Rows still in an automatic state (those that talk to *except_host* left out); of the
    tables whose rows never end, those due now (or held) only."""
    perpetual = perpetual_tables()
    conn = await connect(rig)
    try:
        rows: list[dict[str, Any]] = []
        for table, active in work_tables():
            column = HOST_COLUMNS.get(table)
            extra = f" AND {column} <> $2" if column and except_host else ""
            args: list[Any] = [active] + ([except_host] if extra else [])
            if table in perpetual:
                extra += " AND (next_attempt_at <= now() OR locked_until > now())"
            for r in await conn.fetch(
                f"SELECT id, state, attempts, next_attempt_at, locked_until, last_error "
                f'FROM "{table}" WHERE state = ANY($1::text[]){extra} ORDER BY id',
                *args,
            ):
                rows.append({"table": table, **dict(r)})
        return rows
    finally:
        await conn.close()


async def settle(
    rig: ChaosRig, *, bound: float = SETTLE_BOUND, except_host: str | None = None
) -> float:
    """Wait until no durable row is left in an automatic state; return the seconds it took.
    Fails, listing the rows, after *bound* seconds."""
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    while time.monotonic() - started < bound:
        rows = await unsettled(rig, except_host=except_host)
        if not rows:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    conn = await connect(rig)
    try:
        beats = await conn.fetch(
            "SELECT name, extract(epoch FROM now() - last_seen) AS age FROM worker_heartbeats "
            "ORDER BY last_seen DESC LIMIT 6"
        )
    finally:
        await conn.close()
    workers = ", ".join(f"{b['name']} last seen {float(b['age']):.0f} s ago" for b in beats)
    listing = "\n".join(
        f"  {r['table']}:{r['id']} {r['state']} attempts={r['attempts']} "
        f"next={r['next_attempt_at']} locked_until={r['locked_until']} "
        f"error={str(r['last_error'])[-200:]!r}"
        for r in rows[:30]
    )
    raise AssertionError(
        f"{len(rows)} durable rows did not reach a terminal state within {bound:.0f} s:\n"
        f"{listing}\nworker heartbeats: {workers or 'none'}\n{rig.logs()}"
    )


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def fail(self, what: str, items: Any) -> None:
        items = sorted(items, key=str) if not isinstance(items, list) else items
        if items:
            shown = ", ".join(str(i) for i in items[:8])
            more = f" (and {len(items) - 8} more)" if len(items) > 8 else ""
            self.violations.append(f"{what}: {shown}{more}")


def _ids(values: Any) -> list[int]:
    return [int(v) for v in values]


async def _column(conn: Any, sql: str, *args: Any) -> set[Any]:
    """The first column of *sql*'s rows (a tuple of the columns when there are several)."""
    rows = await conn.fetch(sql, *args)
    return {r[0] if len(r) == 1 else tuple(r) for r in rows}


def _excused(at: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= at <= end for start, end in windows)


async def check(
    rig: ChaosRig, ledger: Ledger, *, excused: list[tuple[float, float]] | None = None
) -> Report:
    """Every invariant but the settling (call :func:`settle` first)."""
    report = Report()
    windows = excused or []
    conn = await connect(rig)
    try:
        await _acknowledged(conn, rig, ledger, report)
        await _once(conn, rig, report)
        await _renders(conn, rig, report)
        await _federation(conn, rig, report, windows)
    finally:
        await conn.close()
    return report


async def _acknowledged(conn: Any, rig: ChaosRig, ledger: Ledger, report: Report) -> None:
    counts = report.counts
    for what, ids, table in (
        ("posts", _ids(ledger.posts.values()), "clips"),
        ("comments", _ids(ledger.comments.values()), "comments"),
        ("renders", _ids(ledger.renders), "render_jobs"),
    ):
        live = " AND deleted_at IS NULL" if table != "render_jobs" else ""
        found = await _column(
            conn, f"SELECT id FROM {table} WHERE id = ANY($1::bigint[]){live}", ids
        )
        report.fail(f"acknowledged {what} missing", [i for i in ids if i not in found])
        counts[f"acknowledged {what}"] = len(ids)

    for what, pairs, sql in (
        (
            "likes (account, status)",
            ledger.likes,
            "SELECT account_id, clip_id FROM likes WHERE clip_id IS NOT NULL",
        ),
        (
            "follows (follower, target)",
            ledger.follows,
            "SELECT follower_id, target_id FROM follows",
        ),
    ):
        found = await _column(conn, sql)
        report.fail(
            f"acknowledged {what} missing",
            [(a, b) for a, b in pairs if (int(a), int(b)) not in found],
        )
        counts[f"acknowledged {what.split()[0]}"] = len(pairs)

    uploads = _ids(ledger.uploads)
    rows = await conn.fetch(
        "SELECT id, file, poster_file FROM media_files WHERE id = ANY($1::bigint[])", uploads
    )
    report.fail("acknowledged uploads missing", sorted(set(uploads) - {r["id"] for r in rows}))
    report.fail(
        "acknowledged uploads whose file is not on disk",
        [r["id"] for r in rows if not _on_disk(rig, r["file"], r["poster_file"])],
    )
    counts["acknowledged uploads"] = len(uploads)

    inbound = ledger.inbound
    items = {
        r["activity_id"]: r
        for r in await conn.fetch(
            "SELECT activity_id, state, last_error FROM inbox_items WHERE activity_id = ANY($1)",
            list(inbound),
        )
    }
    report.fail("acknowledged inbound activities not stored", set(inbound) - set(items))
    report.fail(
        "acknowledged inbound activities that failed",
        [f"{a} {r['last_error'][-120:]!r}" for a, r in items.items() if r["state"] == "failed"],
    )
    # A Follow is stored under the activity's id, a Create under its note's; a Like is a like
    # of its object by its actor, whatever its id (a second Like of the same clip by the
    # same actor is the first one again).
    stored = {
        "Follow": await _column(conn, "SELECT uri FROM follows"),
        "Create": await _column(conn, "SELECT uri FROM clips"),
        "Reply": await _column(conn, "SELECT uri FROM comments"),
        "Like": await _column(
            conn,
            "SELECT a.uri, c.uri FROM likes l JOIN accounts a ON a.id = l.account_id "
            "JOIN clips c ON c.id = l.clip_id WHERE a.domain IS NOT NULL",
        ),
    }
    for kind, have in stored.items():
        report.fail(
            f"acknowledged inbound {kind}s without their effect",
            [
                activity_id
                for activity_id, i in inbound.items()
                if i.type == kind and _effect(kind, activity_id, i) not in have
            ],
        )
    counts["acknowledged inbound activities"] = len(inbound)


def _effect(kind: str, activity_id: str, inbound: Inbound) -> Any:
    """What the database holds once *inbound* took effect (see ``stored`` above)."""
    if kind == "Follow":
        return activity_id
    if kind == "Like":
        return (inbound.actor, inbound.object)
    return inbound.object


def _on_disk(rig: ChaosRig, *files: str | None) -> bool:
    """Whether every one of *files* is stored (on disk, or in the bucket)."""
    return all(rig.has_media(f) for f in files if f)


COUNTERS = {
    "clips.likes_count": """
        SELECT c.id, c.likes_count, count(l.id) FROM clips c
        LEFT JOIN likes l ON l.clip_id = c.id GROUP BY c.id
        HAVING c.likes_count <> count(l.id)""",
    "comments.likes_count": """
        SELECT c.id, c.likes_count, count(l.id) FROM comments c
        LEFT JOIN likes l ON l.comment_id = c.id GROUP BY c.id
        HAVING c.likes_count <> count(l.id)""",
    "clips.comments_count": """
        SELECT c.id, c.comments_count, count(m.id) FROM clips c
        LEFT JOIN comments m ON m.clip_id = c.id AND m.deleted_at IS NULL GROUP BY c.id
        HAVING c.comments_count <> count(m.id)""",
    "accounts.followers_count": """
        SELECT a.id, a.followers_count, count(f.id) FROM accounts a
        LEFT JOIN follows f ON f.target_id = a.id AND f.state = 'accepted' GROUP BY a.id
        HAVING a.followers_count <> count(f.id)""",
    "accounts.following_count": """
        SELECT a.id, a.following_count, count(f.id) FROM accounts a
        LEFT JOIN follows f ON f.follower_id = a.id AND f.state = 'accepted' GROUP BY a.id
        HAVING a.following_count <> count(f.id)""",
    "accounts.clips_count": """
        SELECT a.id, a.clips_count, count(c.id) FROM accounts a
        LEFT JOIN clips c ON c.account_id = a.id AND c.deleted_at IS NULL GROUP BY a.id
        HAVING a.clips_count <> count(c.id)""",
}
"""Each stored counter, as rows (id, stored, counted) where it differs from what it counts."""


async def _once(conn: Any, rig: ChaosRig, report: Report) -> None:
    for table, column, prefix in (
        ("clips", "caption", "chaos post ["),
        ("comments", "text", "chaos comment ["),
    ):
        texts = await conn.fetch(
            f"SELECT {column} FROM {table} WHERE {column} LIKE $1 AND deleted_at IS NULL",
            prefix + "%",
        )
        keys = Counter(m.group(1) for r in texts if (m := KEY.search(r[0])))
        report.fail(
            f"{table} stored twice for one Idempotency-Key",
            [f"{k} x{n}" for k, n in keys.items() if n > 1],
        )
    for name, sql in COUNTERS.items():
        report.fail(
            f"{name} differs from the rows it counts (id stored/counted)",
            [f"{r[0]} {r[1]}/{r[2]}" for r in await conn.fetch(sql)],
        )


FINISHED = ("ready", "published")
OVER = (*FINISHED, "failed", "cancelled")


async def _renders(conn: Any, rig: ChaosRig, report: Report) -> None:
    jobs = {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM render_jobs")}
    outputs = {
        r["id"]: r["output_id"]
        for r in await conn.fetch(
            "SELECT id, output_id FROM render_jobs WHERE state = ANY($1)", list(FINISHED)
        )
    }
    media = await conn.fetch(
        "SELECT id, file, poster_file, provenance->'claim'->>'job_id' AS job "
        "FROM media_files WHERE provenance->'claim'->>'job_id' IS NOT NULL"
    )
    per_job = Counter(int(m["job"]) for m in media)
    by_id = {m["id"]: m for m in media}
    report.fail(
        "render jobs with more than one media file", [j for j, n in per_job.items() if n > 1]
    )
    report.fail(
        "finished render jobs without their media file",
        [j for j, out in outputs.items() if out is None or per_job[j] != 1],
    )
    report.fail(
        "finished render jobs whose video or poster is not on disk",
        [
            j
            for j, out in outputs.items()
            if out in by_id and not _on_disk(rig, by_id[out]["file"], by_id[out]["poster_file"])
        ],
    )
    stray = []
    for key in rig.media_keys():
        name = key.removeprefix("clips/")
        if name == key or not name.startswith("render-"):
            continue
        job_id = name.removeprefix("render-").split(".")[0]
        state = jobs.get(int(job_id)) if job_id.isdigit() else None
        if state not in FINISHED:
            stray.append(f"{name} ({state or 'no job'})")
    report.fail("render outputs on disk without a finished job", stray)
    work = rig.media_root / "render-work"
    report.fail(
        "work directories of finished render jobs left behind",
        [
            p.name
            for p in (work.iterdir() if work.is_dir() else [])
            if not p.name.isdigit() or jobs.get(int(p.name)) in OVER
        ],
    )
    referenced = {
        f for r in await conn.fetch("SELECT file, poster_file FROM media_files") for f in r if f
    }
    report.fail(
        "files in the media root that no media row refers to (temporary files included)",
        [
            rel
            for rel in rig.media_keys()
            if rel not in referenced and not rel.startswith("render-work/")
        ],
    )
    report.counts["render jobs"] = len(jobs)
    report.counts["render jobs finished"] = len(outputs)


# Every committed change that federates to the peer, as (what, activity id); all local users
# are followed by the peer's actors before any fault, so each public clip and comment goes to
# it, as do likes of its clips and follows of its actors.
EXPECTED = (
    (
        "Create of a local clip",
        "SELECT c.uri || '/activity' FROM clips c JOIN accounts a ON a.id = c.account_id "
        "WHERE a.domain IS NULL AND c.deleted_at IS NULL AND c.visibility = 'public'",
    ),
    (
        "Create of a local comment",
        "SELECT c.uri || '/activity' FROM comments c JOIN accounts a ON a.id = c.account_id "
        "WHERE a.domain IS NULL AND c.deleted_at IS NULL AND c.visibility = 'public'",
    ),
    (
        "Like of a peer clip",
        "SELECT l.uri FROM likes l JOIN accounts a ON a.id = l.account_id "
        "JOIN clips c ON c.id = l.clip_id JOIN accounts ca ON ca.id = c.account_id "
        "WHERE a.domain IS NULL AND ca.domain = $1",
    ),
    (
        "Follow of a peer actor",
        "SELECT f.uri FROM follows f JOIN accounts a ON a.id = f.follower_id "
        "JOIN accounts t ON t.id = f.target_id WHERE a.domain IS NULL AND t.domain = $1",
    ),
)


async def _federation(
    conn: Any, rig: ChaosRig, report: Report, windows: list[tuple[float, float]]
) -> None:
    peer = rig.peer
    received = peer.by_activity_id()
    excused, doubled = [], []
    for activity_id, copies in received.items():
        if len(copies) > 1:
            late = excused if _excused(copies[0].at, windows) else doubled
            late.append(f"{activity_id} x{len(copies)}")
    report.fail("activities the peer received more than once", doubled)
    report.counts["redeliveries excused (sender lost the outcome in a fault)"] = len(excused)
    accepts = Counter(
        copies[0].object_id for copies in received.values() if copies[0].type == "Accept"
    )
    report.fail(
        "follows the peer got more than one Accept for", [f for f, n in accepts.items() if n > 1]
    )
    expected: dict[str, str] = {}
    for what, sql in EXPECTED:
        for activity_id in await _column(conn, sql, *([peer.domain] if "$1" in sql else [])):
            expected[activity_id] = what
    states = dict(
        await _column(
            conn,
            "SELECT activity_id, state FROM deliveries WHERE activity_id = ANY($1)",
            list(expected),
        )
    )
    missing = [
        f"{what} {aid} ({'delivery ' + states[aid] if aid in states else 'no delivery row'})"
        for aid, what in expected.items()
        if aid not in received
    ]
    peer_follows = await _column(
        conn,
        "SELECT f.uri FROM follows f JOIN accounts a ON a.id = f.follower_id "
        "WHERE a.domain = $1 AND f.state = 'accepted'",
        peer.domain,
    )
    missing += [f"Accept of the peer's follow {f}" for f in peer_follows if f not in accepts]
    report.fail("committed changes that never reached the peer", missing)
    report.counts["activities the peer received"] = len(received)
    report.counts["activities the peer should have"] = len(expected) + len(peer_follows)
