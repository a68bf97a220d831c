"""The connection class of fedisora's PostgreSQL pool."""

from __future__ import annotations

import asyncpg

__all__ = ["PooledConnection"]


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that is not reset by a query when it goes back to the pool.

    tortoise takes a pooled connection for each query and returns it straight after, and
    asyncpg resets a returned connection with a query (unlock advisory locks, close cursors,
    unlisten, reset session settings): a second round trip for every query. fedisora keeps
    no such session state (no advisory locks, LISTEN, cursors or SET), so there is nothing
    to reset. An open transaction is still rolled back on release: asyncpg does that
    whatever this query is.
    """

    def get_reset_query(self) -> str:
        return ""
