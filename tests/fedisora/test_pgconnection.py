"""The PostgreSQL pool's connections skip asyncpg's reset query, and nothing leaks for it."""

from __future__ import annotations

import pytest
from tortoise import connections

from fedisora.models import Tag
from fedisora.pgconnection import PooledConnection


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_pooled_connections_are_ours_and_an_open_transaction_is_still_rolled_back(
    db: str,
) -> None:
    client = connections.get("default")
    async with client.acquire_connection() as con:
        raw = getattr(con, "_con", con)  # asyncpg hands out a proxy
        assert isinstance(raw, PooledConnection) and raw.get_reset_query() == ""
        transaction = con.transaction()
        await transaction.start()
        await con.execute("INSERT INTO tags (name, created_at) VALUES ('left-open', now())")
    # Given back without a commit: the next user of the pool must not see the row.
    assert not await Tag.filter(name="left-open").exists()
    # No connection in the pool is left inside that transaction (asyncpg rolled it back).
    pooled = [h._con for h in client._pool._holders if h._con is not None]
    assert raw in pooled and not any(c.is_in_transaction() for c in pooled)
    await Tag.create(name="committed")  # and the pool goes on working
    assert await Tag.filter(name="committed").exists()
