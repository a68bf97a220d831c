"""fedisora's SQLite engine for tortoise: a transaction takes the write lock as it begins.

tortoise's SQLite client begins a transaction with a plain ``BEGIN`` (deferred): the
transaction reads from a snapshot and asks for the write lock at its first write. When
another process committed a write in between (a ``fedisora`` command beside ``serve``, a
test beside the instance it serves), SQLite cannot give it the lock without losing that
write and fails at once with "database is locked" (``SQLITE_BUSY_SNAPSHOT``: the busy
timeout does not apply). ``BEGIN IMMEDIATE`` takes the write lock first, waiting up to the
busy timeout (5 s) for another process's transaction to end, so a read-then-write
transaction is never refused that way. Within one process tortoise already runs one
transaction at a time on its one connection: nothing waits there that did not before.

Only ``begin`` differs from tortoise's client (hand-written for that reason: tortoise has
no setting for the kind of ``BEGIN``).
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError

__all__ = ["ImmediateSqliteClient", "client_class"]


class _ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()  # (as tortoise's: nothing is left open)
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    """tortoise's SQLite client, its transactions begun with ``BEGIN IMMEDIATE``."""

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransaction(self), self._lock)


client_class = ImmediateSqliteClient
