"""Outages of what the server stands on, told apart from bugs: a full disk, and a database
(or Redis) that cannot be reached or dropped the connection.

Neither is the request's fault nor a bug in the code, and neither should answer 500: a full
disk answers 507 Insufficient Storage (:class:`~fedisora.errors.StorageFull`), an unreachable
database 503 with ``Retry-After`` (:data:`RETRY_AFTER`), both with a message saying so. This
module only classifies exceptions; the app's error mapping (``fedisora.app``), the upload
paths (:func:`disk_space`) and the render worker use it. The database's own connection pool
recovers by itself once the server is back (asyncpg replaces closed connections when they
are next acquired), so nothing here restarts anything.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator

from fedisora.errors import StorageFull

__all__ = [
    "BACKEND_DOWN",
    "DISK_FULL",
    "RETRY_AFTER",
    "backend_down",
    "disk_full",
    "disk_space",
]

DISK_FULL = "the server's storage is full, so nothing was saved; try again later"
BACKEND_DOWN = (
    "the server cannot reach its database right now (it may be restarting); nothing was "
    "changed, try again in a few seconds"
)
#: Seconds a client is told to wait after a 503 (a database restart takes a few).
RETRY_AFTER = 5

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_CONNECT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    }
)
_MAX_CHAIN = 8


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """*exc*, what it was raised from or while handling, and the members of exception
    groups, a few levels deep (an ORM error wrapping a driver's, a rollback failing after
    the connection dropped)."""
    seen: set[int] = set()
    todo: list[tuple[BaseException, int]] = [(exc, 0)]
    while todo:
        current, depth = todo.pop()
        if id(current) in seen or depth > _MAX_CHAIN:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend((inner, depth + 1) for inner in current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append((linked, depth + 1))


def disk_full(exc: BaseException) -> bool:
    """Whether *exc* comes from a full disk (or quota): ``ENOSPC``/``EDQUOT``, or SQLite's
    ``database or disk is full``."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if type(e).__module__ == "sqlite3" and "database or disk is full" in str(e):
            return True
    return False


def _connection_error(e: BaseException) -> bool:
    if isinstance(e, ConnectionError | socket.gaierror):
        return True
    if isinstance(e, OSError):
        if e.errno in _CONNECT_ERRNOS:
            return True
        # asyncio's create_connection, having tried several addresses (localhost: ::1 and
        # 127.0.0.1), raises one OSError without an errno naming them all.
        text = str(e)
        return e.errno is None and "Multiple exceptions" in text and "Connect call failed" in text
    return False


def _driver_error(e: BaseException) -> bool:
    module = type(e).__module__
    if module.startswith("asyncpg"):
        import asyncpg

        if isinstance(
            e,
            asyncpg.PostgresConnectionError  # 08xxx: no connection, or it dropped
            | asyncpg.exceptions.OperatorInterventionError  # 57Pxx: shutting down, starting up
            | asyncpg.TooManyConnectionsError,
        ):
            return True
        # A connection the pool handed out that died in between.
        return isinstance(e, asyncpg.InterfaceError) and "connection is closed" in str(e)
    if module.startswith("tortoise"):
        from tortoise.exceptions import DBConnectionError

        return isinstance(e, DBConnectionError)
    if module.startswith("redis"):
        import redis.exceptions

        return isinstance(e, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError)
    return False


def backend_down(exc: BaseException) -> bool:
    """Whether *exc* says the database (or Redis) cannot be reached or dropped the
    connection, as during a restart, rather than a bug or a bad query."""
    return any(_connection_error(e) or _driver_error(e) for e in _chain(exc))


@contextlib.contextmanager
def disk_space() -> Iterator[None]:
    """Turn a full disk inside the block into :class:`~fedisora.errors.StorageFull` (507),
    for callers that answer a user; the writer cleans up its own partial files."""
    try:
        yield
    except OSError as exc:
        if disk_full(exc):
            raise StorageFull(DISK_FULL) from exc
        raise
