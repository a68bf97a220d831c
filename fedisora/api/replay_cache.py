"""Pages for visitors, answered again while the reads they were made from return the same rows.

The public and tag timelines and an account's statuses are what visitors (no token) read
most, and the same page for every visitor. Made once, such a page is kept (bytes, status,
headers) with every statement the request read the database with and the rows each returned.
The next visitor's request for the same URL runs those statements again, and when each
returns exactly the rows it did, gets the kept page: the rows are all the page was made
from, so the page it would make is the same one. Any other answer, and the page is made
anew. Nothing is invalidated: a change made by any process shows in the rows at once.

What is not in those rows is in the page's context, compared too: the domain policy this
process holds (:func:`fedisora.services.domain_blocks.current`, which shapes the
statements), the instance's settings and the process's configuration. A request that
writes (an ``INSERT``, ``UPDATE``, a statement that is not a ``SELECT``), answers other than
200, reads nothing, or renders an entity anew (the rendering cache missed: the next page,
made warm, reads less) is not kept. A page is kept
:data:`MAX_AGE` seconds at most: what depends on time alone (a remote remix's stamp, checked
again when it is shown a while after the last check) waits that long at most; Mastodon
lets HTTP caches keep these same pages for visitors too (``cache_if_unauthenticated!``).

Checking a statement by reading its rows again costs about as much as the first read (a
page's rows with their authors are ~110 kB off the wire). So the first check of a kept
page reads them all again and, in the same snapshot, their twins
(:func:`fedisora.fastload.versions`: each row's key and row versions, a few bytes), all
in one statement; later checks run only that statement, one round trip whatever the
number of reads. Twins returning the rows they returned beside rows equal to the page's
mean the statements still return the page's rows. A statement without a twin (not run by
:mod:`fedisora.fastload`) is read again in full at each check.

PostgreSQL only (asyncpg's statements are recorded at its client: see :func:`install`); on
SQLite every page is made. Hand-rolled: tortoise has no query log with results, and an HTTP
cache in front cannot know when the rows changed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
from starlette.responses import Response
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import BaseDBAsyncClient

from fedisora import cachestats, fastload

if TYPE_CHECKING:
    from starlette.requests import Request

    from fedisora.api.http import Ctx
    from fedisora.config import Settings

__all__ = [
    "BUDGET",
    "MAX_AGE",
    "SIZE",
    "answer",
    "clear",
    "install",
    "visitor_html",
    "visitor_page",
]

MAX_AGE = 30.0
"""Seconds a page is answered again at most (see the module's docstring)."""
SIZE = 256
"""Pages kept per process at most (least recently used first out)."""
BUDGET = 32 * 1024 * 1024
"""Bytes of pages kept per process at most, their reads counted as much again (a page of
20 statuses is about 70 kB): any URL is a key, so a visitor asking for many pages only
pushes the older ones out."""


@dataclass
class _Reads:
    """What one request read: (statement, values, rows), in order."""

    reads: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = field(default_factory=list)
    wrote: bool = False


@dataclass(frozen=True)
class _Check:
    """How a kept page is checked, from its first check on: its reads' twins in one
    statement (or None), its values and the rows it returned beside the page's rows; and
    the reads without a twin, read again in full."""

    statement: str | None
    values: tuple[Any, ...]
    rows: tuple[Any, ...]
    in_full: tuple[int, ...]


@dataclass
class _Page:
    made: float
    context: Hashable
    reads: tuple[tuple[str, tuple[Any, ...], tuple[Any, ...]], ...]
    status: int
    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...]
    check: _Check | None = None
    """None until the page's first check (see :func:`_same_rows`)."""
    running: asyncio.Task[bool] | None = None
    """The page's check running now (see :func:`_checked`)."""
    queued: asyncio.Task[bool] | None = None
    """The check that runs after it, for every request that came meanwhile."""


_now = time.monotonic  # (the clock pages age by; tests move it)
_recording: ContextVar[_Reads | None] = ContextVar("fedisora_replay_recording", default=None)
_pages: OrderedDict[Hashable, _Page] = OrderedDict()
_kept = [0]  # bytes (see BUDGET)
_counts = [0, 0]  # hits, misses
cachestats.watch("visitor_pages", lambda: (_counts[0], _counts[1]))


def _rows(result: Any) -> tuple[Any, ...]:
    """The rows of a result as kept: asyncpg's records (immutable, compared by value with
    the records of a later run), a dict result's rows as tuples of their values."""
    return tuple(tuple(row.values()) if isinstance(row, dict) else row for row in result)


def _is_read(statement: str) -> bool:
    head = statement.lstrip()[:6].upper()
    return head == "SELECT" and "FOR UPDATE" not in statement.upper()


def install() -> None:
    """Record the statements asyncpg's client runs while a page is being made (once per
    process; nothing is recorded outside :func:`answer`)."""
    if getattr(AsyncpgDBClient, "_fedisora_replay", False):
        return
    run_query = AsyncpgDBClient.execute_query
    run_dict = AsyncpgDBClient.execute_query_dict

    def note(query: str, values: list[Any] | None, rows: Any) -> None:
        reads = _recording.get()
        if reads is None:
            return
        if _is_read(query):
            reads.reads.append((query, tuple(values or ()), _rows(rows)))
        else:
            reads.wrote = True

    async def execute_query(
        self: AsyncpgDBClient, query: str, values: list[Any] | None = None
    ) -> Any:
        result = await run_query(self, query, values)
        note(query, values, result[1])
        return result

    async def execute_query_dict(
        self: AsyncpgDBClient, query: str, values: list[Any] | None = None
    ) -> Any:
        result = await run_dict(self, query, values)
        note(query, values, result)
        return result

    def spoiling(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(self: AsyncpgDBClient, *args: Any, **kwargs: Any) -> Any:
            reads = _recording.get()
            if reads is not None:
                reads.wrote = True
            return await original(self, *args, **kwargs)

        return run

    AsyncpgDBClient.execute_query = execute_query  # type: ignore[method-assign]
    AsyncpgDBClient.execute_query_dict = execute_query_dict  # type: ignore[method-assign]
    for name in ("execute_insert", "execute_many", "execute_script"):
        setattr(AsyncpgDBClient, name, spoiling(getattr(AsyncpgDBClient, name)))
    AsyncpgDBClient._fedisora_replay = True  # type: ignore[attr-defined]


def _rendering_misses() -> int:
    from fedisora.api import entity_cache

    return sum(cache.misses for cache in entity_cache.caches())


def clear() -> None:
    _pages.clear()
    _kept[0] = 0


def _drop_oldest() -> None:
    _, page = _pages.popitem(last=False)
    _kept[0] -= 2 * len(page.body)


def _checked(db: BaseDBAsyncClient, page: _Page) -> asyncio.Task[bool]:
    """A check of *page* (:func:`_same_rows`) that starts after this call: the one that
    starts now if none runs, else the one queued after the running one, shared by every
    request that comes while that one runs.

    Many visitors asking for one page at once then cost one check per round trip, not one
    each, and none is answered by a check that started before it came (which could have
    missed a change made just before): the answer is as fresh as a check of its own."""
    running = page.running
    if running is None or running.done():
        page.running = task = asyncio.ensure_future(_same_rows(db, page))
        task.add_done_callback(_retrieved)
        return task
    if page.queued is None:

        async def after(before: asyncio.Task[bool]) -> bool:
            await asyncio.wait([before])  # (its outcome is not this check's)
            page.running, page.queued = asyncio.current_task(), None
            return await _same_rows(db, page)

        page.queued = asyncio.ensure_future(after(running))
        page.queued.add_done_callback(_retrieved)
    return page.queued


def _retrieved(task: asyncio.Task[bool]) -> None:
    """(A check's error reaches the requests waiting for it; when none waits any more, it
    is not reported again as never retrieved.)"""
    if not task.cancelled():
        task.exception()


def _equal(fresh: Any, rows: tuple[Any, ...]) -> bool:
    return len(fresh) == len(rows) and all(a == b for a, b in zip(fresh, rows, strict=True))


async def _same_rows(db: BaseDBAsyncClient, page: _Page) -> bool:
    """Whether each of the page's statements returns the rows it did (on one pooled
    connection, straight through asyncpg: nothing here is the request's own reading)."""
    async with db.acquire_connection() as connection:
        check = page.check
        if check is None:
            return await _first_check(db, connection, page)
        if not await _reread(db, connection, [page.reads[n] for n in check.in_full]):
            return False
        if check.statement is None:
            return True
        db.log.debug("%s: %s", check.statement, check.values)
        return _equal(await connection.fetch(check.statement, *check.values), check.rows)


async def _first_check(db: BaseDBAsyncClient, connection: Any, page: _Page) -> bool:
    """The page's rows read again, and what later checks compare (:class:`_Check`): its
    reads' twins, run in the same snapshot (they then say whether the rows changed)."""
    twins: list[tuple[str, tuple[Any, ...]]] = []
    in_full: list[int] = []
    for n, (statement, values, _) in enumerate(page.reads):
        twin = fastload.versions(statement)
        if twin is not None and _placeable(twin, len(values)):
            twins.append((twin, values))
        else:
            in_full.append(n)
    combined, values = _combined(twins) if twins else (None, ())
    unchanged = False
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            if not await _reread(db, connection, page.reads):
                return False
            unchanged = True
            found: tuple[Any, ...] = ()
            if combined is not None:
                db.log.debug("%s: %s", combined, values)
                found = tuple(await connection.fetch(combined, *values))
    except asyncpg.PostgresError:
        if not unchanged:
            raise
        # (a twin PostgreSQL refused: every read is checked in full)
        page.check = _Check(None, (), (), tuple(range(len(page.reads))))
        return True
    page.check = _Check(combined, values, found, tuple(in_full))
    return True


async def _reread(
    db: BaseDBAsyncClient,
    connection: Any,
    reads: Iterable[tuple[str, tuple[Any, ...], tuple[Any, ...]]],
) -> bool:
    """Whether each of *reads* (statement, values, rows) returns its rows again."""
    for statement, values, rows in reads:
        db.log.debug("%s: %s", statement, values)  # (counted as tortoise's are)
        if not _equal(await connection.fetch(statement, *values), rows):
            return False
    return True


_PLACEHOLDER = re.compile(r"\$(\d+)")


def _placeable(twin: str, count: int) -> bool:
    """Whether *twin*'s parameters can be renumbered: no string literal (where a ``$n``
    would be text) and placeholders ``$1``..``$count`` only."""
    return "'" not in twin and all(1 <= int(m) <= count for m in _PLACEHOLDER.findall(twin))


def _combined(twins: list[tuple[str, tuple[Any, ...]]]) -> tuple[str, tuple[Any, ...]]:
    """One statement returning one value, a digest of the rows of each twin in order
    (each row as text after its twin's number), each twin's placeholders moved past those
    of the twins before it; and its values. (A digest: the answer is one short row, whatever
    the page's size; MD5, as nobody chooses a row's key and versions.)"""
    parts: list[str] = []
    values: list[Any] = []
    for n, (twin, twin_values) in enumerate(twins):
        offset = len(values)

        def moved(found: re.Match[str], offset: int = offset) -> str:
            return f"${int(found.group(1)) + offset}"

        renumbered = _PLACEHOLDER.sub(moved, twin)
        parts.append(f'SELECT {n} "n", "twin"::text "row" FROM ({renumbered}) "twin"')
        values.extend(twin_values)
    rows = " UNION ALL ".join(parts)
    digest = "md5(string_agg(\"n\" || ' ' || \"row\", E'\\n'))"
    return f'SELECT {digest} FROM ({rows}) "rows"', tuple(values)


async def answer(
    db: BaseDBAsyncClient,
    key: Hashable,
    context: Hashable,
    make: Callable[[], Awaitable[Response]],
) -> Response:
    """The page *make* makes for *key* (a visitor's request: its URL), or the one it made
    before in the same *context* while every read it made returns the same rows."""
    if not isinstance(db, AsyncpgDBClient) or _recording.get() is not None:
        return await make()
    page = _pages.get(key)
    if page is not None and page.context == context and _now() - page.made < MAX_AGE:
        if await asyncio.shield(_checked(db, page)):
            _pages.move_to_end(key)
            _counts[0] += 1
            response = Response(page.body, page.status)
            response.raw_headers = list(page.raw_headers)
            return response
    _counts[1] += 1
    reads = _Reads()
    cold = _rendering_misses()
    token = _recording.set(reads)
    try:
        response = await make()
    finally:
        _recording.reset(token)
    body = getattr(response, "body", None)
    # A page made while the rendering cache missed is not kept: its reads include what its
    # entities were rendered from, which the next page made (warm) does not read again, and
    # each answer would check them all.
    warm = _rendering_misses() == cold
    if (
        warm
        and response.status_code == 200
        and reads.reads
        and not reads.wrote
        and isinstance(body, bytes)
    ):
        if key in _pages:
            _kept[0] -= 2 * len(_pages[key].body)
        _pages[key] = _Page(
            _now(),
            context,
            tuple(reads.reads),
            response.status_code,
            body,
            tuple(response.raw_headers),
        )
        _pages.move_to_end(key)
        _kept[0] += 2 * len(body)
        while _pages and (len(_pages) > SIZE or _kept[0] > BUDGET):
            _drop_oldest()
    return response


async def _context(settings: Settings) -> Hashable:
    """What a visitor's page depends on besides its reads: the domain policy this process
    holds (it shapes the statements), the instance's settings (names on the pages) and the
    process's configuration (its base URL, limits, media URLs...)."""
    from fedisora.services import domain_blocks
    from fedisora.services.instance_settings import cached

    return (await domain_blocks.current(), cached(settings), settings)


async def visitor_page(ctx: Ctx, make: Callable[[], Awaitable[Response]]) -> Response:
    """*make*'s API page for a request without a token, through :func:`answer` (its URL
    the key); a signed-in caller's is always made."""
    if ctx.token is not None or ctx.account is not None:
        return await make()
    from tortoise import connections

    request = ctx.request
    key = ("api", request.url.path, request.url.query)
    context = await _context(ctx.settings)
    return await answer(connections.get("default"), key, context, make)


async def visitor_html(request: Request, make: Callable[[], Awaitable[Response]]) -> Response:
    """*make*'s web page for a visitor (no signed-in session, no token), through
    :func:`answer` (its URL the key); a signed-in person's is always made."""
    if request.session.get("username") or request.headers.get("authorization"):
        return await make()
    from tortoise import connections

    key = ("web", request.url.path, request.url.query)
    context = await _context(request.app.state.settings)
    return await answer(connections.get("default"), key, context, make)
