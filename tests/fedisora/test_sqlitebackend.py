"""SQLite transactions and other processes' writes (fedisora.sqlitebackend)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from tortoise.transactions import in_transaction

from fedisora.models import Tag


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_transaction_that_read_first_is_not_refused_for_another_process_write(
    db: str,
) -> None:
    """A transaction reads, another connection (as another process would) writes, then the
    transaction writes: with a deferred BEGIN the last write failed at once ("database is
    locked"); the transaction holds the write lock from its start, so the other write waits
    for its commit and both stand."""
    path = db[len("sqlite://") :]
    other = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    try:
        async with in_transaction():
            assert await Tag.filter(name="mine").count() == 0  # the snapshot starts here
            theirs = asyncio.create_task(
                asyncio.to_thread(
                    other.execute,
                    "INSERT INTO tags (id, name, created_at) "
                    "VALUES (999999, 'theirs', '2026-01-01')",
                )
            )
            await asyncio.sleep(0.3)  # their write waits for this transaction's lock
            assert not theirs.done()
            await Tag.create(name="mine")
        await theirs
    finally:
        other.close()
    assert sorted(await Tag.all().values_list("name", flat=True)) == ["mine", "theirs"]
