"""A database restart answers 503 with ``Retry-After`` (a page for browsers), not 500, and the
app recovers when the database is back, without a restart (a throwaway PostgreSQL cluster of
the test's own, stopped and started); and what counts as an outage (fedisora.outages)."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.exceptions
from factories import local_account, rendered_video
from throwaway import PostgresCluster, postgres_cluster
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from apihelpers import Login, login

from fedisora import outages, urls
from fedisora.app import create_app
from fedisora.config import load_settings
from fedisora.db import close_db, init_db, migrate
from fedisora.models import Comment
from fedisora.services import posts


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        OSError(
            "Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
            "[Errno 111] Connect call failed ('127.0.0.1', 5432)"
        ),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        DBConnectionError("Can't establish connection to database x"),
        _raised_from(OperationalError("wrapped"), asyncpg.ConnectionFailureError("lost")),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_these_are_the_database_being_down(exc: BaseException) -> None:
    assert outages.backend_down(exc) and not outages.disk_full(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        _raised_from(OperationalError("x"), sqlite3.OperationalError("database or disk is full")),
        ExceptionGroup("in a task group", [OSError(errno.ENOSPC, "No space left on device")]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_these_are_a_full_disk(exc: BaseException) -> None:
    assert outages.disk_full(exc) and not outages.backend_down(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        OSError(errno.ENOENT, "No such file or directory"),
        FileNotFoundError(errno.ENOENT, "gone"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        IntegrityError("duplicate key"),
        OperationalError("syntax error at or near"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_these_are_not_outages(exc: BaseException) -> None:
    assert not outages.backend_down(exc) and not outages.disk_full(exc)


# --- a real restart ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as pg:
        yield pg


_MIGRATED = "outage_migrated"
"""The database of the module's cluster that :func:`app_on` migrates once and each test's
database copies (``CREATE DATABASE ... TEMPLATE``): migrating costs ~10 s of CPU a time."""
_migrated_in: set[Path] = set()  # the clusters (their roots) that hold it


@pytest.fixture
async def app_on(cluster: PostgresCluster, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    if cluster.root not in _migrated_in:
        await migrate(cluster.create_database(_MIGRATED))  # closes its connections
        _migrated_in.add(cluster.root)
    url = cluster.create_database(
        f"outage_{tmp_path.name[-12:].replace('-', '_')}".lower(), template=_MIGRATED
    )
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": url,
        }
    )
    urls.configure(settings)
    await init_db(url)
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as c:
            yield c
    finally:
        if not cluster.running:
            cluster.start()
        await close_db()


HTML = {"Accept": "text/html"}


async def _requests(http: httpx.AsyncClient, me: Login, clip_id: int) -> list[httpx.Response]:
    """An anonymous API read, a signed-in write, and pages for a browser."""
    return [
        await http.get("/api/v1/timelines/public"),
        await http.post(
            "/api/v1/statuses",
            data={"status": "hello", "in_reply_to_id": str(clip_id)},
            headers=me.headers,
        ),
        await http.get("/", headers=HTML),
        await http.get("/@ben", headers=HTML),
    ]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_database_restart_answers_503_and_the_app_recovers(
    cluster: PostgresCluster, app_on: httpx.AsyncClient, mode: str
) -> None:
    http = app_on
    me = await login(http, await local_account("ann"))
    ben = await local_account("ben")
    clip = await posts.post_clip(ben, await rendered_video(ben), caption="ben's clip")
    assert [r.status_code for r in await _requests(http, me, clip.pk)] == [200] * 4

    # Stopped: the pooled connections are cut (the first request meets a dropped
    # connection), then every new connection is refused.
    await asyncio.to_thread(cluster.stop, mode)
    for _ in range(2):
        api, write, home, page = await _requests(http, me, clip.pk)
        for r in (api, write):
            assert r.status_code == 503, r.text
            assert r.json() == {"error": outages.BACKEND_DOWN}
            assert r.headers["Retry-After"] == str(outages.RETRY_AFTER)
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        for r in (home, page):
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["Retry-After"] == str(outages.RETRY_AFTER)
            assert "Content-Security-Policy" in r.headers
            assert "cannot reach its database" in r.text

    # Started again: the same app answers, with the pool it had.
    await asyncio.to_thread(cluster.start)
    assert [r.status_code for r in await _requests(http, me, clip.pk)] == [200] * 4
    # The write refused during the outage was not stored; the two made when it was up were.
    assert await Comment.filter(account_id=me.account.pk).count() == 2


async def test_a_websocket_outage_is_left_to_the_server() -> None:
    """A WebSocket cannot be answered with a page: the error goes on up (the server closes
    the socket with 1011), as it did before outages were mapped."""
    from starlette.websockets import WebSocket

    from fedisora.app import _outage_error

    scope = {"type": "websocket", "path": "/api/v1/streaming", "headers": [], "query_string": b""}

    async def nothing() -> dict[str, str]:
        return {"type": "websocket.disconnect"}

    async def ignore(message: object) -> None:
        pass

    socket = WebSocket(scope, nothing, ignore)
    down = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
    with pytest.raises(ConnectionRefusedError):
        await _outage_error(socket, down)  # type: ignore[arg-type]
