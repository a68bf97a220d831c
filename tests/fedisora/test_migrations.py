"""The migrations in migrations/ describe exactly the models, on both backends."""

from __future__ import annotations

from pathlib import Path

from tortoise import connections

from fedisora.db import migrate, pending_model_changes


async def test_no_model_change_is_missing_a_migration() -> None:
    changes = await pending_model_changes()
    assert changes == [], [w.name for w in changes]


async def test_migrations_applied_and_idempotent(db: str) -> None:
    await migrate(db)  # a second run applies nothing and fails on nothing
    conn = connections.get("default")
    if db.startswith("sqlite"):
        rows = await conn.execute_query_dict("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {r["name"] for r in rows}
    else:
        rows = await conn.execute_query_dict(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname='public'"
        )
        tables = {r["name"] for r in rows}
    expected = {
        "accounts",
        "users",
        "clips",
        "comments",
        "likes",
        "boosts",
        "follows",
        "notifications",
        "render_jobs",
        "deliveries",
        "inbox_items",
        "media_files",
        "timeline_entries",
        "tags",
        "clip_tags",
        "mentions",
        "cameos",
        "blocks",
        "mutes",
        "worker_heartbeats",
    }
    assert expected <= tables


async def test_0008_marks_accounts_deleted_by_their_server_under_the_old_marker(
    tmp_path: Path,
) -> None:
    """Before 0008 a remote account its server deleted had both suspension times set to one
    instant; 0008 turns that into ``origin_deleted_at`` and leaves other suspensions alone."""
    import aiosqlite

    path = tmp_path / "old.sqlite3"
    await migrate(f"sqlite://{path}", target="fedisora.0007_quote_checks")
    deleted, suspended_both, suspended_here = (
        "2026-01-01 00:00:00+00:00",
        ("2026-02-01 00:00:00+00:00", "2026-01-15 00:00:00+00:00"),
        "2026-03-01 00:00:00+00:00",
    )
    async with aiosqlite.connect(path) as conn:
        columns = await (await conn.execute("PRAGMA table_info(accounts)")).fetchall()

        async def insert(n: int, **values: object) -> None:
            row: dict[str, object] = {}
            for _, name, kind, notnull, default, pk in columns:
                if pk or not notnull or default is not None:
                    continue
                kind = kind.upper()
                row[name] = (
                    0
                    if "INT" in kind or "BOOL" in kind
                    else "2026-01-01 00:00:00+00:00"
                    if "TIMESTAMP" in kind or "DATE" in kind
                    else f"x{n}"
                )
            row.update(id=n, username=f"u{n}", uri=f"https://peer.example/users/u{n}", **values)
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            await conn.execute(
                f"INSERT INTO accounts ({names}) VALUES ({marks})", list(row.values())
            )

        await insert(1, domain="peer.example", suspended_at=deleted, origin_suspended_at=deleted)
        await insert(
            2,
            domain="peer.example",
            suspended_at=suspended_both[0],
            origin_suspended_at=suspended_both[1],
        )
        await insert(3, domain="peer.example", suspended_at=suspended_here)
        await insert(4, domain=None)
        await conn.commit()
    await migrate(f"sqlite://{path}")
    async with aiosqlite.connect(path) as conn:
        rows = await (
            await conn.execute("SELECT id, origin_deleted_at FROM accounts ORDER BY id")
        ).fetchall()
    assert rows == [(1, deleted), (2, None), (3, None), (4, None)]
