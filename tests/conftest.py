"""Shared fixtures: real SQLite, PostgreSQL and Redis (never mocks).

PostgreSQL and Redis come from FEDISORA_TEST_POSTGRES / FEDISORA_TEST_REDIS, defaulting to the
services every machine here runs on 127.0.0.1. Each test session makes its own PostgreSQL
database (dropped at the end) and uses its own Redis database number, so runs do not collide.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

POSTGRES_ADMIN_URL = os.environ.get(
    "FEDISORA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"
)


def _redis_url() -> str:
    """The session's Redis database: FEDISORA_TEST_REDIS's (default 9), and under pytest-xdist
    the next numbers for the other workers (gw1 uses 10, gw2 11, ...), so parallel sessions
    never share queues or keys."""
    url = os.environ.get("FEDISORA_TEST_REDIS", "redis://127.0.0.1:6379/9")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker.removeprefix("gw") or 0) if worker.startswith("gw") else 0
    if not offset:
        return url
    base, _, number = url.rpartition("/")
    return f"{base}/{(int(number) if number.isdigit() else 0) + offset}"


REDIS_URL = _redis_url()
BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for this session, migrated: a copy of the migrated template
    (tests/support/instance.py), made in a fraction of a second."""
    import asyncio

    import asyncpg
    from instance import migrated_postgres_template

    template = migrated_postgres_template(POSTGRES_ADMIN_URL)
    name = f"fedisora_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = POSTGRES_ADMIN_URL.replace("postgres://", "postgresql://", 1)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        # Dropped by a process of its own, not waited for: DROP DATABASE waits for a
        # checkpoint, tens of seconds at the end of a busy run, which nobody needs to wait for.
        script = (
            "import asyncio, sys, asyncpg\n"
            "async def main():\n"
            "    conn = await asyncpg.connect(sys.argv[1])\n"
            "    await conn.execute(sys.argv[2])\n"
            "    await conn.close()\n"
            "asyncio.run(main())\n"
        )
        subprocess.Popen(
            [sys.executable, "-c", script, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database for this session, migrated (a copy of the migrated template)."""
    from instance import copy_migrated_sqlite

    path = tmp_path_factory.mktemp("sqlite") / "fedisora.sqlite3"
    copy_migrated_sqlite(path)
    return f"sqlite://{path}"


@pytest.fixture(scope="session")
async def migrated(sqlite_url: str, postgres_url: str) -> dict[str, str]:
    """Both session databases, migrated already (their fixtures copy migrated templates;
    tests/fedisora/test_migrations.py migrates for real)."""
    return {"sqlite": sqlite_url, "postgres": postgres_url}


async def _truncate() -> None:
    from tortoise import Tortoise, connections

    conn = connections.get("default")
    tables = [m._meta.db_table for m in Tortoise.apps["fedisora"].values()]
    if conn.capabilities.dialect == "postgres":
        # DELETE and setval, not TRUNCATE ... RESTART IDENTITY: TRUNCATE of ~80 tables costs
        # about 0.3 s (a file swap per table), this about 0.01 s on the nearly empty tables a
        # test leaves; it was minutes of the suite. Foreign keys are not checked meanwhile
        # (the replica role; the tests connect as a superuser), so the order does not matter.
        sequences = await conn.execute_query_dict(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )
        restart = ", ".join(f"setval('\"{s['sequencename']}\"', 1, false)" for s in sequences)
        await conn.execute_script(
            "SET session_replication_role = replica;"
            + "".join(f'DELETE FROM "{t}";' for t in tables)
            + "SET session_replication_role = DEFAULT;"
            + (f"SELECT {restart};" if restart else "")
        )
    else:
        await conn.execute_script(
            "PRAGMA foreign_keys=OFF;"
            + "".join(f'DELETE FROM "{t}";' for t in tables)
            + "PRAGMA foreign_keys=ON;"
        )


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, migrated: dict[str, str]) -> AsyncIterator[str]:
    """An initialised, empty database on each backend in turn; yields its URL."""
    from fedisora import ratelimits, urls
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db

    url = migrated[request.param]
    settings = load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": "/nonexistent"}
    )
    urls.configure(settings)
    ratelimits.configure(settings)  # counts start afresh (ids restart with each test)
    from fedisora.services import domain_blocks

    await init_db(url)
    await _truncate()
    domain_blocks.reset()  # no process-cached policy (or counts) of another test's database
    try:
        yield url
    finally:
        domain_blocks.reset()
        await close_db()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def s3() -> Iterator[Any]:
    """A real S3-compatible server (moto's) on a loopback port for the whole session; each
    test takes a bucket of its own with ``s3.bucket()`` (tests/support/s3server.py)."""
    from s3server import s3_server

    with s3_server() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Slowest modules first (tests/support/module_durations.py says why); scripts/test runs
    pytest-xdist with --no-loadscope-reorder so that this order is the order of work."""
    from module_durations import order

    order(items)
