"""Durable work: declared transitions, claims, retries, fencing, crash recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from work_machines import GRAPH, machine

from fedisora.models import InboxItem, Tag, WorkerHeartbeat
from fedisora.work import (
    AdvanceResult,
    Engine,
    IllegalTransition,
    Machine,
    Retry,
    State,
    StateGraph,
    WorkContext,
)
from fedisora.work.graph import exponential
from fedisora.work.runner import InProcessRunner

SUPPORT = Path(__file__).resolve().parent.parent / "support"


async def _item(engine: Engine, name: str, **payload: object) -> InboxItem:
    item: InboxItem = await engine.create(
        InboxItem, activity_id=name, actor_uri="https://x/a", payload=payload
    )
    return item


def test_graph_rejects_undeclared_states_and_transitions() -> None:
    with pytest.raises(ValueError, match="unknown 'nowhere'"):
        StateGraph("g", [State("a", to=("nowhere",)), State("f", terminal=True)], "a", "f")
    with pytest.raises(ValueError, match="terminal state"):
        StateGraph("g", [State("a"), State("f", terminal=True, to=("a",))], "a", "f")
    GRAPH.check_transition("received", "processing")
    GRAPH.check_transition("processing", "failed")  # any live state may fail
    with pytest.raises(IllegalTransition):
        GRAPH.check_transition("received", "done")
    with pytest.raises(IllegalTransition):
        GRAPH.check_transition("done", "received")
    assert GRAPH.active_states == ["received", "processing"]


def test_exponential_schedule_covers_the_total() -> None:
    delays = exponential(timedelta(minutes=1), 2, timedelta(hours=6), timedelta(days=2))
    assert delays[0] == timedelta(minutes=1) and delays[1] == timedelta(minutes=2)
    assert max(delays) == timedelta(hours=6)
    assert sum(delays, timedelta(0)) >= timedelta(days=2)


async def test_row_walks_its_graph_and_effect_happens_once(db: str) -> None:
    engine = Engine([machine()])
    row = await _item(engine, "a")
    assert row.state == "received" and row.next_attempt_at is not None
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.SKIPPED
    row = await InboxItem.get(pk=row.pk)
    assert row.state == "done" and row.locked_until is None and row.next_attempt_at is None
    assert await Tag.filter(name="effect-a").count() == 1


async def test_failures_back_off_then_fail_with_the_error_stored(db: str) -> None:
    engine = Engine([machine()])
    row = await _item(engine, "b", fail_times=99)
    await engine.advance("inbox_items", row.pk)
    before = datetime.now(UTC)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.RETRY
    row = await InboxItem.get(pk=row.pk)
    assert row.attempts == 1 and "planned failure 1" in row.last_error
    # The backoff (300 ms for the first failure) is stored in the row.
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + timedelta(milliseconds=300)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.SKIPPED  # not due yet
    await asyncio.sleep(0.35)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.RETRY
    await asyncio.sleep(0.45)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.FAILED
    row = await InboxItem.get(pk=row.pk)
    assert row.state == "failed" and row.attempts == 3 and "planned failure 3" in row.last_error
    assert await Tag.all().count() == 0


async def test_recovers_after_transient_failures(db: str) -> None:
    engine = Engine([machine()])
    row = await _item(engine, "c", fail_times=2)
    runner = InProcessRunner(engine, poll_interval=0.01)
    await runner.drain(limit_seconds=10)
    row = await InboxItem.get(pk=row.pk)
    assert row.state == "done" and row.attempts == 0 and row.last_error == ""
    assert await Tag.filter(name="effect-c").count() == 1


# A machine whose one handler always asks to be retried, as the row's payload says:
# {"counts": bool, "after": seconds or absent}. With max_attempts=3, a row that failed twice
# fails on its next counted retry; the schedule's own delay is five minutes.
WAITING = StateGraph(
    "waiting_items",
    [
        State("waiting", to=("done",), retry=(timedelta(minutes=5),), max_attempts=3),
        State("done", terminal=True),
        State("failed", terminal=True),
    ],
    initial="waiting",
    failed="failed",
)


async def _ask_again(row: InboxItem, ctx: WorkContext) -> Retry:
    after = row.payload.get("after")
    return Retry(
        f"asked to wait ({row.payload['counts']})",
        after=None if after is None else timedelta(seconds=after),
        counts=row.payload["counts"],
    )


async def test_a_retry_that_does_not_count_only_reschedules(db: str) -> None:
    clock = [datetime.now(UTC).replace(microsecond=0)]
    engine = Engine([Machine(InboxItem, WAITING, {"waiting": _ask_again})], clock=lambda: clock[0])
    row = await _item(engine, "w", counts=False, after=90)
    await InboxItem.filter(pk=row.pk).update(attempts=2)  # a counted retry would fail it now

    for _ in range(3):  # however often it waits, it gets no closer to failing
        asked_at = clock[0]
        assert await engine.advance("inbox_items", row.pk) == AdvanceResult.RETRY
        row = await InboxItem.get(pk=row.pk)
        assert (row.state, row.attempts) == ("waiting", 2)
        assert row.next_attempt_at == asked_at + timedelta(seconds=90)
        assert row.last_error == "asked to wait (False)"
        assert row.locked_until is None and row.lock_token is None
        clock[0] = asked_at + timedelta(seconds=89)
        assert await engine.advance("inbox_items", row.pk) == AdvanceResult.SKIPPED
        clock[0] = asked_at + timedelta(seconds=90)  # due exactly when it asked to be

    # The same row asking for a counted retry: the third attempt fails it.
    await InboxItem.filter(pk=row.pk).update(payload={"counts": True, "after": 90})
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.FAILED
    row = await InboxItem.get(pk=row.pk)
    assert (row.state, row.attempts) == ("failed", 3)
    assert row.last_error == "asked to wait (True)"


async def test_a_counted_retry_still_adds_an_attempt(db: str) -> None:
    clock = [datetime.now(UTC).replace(microsecond=0)]
    engine = Engine([Machine(InboxItem, WAITING, {"waiting": _ask_again})], clock=lambda: clock[0])
    row = await _item(engine, "c", counts=True, after=90)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.RETRY
    row = await InboxItem.get(pk=row.pk)
    assert (row.state, row.attempts) == ("waiting", 1)
    assert row.next_attempt_at == clock[0] + timedelta(seconds=90)  # its own delay

    await InboxItem.filter(pk=row.pk).update(payload={"counts": True})  # the schedule's
    clock[0] += timedelta(seconds=90)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.RETRY
    row = await InboxItem.get(pk=row.pk)
    assert (row.state, row.attempts) == ("waiting", 2)
    assert row.next_attempt_at == clock[0] + timedelta(minutes=5)


def test_a_retry_that_does_not_count_needs_a_delay() -> None:
    with pytest.raises(ValueError, match="explicit delay"):
        Retry("waiting", counts=False)
    assert Retry("x").counts and not Retry("x", timedelta(0), counts=False).counts


async def test_claim_is_exclusive(db: str) -> None:
    engine = Engine([machine()])
    row = await _item(engine, "d")
    m = engine.machine("inbox_items")
    claims = await asyncio.gather(*(engine.claim(m, row.pk) for _ in range(8)))
    assert sum(c is not None for c in claims) == 1


async def test_lost_lease_cannot_move_the_row(db: str) -> None:
    """A runner whose lease expired is fenced out: the new holder's result stands."""
    clock = [datetime.now(UTC)]
    engine = Engine([machine()], lease=timedelta(seconds=30), clock=lambda: clock[0])
    row = await _item(engine, "e")
    m = engine.machine("inbox_items")
    first = await engine.claim(m, row.pk)
    assert first is not None
    assert await engine.claim(m, row.pk) is None  # lease still held
    clock[0] += timedelta(seconds=31)
    second = await engine.claim(m, row.pk)
    assert second is not None and second[1] != first[1]
    from fedisora.work.engine import LeaseLost, WorkContext

    stale = WorkContext(engine, m, first[0], first[1], engine.clock)
    with pytest.raises(LeaseLost):
        async with stale.transition("processing"):
            raise AssertionError("must not run")
    with pytest.raises(LeaseLost):
        await stale.heartbeat()
    assert (await InboxItem.get(pk=row.pk)).state == "received"


async def test_two_runners_do_each_item_exactly_once(db: str) -> None:
    engine_a = Engine([machine()])
    engine_b = Engine([machine()])
    names = [f"item{i}" for i in range(20)]
    for name in names:
        await _item(engine_a, name)
    runners = [InProcessRunner(e, poll_interval=0.01, concurrency=3) for e in (engine_a, engine_b)]
    await asyncio.gather(*(r.drain(limit_seconds=30) for r in runners))
    assert await InboxItem.filter(state="done").count() == 20
    assert await Tag.filter(name__startswith="effect-item").count() == 20


async def test_runner_heartbeat_is_recorded(db: str) -> None:
    runner = InProcessRunner(Engine([machine()]), queues=("default",), poll_interval=0.05)
    runner.start()
    await asyncio.sleep(0.3)
    await runner.stop()
    beat = await WorkerHeartbeat.get(name=runner.name)
    assert beat.queues == "default" and beat.pid == os.getpid()


def _start_runner(url: str, lease: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT / "crash_runner.py"), url, str(lease)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=SUPPORT.parent.parent,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


async def _wait_for(predicate, limit: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_runner_killed_mid_job_is_resumed_by_another(db: str) -> None:
    """SIGKILL inside the handler's open transaction: nothing committed, nothing lost.

    A second runner picks the row up once the dead runner's lease expires and does the work
    exactly once.
    """
    engine = Engine([machine()])
    await _item(engine, "slow", sleep=30)
    await _item(engine, "quick")
    victim = _start_runner(db, lease=2)
    try:
        # The victim committed received -> processing and is now sleeping inside the
        # transaction that would write the effect and move to done.
        async def victim_is_inside() -> bool:
            row = await InboxItem.get(activity_id="slow")
            return row.state == "processing" and row.locked_until is not None

        await _wait_for(victim_is_inside)
        await asyncio.sleep(0.3)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    # Make the replay fast: the next runner should not sleep 30 s again.
    await InboxItem.filter(activity_id="slow").update(payload={"sleep": 0})
    assert await Tag.filter(name="effect-slow").count() == 0
    rescuer = _start_runner(db, lease=2)
    try:

        async def all_done() -> bool:
            return await InboxItem.filter(state="done").count() == 2

        await _wait_for(all_done)
    finally:
        rescuer.terminate()
        rescuer.wait()
    assert await Tag.filter(name="effect-slow").count() == 1
    assert await Tag.filter(name="effect-quick").count() == 1
