"""The migrations in migrations/ describe exactly the models, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


async def _index_columns(table: str) -> set[tuple[str, ...]]:
    """The column lists of *table*'s indexes (unique constraints included), as the database
    has them."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite":
        found = set()
        for index in await conn.execute_query_dict(f'PRAGMA index_list("{table}")'):
            cols = await conn.execute_query_dict(f'PRAGMA index_info("{index["name"]}")')
            found.add(tuple(c["name"] for c in sorted(cols, key=lambda c: c["seqno"])))
        return found
    rows = await conn.execute_query_dict(
        "SELECT i.indexrelid, array_agg(a.attname ORDER BY k.ord) AS cols"
        " FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = $1::regclass GROUP BY i.indexrelid",
        [table],
    )
    return {tuple(r["cols"]) for r in rows}


async def test_every_declared_index_exists_after_migrating(db: str) -> None:
    """Each model's indexes and unique-togethers exist in the migrated database: an
    AlterField on SQLite rebuilds the table, and tortoise's rebuild dropped its indexes
    (notifications lost (recipient_id, id), and with it the index-only timeline)."""
    from tortoise import Tortoise

    missing = []
    for model in Tortoise.apps["fedisora"].values():
        meta = model._meta

        def column(name: str, meta: Any = meta) -> str:
            name = f"{name}_id" if name in meta.fk_fields or name in meta.o2o_fields else name
            return str(meta.fields_db_projection.get(name, name))

        wanted: list[tuple[str, ...]] = []
        for index in meta.indexes or ():
            fields = index.fields if hasattr(index, "fields") else index
            wanted.append(tuple(column(f) for f in fields))
        for together in meta.unique_together or ():
            wanted.append(tuple(column(f) for f in together))
        have = await _index_columns(meta.db_table)
        missing += [(meta.db_table, cols) for cols in wanted if cols not in have]
    assert missing == []


async def test_every_migration_applies_to_a_database_with_rows(tmp_path: Path) -> None:
    """An instance upgrades a database that holds data: a migration that adds a NOT NULL
    column without a default in the database (``db_default``) passes on the empty tables of
    a fresh install and fails on a used one (SQLite and PostgreSQL alike). So: the first
    migration, one row in every table, then all the others."""
    import aiosqlite

    path = tmp_path / "used.sqlite3"
    await migrate(f"sqlite://{path}", target="fedisora.0001_initial")
    async with aiosqlite.connect(path) as conn:
        tables = [
            name
            for (name,) in await (
                await conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                    " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'tortoise_%'"
                )
            ).fetchall()
        ]
        for table in tables:
            row: dict[str, object] = {}
            for _, name, kind, notnull, default, _pk in await (
                await conn.execute(f'PRAGMA table_info("{table}")')
            ).fetchall():
                if not notnull or default is not None:
                    continue
                kind = kind.upper()
                row[name] = (
                    1
                    if "INT" in kind or "BOOL" in kind or "REAL" in kind
                    else "2026-01-01 00:00:00+00:00"
                    if "TIMESTAMP" in kind or "DATE" in kind
                    else "{}"
                    if "JSON" in kind
                    else "x"
                )
            names = ", ".join(f'"{n}"' for n in row)
            marks = ", ".join("?" for _ in row)
            await conn.execute(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(row.values())
            )
        await conn.commit()
    assert len(tables) > 10
    await migrate(f"sqlite://{path}")  # every later migration, on tables that hold a row


async def test_0040_writes_the_lookup_index_again_with_32_bit_keys(tmp_path: Path) -> None:
    """0040 widens the index keys to position << 32 | 32 bits and writes every done
    fingerprint's rows again from its stored hashes, as the service now indexes them."""
    import aiosqlite
    import numpy as np

    from render.fingerprint import chunk_keys, hashes_to_hex, indexed_hashes

    path = tmp_path / "old.sqlite3"
    await migrate(f"sqlite://{path}", target="fedisora.0037_fingerprints")
    rng = np.random.default_rng(38)
    hashes = rng.integers(0, 256, (9, 3, 32), dtype=np.uint8)
    async with aiosqlite.connect(path) as conn:
        for fid, (state, text) in enumerate(
            [("done", hashes_to_hex(hashes)), ("pending", ""), ("done", "not hex")], start=1
        ):
            await conn.execute(
                "INSERT INTO fingerprints (id, state, state_changed_at, attempts, last_error, "
                "created_at, clip_id, rate, hashes, origin) VALUES (?, ?, ?, 0, '', ?, ?, 8, ?, "
                "'local')",
                [fid, state, "2026-01-01 00:00:00+00:00", "2026-01-01 00:00:00+00:00", fid, text],
            )
        await conn.execute(  # an old 16-bit key
            "INSERT INTO fingerprint_chunks (key, fingerprint_id) VALUES (?, 1)", [5 << 16 | 7]
        )
        await conn.commit()
    await migrate(f"sqlite://{path}")
    async with aiosqlite.connect(path) as conn:
        rows = await (
            await conn.execute("SELECT fingerprint_id, key FROM fingerprint_chunks")
        ).fetchall()
    assert {f for f, _ in rows} == {1}  # nothing for the pending one or the broken one
    assert sorted(k for _, k in rows) == chunk_keys(indexed_hashes(hashes))
