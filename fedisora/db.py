"""Database start-up, shutdown and migrations (tortoise-orm's built-in migration engine)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as _migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from fedisora import fastload
from fedisora.config import Settings, tortoise_config

__all__ = [
    "TORTOISE_ORM",
    "DatabaseError",
    "close_db",
    "database",
    "init_db",
    "migrate",
    "pending_model_changes",
]

# For tortoise's own CLI (``tortoise -c fedisora.db.TORTOISE_ORM makemigrations``).
TORTOISE_ORM = tortoise_config("sqlite://:memory:")


class DatabaseError(RuntimeError):
    """The database could not be reached or prepared; the message says why."""


def _prepare_sqlite(database_url: str) -> None:
    path = database_url[len("sqlite://") :]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


async def init_db(settings: Settings | str) -> None:
    url = settings if isinstance(settings, str) else settings.database_url
    if url.startswith("sqlite://"):
        _prepare_sqlite(url)
    # tortoise caches compiled INSERT statements per connection *name*; a process that switches
    # backends under the same name (the test suite does) must not reuse another dialect's SQL.
    EXECUTOR_CACHE.clear()
    fastload.forget()  # (its loaders follow tortoise's fields of the database's dialect)
    # A global fallback context: uvicorn runs the lifespan and each request in different tasks,
    # and tortoise's per-task context would not reach the requests otherwise.
    await close_db()
    try:
        await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)
    except (OSError, ConnectionError) as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    except Exception as exc:  # asyncpg raises its own hierarchy for auth/db-missing errors
        if type(exc).__module__.startswith("asyncpg"):
            raise DatabaseError(f"cannot connect to the database: {exc}") from exc
        raise


async def close_db() -> None:
    await Tortoise.close_connections()
    from tortoise import context

    if context._global_context is not None:  # set by a context we no longer see from this task
        await context._global_context.close_connections()


async def migrate(settings: Settings | str, *, target: str | None = None) -> None:
    """Apply all migrations in ``migrations/`` (idempotent), or those up to *target*
    (``fedisora.<migration name>``, for tests of a migration's data changes)."""
    url = settings if isinstance(settings, str) else settings.database_url
    if url.startswith("sqlite://"):
        _prepare_sqlite(url)

    async def run() -> None:
        # An isolated tortoise context in a task of its own, closed afterwards: the caller's
        # connections are left alone, and no connection thread outlives the migration (an open
        # aiosqlite thread would keep the interpreter from exiting).
        ctx = TortoiseContext()
        with ctx:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    await _migrate(config=tortoise_config(url), target=target)
            finally:
                await ctx.close_connections()

    try:
        await asyncio.create_task(run())
    except (OSError, ConnectionError) as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("asyncpg"):
            raise DatabaseError(f"cannot migrate the database: {exc}") from exc
        raise


async def pending_model_changes() -> list[Any]:
    """Migration writers for model changes not yet captured in ``migrations/`` (want: none)."""
    config = tortoise_config("sqlite://:memory:")
    await Tortoise.init(config=config)
    try:
        autodetector = MigrationAutodetector(Tortoise.apps, config["apps"])
        return list(await autodetector.changes())
    finally:
        await close_db()


@contextlib.asynccontextmanager
async def database(settings: Settings | str, *, run_migrations: bool = True) -> AsyncIterator[None]:
    if run_migrations:
        await migrate(settings)
    await init_db(settings)
    try:
        yield
    finally:
        await close_db()
