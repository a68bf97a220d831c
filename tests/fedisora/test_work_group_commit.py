"""Group commit of new work rows: shared statements, duplicates skipped, failures reported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fedisora.models import InboxItem, utcnow
from fedisora.work.group_commit import GroupInsert


class CountingInsert(GroupInsert[InboxItem]):
    """Counts the statements written (the real ``_write`` runs)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(InboxItem, "received", unique="activity_id", **kwargs)
        self.batches: list[int] = []

    async def _write(self, batch: list[Any]) -> None:
        self.batches.append(len(batch))
        await super()._write(batch)


def _values(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "activity_id": f"https://peer.test/a/{n}",
        "actor_uri": "https://peer.test/u",
        "payload": {"type": "Like", "n": n, "text": "é \u2028 ✓"},
        **extra,
    }


async def test_concurrent_inserts_share_statements_and_are_all_stored(db: str) -> None:
    woken: list[int] = []

    async def wake() -> None:
        woken.append(await InboxItem.all().count())

    group = CountingInsert(wake=wake)
    before = utcnow()
    await asyncio.gather(*(group.insert(**_values(n)) for n in range(100)))
    rows = await InboxItem.all().order_by("id")
    assert len(rows) == 100
    assert {r.payload["n"] for r in rows} == set(range(100))
    assert all(r.payload["text"] == "é \u2028 ✓" for r in rows)  # JSON survives the raw insert
    for row in rows:
        assert row.state == "received" and row.attempts == 0 and row.lock_token is None
        assert row.next_attempt_at is not None and before <= row.next_attempt_at <= utcnow()
        assert row.received_at is not None  # the model default was applied
    # The first caller is written alone; the 99 that queued meanwhile share a few statements
    # whose sizes are powers of two.
    assert sum(group.batches) == 100
    assert len(group.batches) < 10
    assert all(size & (size - 1) == 0 for size in group.batches)
    for _ in range(50):  # the wake-up runs after the commit, in the background
        if woken and woken[-1] == 100:
            break
        await asyncio.sleep(0.01)
    assert woken and woken[-1] == 100


async def test_duplicates_in_one_batch_and_across_batches_are_skipped(db: str) -> None:
    group = CountingInsert()
    await group.insert(**_values(1))
    first = await InboxItem.get(activity_id=_values(1)["activity_id"])
    # The same id again, twice in one burst, beside a new one: no error for anyone.
    await asyncio.gather(
        group.insert(**_values(1, payload={"again": 1})),
        group.insert(**_values(1, payload={"again": 2})),
        group.insert(**_values(2)),
    )
    assert await InboxItem.all().count() == 2
    kept = await InboxItem.get(activity_id=_values(1)["activity_id"])
    assert kept.pk == first.pk and kept.payload == first.payload  # the stored one is untouched


async def test_a_bad_row_fails_only_its_caller(db: str) -> None:
    group = CountingInsert()
    results = await asyncio.gather(
        group.insert(**_values(0)),
        group.insert(**_values(1, actor_uri=None)),  # refused when converted, not in SQL
        group.insert(**_values(2, actor_uri="x" * 3000)),  # over max_length
        group.insert(**_values(3, nonsense=1)),
        group.insert(**_values(4)),
        return_exceptions=True,
    )
    assert results[0] is None and results[4] is None
    assert all(isinstance(r, Exception) for r in results[1:4])
    assert "no column" in str(results[3])
    stored = await InboxItem.all().order_by("id").values_list("activity_id", flat=True)
    assert sorted(stored) == [_values(0)["activity_id"], _values(4)["activity_id"]]


async def _burst(group: CountingInsert, values: list[dict[str, Any]]) -> list[Any]:
    """Insert *values* concurrently as one batch: a first row is being written while they
    queue, so they make the next statement together (``group.batches`` shows it)."""
    first = asyncio.create_task(group.insert(**_values(1000)))
    await asyncio.sleep(0)  # the first caller queues its row and starts the writer
    results = await asyncio.gather(*(group.insert(**v) for v in values), return_exceptions=True)
    await first
    assert group.batches[:2] == [1, len(values)], group.batches  # they did share a statement
    return results


async def test_a_row_the_database_refuses_fails_only_its_caller(db: str) -> None:
    """A row that passes conversion but that the database itself refuses (a hostile peer's
    payload) fails its caller only, not the others of its batch."""
    if db.startswith("postgres"):
        # jsonb cannot store the NUL character: UntranslatableCharacterError.
        bad = _values(2, payload={"type": "Like", "a": "\u0000"})
    else:
        # SQLite stores NUL; it refuses NULL in the NOT NULL received_at (None passes
        # conversion because the field has a default).
        bad = _values(2, received_at=None)
    group = CountingInsert()
    results = await _burst(group, [_values(0), _values(1), bad, _values(3)])
    assert isinstance(results[2], Exception), results
    assert results[:2] == [None, None] and results[3] is None, results
    stored = await InboxItem.all().values_list("activity_id", flat=True)
    expected = [_values(n)["activity_id"] for n in (0, 1, 3, 1000)]
    assert sorted(stored) == sorted(expected)
    # The refused batch of four was written again row by row.
    assert group.batches == [1, 4, 1, 1, 1, 1]
    await group.insert(**_values(4))  # the group goes on batching
    assert group.batches[-1] == 1 and await InboxItem.all().count() == 5


async def test_refused_rows_and_duplicates_in_one_batch(db: str) -> None:
    """Several refused rows, a row already stored and the same new row twice, in one batch:
    the refused callers fail, every other caller returns, each new row is stored once."""
    woken: list[int] = []

    async def wake() -> None:
        woken.append(await InboxItem.all().count())

    group = CountingInsert(wake=wake)
    await group.insert(**_values(0))
    group.batches.clear()
    refused = {"received_at": None}  # NOT NULL in the database on both backends
    values = [
        _values(1, **refused),
        _values(0, payload={"again": 1}),  # already stored: skipped
        _values(2),
        _values(3, **refused),
        _values(2, payload={"again": 2}),  # the same new row twice: stored once
        _values(4),
        _values(5),
        _values(6, **refused),
    ]
    results = await _burst(group, values)
    failed = [n for n, r in enumerate(results) if r is not None]
    assert failed == [0, 3, 7], results
    assert all(isinstance(results[n], Exception) for n in failed)
    rows = await InboxItem.all().order_by("id")
    assert sorted(r.activity_id for r in rows) == sorted(
        _values(n)["activity_id"] for n in (0, 2, 4, 5, 1000)
    )
    by_id = {r.activity_id: r.payload for r in rows}
    assert by_id[_values(0)["activity_id"]] == _values(0)["payload"]  # the first one kept
    assert by_id[_values(2)["activity_id"]] == _values(2)["payload"]
    assert group.batches == [1, 8] + [1] * 8
    for _ in range(50):  # the runners are woken after the rows written one by one, too
        if woken and woken[-1] == 5:
            break
        await asyncio.sleep(0.01)
    assert woken and woken[-1] == 5


async def test_a_failed_statement_fails_its_batch_and_the_group_goes_on(db: str) -> None:
    group = CountingInsert()
    await group.insert(**_values(0))
    # The database goes away for one statement: both rows of that batch fail.
    from fedisora.db import close_db, init_db

    await close_db()
    try:
        results = await asyncio.gather(
            group.insert(**_values(1)), group.insert(**_values(2)), return_exceptions=True
        )
    finally:
        await init_db(db)
    # Each row fails, with an exception of its own: a failed batch is written again row by
    # row (to tell rows the database refuses from the others), and each of those fails too.
    assert all(isinstance(r, Exception) for r in results), results
    assert group.batches[1:] == [2, 1, 1]
    await group.insert(**_values(3))  # the group goes on working
    stored = await InboxItem.all().values_list("activity_id", flat=True)
    assert sorted(stored) == sorted([_values(0)["activity_id"], _values(3)["activity_id"]])


async def test_a_caller_that_goes_away_does_not_cancel_the_write(db: str) -> None:
    group = CountingInsert()
    blocker = asyncio.create_task(group.insert(**_values(0)))
    leaving = asyncio.create_task(group.insert(**_values(1)))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await blocker
    for _ in range(100):
        if await InboxItem.filter(activity_id=_values(1)["activity_id"]).exists():
            break
        await asyncio.sleep(0.01)
    assert await InboxItem.filter(activity_id=_values(1)["activity_id"]).exists()


def test_a_finished_loop_is_not_kept_alive_by_its_group() -> None:
    """Groups are kept per event loop, weakly: a loop that is done can be collected."""
    import gc
    import weakref

    from fedisora.federation import rows

    async def use() -> weakref.ref[asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        group = rows._groups.setdefault(loop, {})
        group[InboxItem] = GroupInsert(InboxItem, "received", unique="activity_id")
        return weakref.ref(loop)

    loop = asyncio.new_event_loop()
    ref = loop.run_until_complete(use())
    loop.close()
    del loop
    gc.collect()
    assert ref() is None
