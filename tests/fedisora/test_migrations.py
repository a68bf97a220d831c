"""The migrations in migrations/ describe exactly the models, on both backends."""

from __future__ import annotations

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
