"""Durable work: declared transitions, claims, retries, fencing, crash recovery."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from work_machines import GRAPH, IN_FLIGHT, machine

from fedisora.models import Delivery, InboxItem, Tag, WorkerHeartbeat
from fedisora.work import (
    AdvanceResult,
    Engine,
    IllegalTransition,
    LeaseLost,
    Machine,
    Retry,
    State,
    StateGraph,
    WorkContext,
)
from fedisora.work.engine import QUEUED, TAKEN_OVER
from fedisora.work.graph import exponential
from fedisora.work.runner import STAGGER, InProcessRunner, beat

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


async def test_heartbeats_racing_for_a_new_runner_name_both_succeed(db: str) -> None:
    """A worker's startup sweep and its first cron sweep both beat for a name that has no row
    yet: each used to find no row to update and insert one, and the second insert failed on
    the key. A beat is one upsert."""
    clock = Engine([machine()]).clock
    for round_ in range(3):
        name = f"arq:default:racer:{round_}"
        await asyncio.gather(*(beat(name, "arq", ["default"], clock) for _ in range(4)))
        [row] = await WorkerHeartbeat.filter(name=name)
        assert row.kind == "arq" and row.queues == "default" and row.pid == os.getpid()
    first = await WorkerHeartbeat.get(name="arq:default:racer:0")
    await asyncio.sleep(0.01)
    await beat(first.name, "arq", ["default"], clock)
    again = await WorkerHeartbeat.get(name=first.name)
    assert again.last_seen > first.last_seen and again.started_at == first.started_at


def _start_runner(url: str, lease: float, concurrency: int = 4) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT / "crash_runner.py"), url, str(lease), str(concurrency)],
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


# --- batch claims, the skipped reload, move() --------------------------------------------------


async def test_batch_claim_takes_due_rows_once_under_one_token(db: str) -> None:
    engine = Engine([machine()])
    rows = [await _item(engine, f"b{i}") for i in range(5)]
    m = engine.machine("inbox_items")
    first = await engine.claim_due(m, 3)
    assert [r.pk for r in first.rows] == [r.pk for r in rows[:3]]  # in due order
    assert not first.exhausted
    rest = await engine.claim_due(m, 10)
    assert [r.pk for r in rest.rows] == [r.pk for r in rows[3:]] and rest.exhausted
    assert rest.token != first.token
    assert (await engine.claim_due(m, 10)).rows == []
    for claims in (first, rest):
        for row in claims.rows:
            stored = await InboxItem.get(pk=row.pk)
            assert stored.lock_token == claims.token and stored.locked_until is not None
            assert row.lock_token == claims.token  # the rows handed out are the claimed ones
    # Each claimed row is advanced under the batch's token like a row claimed alone.
    for claims in (first, rest):
        for row in claims.rows:
            assert await engine.advance_claimed(m, row, claims.token) == AdvanceResult.MOVED
    assert await InboxItem.filter(state="processing", lock_token=None).count() == 5


async def test_racing_batch_claims_are_disjoint(db: str) -> None:
    engines = [Engine([machine()]) for _ in range(4)]
    rows = [await _item(engines[0], f"race{i}") for i in range(30)]

    async def claim(engine: Engine) -> list[int]:
        claims = await engine.claim_due(engine.machine("inbox_items"), 7)
        return [r.pk for r in claims.rows]

    taken: list[int] = []
    while len(taken) < len(rows):
        batches = await asyncio.gather(*(claim(e) for e in engines for _ in range(2)))
        got = [pk for batch in batches for pk in batch]
        assert got, "due rows left unclaimed"
        taken += got
    assert sorted(taken) == [r.pk for r in rows]  # each row claimed exactly once


async def test_batch_claimed_rows_are_leased_and_fenced(db: str) -> None:
    clock = [datetime.now(UTC)]
    a = Engine([machine()], lease=timedelta(seconds=30), clock=lambda: clock[0])
    b = Engine([machine()], lease=timedelta(seconds=30), clock=lambda: clock[0])
    ma, mb = a.machine("inbox_items"), b.machine("inbox_items")
    rows = [await _item(a, f"f{i}") for i in range(3)]
    first = await a.claim_due(ma, 10)
    assert len(first.rows) == 3 and first.exhausted
    assert (await b.claim_due(mb, 10)).rows == []  # leases held
    assert await b.advance("inbox_items", rows[0].pk) == AdvanceResult.BUSY
    clock[0] += timedelta(seconds=31)  # the first runner hung past its lease
    second = await b.claim_due(mb, 10)
    assert [r.pk for r in second.rows] == [r.pk for r in rows]
    # The first runner can no longer move, renew or give back any of them ...
    assert await a.advance_claimed(ma, first.rows[0], first.token) == AdvanceResult.LOST
    assert not await a.renew(ma, first.rows[1].pk, first.token)
    assert await a.release(ma, [r.pk for r in first.rows], first.token) == 0
    # ... while the new holder's work stands,
    assert await b.advance_claimed(mb, second.rows[0], second.token) == AdvanceResult.MOVED
    assert [r.state for r in await InboxItem.all().order_by("id")] == [
        "processing",
        "received",
        "received",
    ]
    # and what it gives back without starting it is due again at once, for anyone.
    assert await b.release(mb, [r.pk for r in second.rows[1:]], second.token) == 2
    third = await a.claim_due(ma, 10)
    assert sorted(r.pk for r in third.rows) == [r.pk for r in rows]


async def test_wakers_get_the_row_as_written(db: str) -> None:
    """Moves to a live state and retries wake runners with the row's work columns as they
    were written (arq names the job after them), without loading the row again."""
    engine = Engine([machine()])
    seen: list[tuple[object, ...]] = []

    def columns(row: InboxItem) -> tuple[object, ...]:
        return (
            row.pk,
            row.state,
            row.attempts,
            row.next_attempt_at,
            row.state_changed_at,
            row.locked_until,
            row.lock_token,
            row.last_error,
        )

    async def waker(m: Machine, row: InboxItem) -> None:
        seen.append(columns(row))

    engine.add_waker(waker)
    row = await _item(engine, "w", fail_times=1)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
    stored = await InboxItem.get(pk=row.pk)
    assert stored.state == "processing" and seen[-1] == columns(stored)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.RETRY
    stored = await InboxItem.get(pk=row.pk)
    assert stored.attempts == 1 and "planned failure 1" in stored.last_error
    assert seen[-1] == columns(stored)


async def test_on_transition_hooks_see_the_committed_row(db: str) -> None:
    calls: list[tuple[str, str, str, bool]] = []

    async def hook(row: InboxItem, source: str, target: str) -> None:
        effect = await Tag.filter(name=f"effect-{row.activity_id}").exists()
        calls.append((source, target, row.state, effect))

    engine = Engine([machine(on_transition=hook)])
    row = await _item(engine, "h")
    noted = await _item(engine, "n", note="nothing to do")
    for pk in (row.pk, noted.pk):
        assert await engine.advance("inbox_items", pk) == AdvanceResult.MOVED
        assert await engine.advance("inbox_items", pk) == AdvanceResult.MOVED
    assert calls == [
        ("received", "processing", "processing", False),
        ("processing", "done", "done", True),  # the handler's effect, committed with the move
        ("received", "processing", "processing", False),
        ("processing", "done", "done", False),
    ]


async def test_on_move_writes_commit_with_every_kind_of_move(db: str) -> None:
    """``on_move`` runs inside the transaction of each move, whoever makes it: a handler's
    transition and move, the engine failing a row (attempts used up, a timeout, a handler
    giving up) and a move from outside; when it raises, the move is rolled back."""
    moves: list[tuple[str, str, str]] = []
    broken: set[str] = set()

    async def on_move(row: InboxItem, source: str, target: str, conn: Any) -> None:
        moves.append((row.activity_id, source, target))
        await Tag.create(name=f"moved-{row.activity_id}-{target}", using_db=conn)
        if row.activity_id in broken:
            raise RuntimeError("the effect cannot be written")

    graph = StateGraph(
        "on_move",
        [
            State("received", to=("processing",), retry=(timedelta(0),)),
            State(
                "processing",
                to=("done",),
                retry=(timedelta(0),),
                max_attempts=2,
                timeout=timedelta(hours=1),
            ),
            State("done", terminal=True),
            State("failed", terminal=True),
        ],
        initial="received",
        failed="failed",
    )
    base = machine()
    engine = Engine([Machine(InboxItem, graph, base.handlers, on_move=on_move)])
    items = {
        name: await _item(engine, name, **payload)
        for name, payload in (
            ("walk", {}),
            ("note", {"note": "moved alone"}),
            ("fail", {"fail_times": 5}),
            ("late", {}),
            ("outside", {}),
            ("broken", {}),
        )
    }
    for name in ("walk", "note", "fail", "late", "broken"):
        assert await engine.advance("inbox_items", items[name].pk) == AdvanceResult.MOVED
    assert await engine.advance("inbox_items", items["walk"].pk) == AdvanceResult.MOVED
    assert await engine.advance("inbox_items", items["note"].pk) == AdvanceResult.MOVED
    assert await engine.advance("inbox_items", items["fail"].pk) == AdvanceResult.RETRY
    assert await engine.advance("inbox_items", items["fail"].pk) == AdvanceResult.FAILED
    await InboxItem.filter(pk=items["late"].pk).update(
        state_changed_at=datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert await engine.advance("inbox_items", items["late"].pk) == AdvanceResult.FAILED
    assert await engine.move(InboxItem, items["outside"].pk, "received", "failed")
    broken.add("broken")
    assert await engine.advance("inbox_items", items["broken"].pk) == AdvanceResult.RETRY
    assert (await InboxItem.get(pk=items["broken"].pk)).state == "processing"

    assert moves == [
        ("walk", "received", "processing"),
        ("note", "received", "processing"),
        ("fail", "received", "processing"),
        ("late", "received", "processing"),
        ("broken", "received", "processing"),
        ("walk", "processing", "done"),
        ("note", "processing", "done"),
        ("fail", "processing", "failed"),
        ("late", "processing", "failed"),
        ("outside", "received", "failed"),
        ("broken", "processing", "done"),
    ]
    tags = set(await Tag.filter(name__startswith="moved-").values_list("name", flat=True))
    assert tags == {f"moved-{name}-{target}" for name, _, target in moves[:-1]}
    for name, state in (("walk", "done"), ("note", "done"), ("fail", "failed"), ("late", "failed")):
        assert (await InboxItem.get(pk=items[name].pk)).state == state


async def test_a_final_move_without_a_hook_loads_the_row_once(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the claim reads the row; with an on_transition hook, the hook's row is read too."""

    async def hook(row: InboxItem, source: str, target: str) -> None:
        pass

    def reads() -> int:
        return sum(
            r.getMessage().startswith("SELECT") and 'FROM "inbox_items"' in r.getMessage()
            for r in caplog.records
        )

    for options in ({}, {"on_transition": hook}):
        engine = Engine([machine(**options)])
        row = await _item(engine, f"r{len(options)}")
        assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
        assert (await InboxItem.get(pk=row.pk)).state == "done"
        assert reads() == 1 + len(options)


async def test_move_writes_its_values_in_the_fenced_update(db: str) -> None:
    engine = Engine([machine()])
    m = engine.machine("inbox_items")
    row = await _item(engine, "n", note="nothing to do")
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED
    stored = await InboxItem.get(pk=row.pk)
    assert (stored.state, stored.last_error) == ("done", "nothing to do")
    assert stored.locked_until is None and stored.lock_token is None
    assert stored.next_attempt_at is None and not await Tag.exists()

    other = await _item(engine, "o")
    assert await engine.advance("inbox_items", other.pk) == AdvanceResult.MOVED
    claimed = await engine.claim(m, other.pk)
    assert claimed is not None
    held, token = claimed
    ctx = WorkContext(engine, m, held, token, engine.clock)
    with pytest.raises(ValueError, match="lock_token"):
        await ctx.move("done", lock_token=None)
    stale = WorkContext(engine, m, held, "not-the-token", engine.clock)
    with pytest.raises(LeaseLost):
        await stale.move("done", last_error="never written")
    stored = await InboxItem.get(pk=other.pk)
    assert (stored.state, stored.last_error, stored.lock_token) == ("processing", "", token)


# --- the runner's pump ---------------------------------------------------------------------------


async def _processing(engine: Engine, name: str, **payload: object) -> InboxItem:
    """An item already in "processing", due now: its next step is the one with the effect
    (and the runner's first claim takes it, in the order the items were made)."""
    item = await _item(engine, name, **payload)
    await InboxItem.filter(pk=item.pk).update(state="processing")
    return item


async def _until(predicate, limit: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_stopped_runner_gives_back_rows_it_claimed_but_did_not_start(db: str) -> None:
    engine = Engine([machine()])
    await _processing(engine, "slow", pause=1.0)
    quick = [f"q{i}" for i in range(4)]
    for name in quick:
        await _processing(engine, name)
    runner = InProcessRunner(engine, concurrency=1, prefetch=8, poll_interval=0.05)
    runner.start()

    async def all_claimed() -> bool:  # the slow row runs, the quick ones wait their turn
        return (
            await InboxItem.filter(state="processing", locked_until__not_isnull=True).count() == 5
        )

    await _until(all_claimed)
    await runner.stop()  # the slow row finishes; the waiting ones are given back at once
    assert (await InboxItem.get(activity_id="slow")).state == "done"
    waiting = await InboxItem.filter(activity_id__in=quick)
    assert all(r.state == "processing" and r.lock_token is None for r in waiting)
    assert all(r.locked_until is None for r in waiting)
    assert await Tag.filter(name__in=[f"effect-{n}" for n in quick]).count() == 0
    await InProcessRunner(Engine([machine()]), poll_interval=0.05).drain(limit_seconds=20)
    assert await InboxItem.filter(state="done").count() == 5
    for name in ["slow", *quick]:
        assert await Tag.filter(name=f"effect-{name}").count() == 1


async def test_a_queued_row_taken_over_meanwhile_is_left_to_its_new_holder(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A claimed row waits for a slot while its lease runs out and another runner takes it:
    when its turn comes, the first runner leaves it alone."""
    start = datetime.now(UTC)
    clock_a, clock_b = [start], [start]
    a = Engine([machine()], lease=timedelta(seconds=30), clock=lambda: clock_a[0])
    b = Engine([machine()], lease=timedelta(seconds=30), clock=lambda: clock_b[0])
    await _processing(a, "slow", pause=2.0)  # long enough for the steps below under load
    await _processing(a, "late")
    runner = InProcessRunner(a, concurrency=1, poll_interval=0.05)
    runner.start()
    try:

        async def late_is_queued() -> bool:
            late = await InboxItem.get(activity_id="late")
            slow = await InboxItem.get(activity_id="slow")
            return slow.state == late.state == "processing" and late.locked_until is not None

        await _until(late_is_queued)
        clock_a[0] += timedelta(seconds=2)  # it waited: it would renew its lease first
        clock_b[0] += timedelta(seconds=31)  # but the lease ran out, for everyone else
        late = await InboxItem.get(activity_id="late")
        assert await b.advance("inbox_items", late.pk) == AdvanceResult.MOVED

        async def slow_done() -> bool:
            return (await InboxItem.get(activity_id="slow")).state == "done"

        await _until(slow_done)

        async def left_alone() -> bool:  # its turn came after slow's (not at a fixed time)
            return any("lease lost while waiting" in r.getMessage() for r in caplog.records)

        await _until(left_alone)
    finally:
        await runner.stop()
    assert await Tag.filter(name="effect-late").count() == 1  # done once, by b
    assert await Tag.filter(name="effect-slow").count() == 1
    assert any("lease lost while waiting for a slot" in r.getMessage() for r in caplog.records)


async def test_stagger_overlaps_rows_that_wait_and_not_rows_that_work(db: str) -> None:
    engine = Engine([machine()])
    for i in range(4):
        await _processing(engine, f"wait{i}", pause=1.0)
    IN_FLIGHT.update(now=0, peak=0)
    started = time.monotonic()
    await InProcessRunner(engine, concurrency=4, stagger=0.05).drain(limit_seconds=20)
    assert time.monotonic() - started < 3.0  # not 4 x 1 s one after another
    assert IN_FLIGHT["peak"] == 4

    for i in range(12):
        await _processing(engine, f"work{i}")
    IN_FLIGHT.update(now=0, peak=0)
    await InProcessRunner(engine, concurrency=4, stagger=2.0).drain(limit_seconds=20)
    assert IN_FLIGHT["peak"] == 1
    IN_FLIGHT.update(now=0, peak=0)
    for i in range(12):
        await _processing(engine, f"again{i}")
    await InProcessRunner(engine, concurrency=4, stagger=0).drain(limit_seconds=20)
    assert IN_FLIGHT["peak"] > 1  # without it, they would
    assert await Tag.filter(name__startswith="effect-").count() == 28


async def test_the_runner_staggers_rows_on_sqlite_only(db: str) -> None:
    """SQLite's one connection gains nothing from rows worked on side by side (it is shared
    with the web server in ``serve``); PostgreSQL does work on them side by side."""
    runner = InProcessRunner(Engine([machine()]))
    await runner.sweep_once()
    assert runner._pump.stagger == (STAGGER if db.startswith("sqlite") else 0.0)
    assert InProcessRunner(Engine([machine()]), stagger=0.5)._pump.stagger == 0.5


async def test_runner_killed_with_claimed_rows_waiting_loses_none(db: str) -> None:
    """SIGKILL while rows it claimed wait for a slot: their leases run out, another runner
    does them, each once."""
    engine = Engine([machine()])
    await _processing(engine, "slow", pause=30)
    quick = [f"quick{i}" for i in range(3)]
    for name in quick:
        await _processing(engine, name)
    victim = _start_runner(db, lease=2, concurrency=1)
    try:

        async def all_claimed() -> bool:
            return (
                await InboxItem.filter(state="processing", locked_until__not_isnull=True).count()
                == 4
            )

        await _wait_for(all_claimed)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert await Tag.all().count() == 0  # claimed, never run
    await InboxItem.filter(activity_id="slow").update(payload={})
    rescuer = _start_runner(db, lease=2)
    try:

        async def all_done() -> bool:
            return await InboxItem.filter(state="done").count() == 4

        await _wait_for(all_done)
    finally:
        rescuer.terminate()
        rescuer.wait()
    for name in ["slow", *quick]:
        assert await Tag.filter(name=f"effect-{name}").count() == 1


# --- what a runner notices however busy it is ------------------------------------------------


async def test_runner_looks_for_rows_stored_elsewhere_however_often_it_is_woken(db: str) -> None:
    """Its own wake-ups (render jobs waiting for their slot retry every second) used to
    postpone the pump's look for rows other processes stored, and for rows whose runner died,
    for as long as they kept coming."""
    heavy = Machine(
        model=Delivery,  # never stored: only woken
        graph=StateGraph("woken", [State("due"), State("gone", terminal=True)], "due", "gone"),
        handlers={"due": lambda row, ctx: asyncio.sleep(0)},
        light=False,
    )
    engine = Engine([machine(), heavy])
    runner = InProcessRunner(engine, poll_interval=0.3)
    runner.start()
    stop = asyncio.Event()

    async def keep_waking() -> None:
        while not stop.is_set():
            await engine.wake(heavy, InboxItem(id=0))
            await asyncio.sleep(0.05)

    waking = asyncio.create_task(keep_waking())
    try:
        await asyncio.sleep(0.5)  # the pump has found nothing: it waits to be woken
        now = datetime.now(UTC)
        # As another process stores it: no wake-up here.
        await InboxItem.create(
            activity_id="elsewhere",
            actor_uri="https://x/a",
            payload={},
            state="received",
            state_changed_at=now,
            next_attempt_at=now,
        )
        stored = time.monotonic()

        async def done() -> bool:
            return await InboxItem.filter(activity_id="elsewhere", state="done").exists()

        await _wait_for(done, limit=5)
        assert time.monotonic() - stored < 0.3 + 1.0
    finally:
        stop.set()
        await waking
        await runner.stop()


async def test_keep_lease_renews_while_the_block_runs(db: str) -> None:
    engine = Engine([machine()], lease=timedelta(seconds=1.5))
    item = await _item(engine, "long")
    m = engine.machine("inbox_items")
    row, token = await engine.claim(m, item.pk)  # type: ignore[misc]
    ctx = WorkContext(engine, m, row, token, engine.clock)
    async with ctx.keep_lease():
        await asyncio.sleep(2.5)  # longer than the lease
        held = await InboxItem.get(pk=item.pk)
        assert held.lock_token == token and held.locked_until > engine.clock()
        assert await engine.claim(m, item.pk) is None
    await asyncio.sleep(1.6)  # the renewal stopped with the block: the lease runs out
    assert await engine.claim(m, item.pk) is not None


# --- crashes count as attempts; a stopping runner's rows do not -------------------------------


def _later(engine: Engine, seconds: float) -> Engine:
    """A runner on *engine*'s machines whose clock is *seconds* ahead (past leases)."""
    return Engine(
        list(engine.machines.values()),
        lease=engine.lease,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=seconds),
    )


async def test_a_takeover_of_a_started_row_is_an_attempt_and_the_limit_fails_it(db: str) -> None:
    """A runner that dies holding a row it started (its lease runs out) spent an attempt: a
    row that kills every runner fails after the state's max_attempts, not resumed forever."""
    engine = Engine([machine()], lease=timedelta(seconds=60))
    row = await _processing(engine, "poison")
    m = engine.machine("inbox_items")
    for attempt in range(1, 3):
        later = _later(engine, 61 * attempt)
        assert await later.claim(m, row.pk) is not None  # its runner "dies" holding it
        stored = await InboxItem.get(pk=row.pk)
        assert stored.attempts == attempt - 1
    later = _later(engine, 61 * 3)
    claimed = await later.claim(m, row.pk)
    assert claimed is not None
    taken, _ = claimed  # tried a third time: it dies again
    assert (taken.attempts, taken.last_error) == (2, TAKEN_OVER)
    assert await _later(engine, 61 * 4).advance("inbox_items", row.pk) == AdvanceResult.FAILED
    failed = await InboxItem.get(pk=row.pk)
    assert failed.state == "failed" and failed.attempts == 3
    assert failed.last_error.startswith("3 attempts in state processing") and (
        TAKEN_OVER in failed.last_error
    )
    assert not await Tag.exists()


async def test_rows_claimed_ahead_or_given_back_are_taken_over_without_an_attempt(
    db: str,
) -> None:
    engine = Engine([machine()], lease=timedelta(seconds=60))
    rows = [await _processing(engine, f"r{i}") for i in range(4)]
    m = engine.machine("inbox_items")
    claims = await engine.claim_due(m, 4, start=1)
    assert [r.pk for r in claims.rows] == [r.pk for r in rows]
    tokens = [r.lock_token for r in claims.rows]
    assert tokens[0] == claims.token and len(set(tokens[1:])) == 1
    assert tokens[1].startswith(QUEUED) and tokens[1] != claims.token
    # The step of the second row was started and stopped by its runner: given back.
    await engine.give_back(m, rows[1].pk, tokens[1])
    given = await InboxItem.get(pk=rows[1].pk)
    assert given.lock_token is None and given.locked_until is not None  # kept its lease
    assert await engine.claim(m, rows[1].pk) is None  # nobody takes it before it runs out
    again = await _later(engine, 61).claim_due(m, 10)
    assert {r.pk: r.attempts for r in again.rows} == {rows[0].pk: 1, **{r.pk: 0 for r in rows[1:]}}
    assert [r.last_error for r in again.rows] == [TAKEN_OVER, "", "", ""]


@pytest.mark.parametrize("grace", [0.0, 5.0])
async def test_a_stopping_runner_gives_back_what_it_runs(db: str, grace: float) -> None:
    """A runner that stops lets running steps finish for *grace* seconds, then cancels them:
    their rows are given back, and taken over later without an attempt counted."""
    engine = Engine([machine()], lease=timedelta(seconds=60))
    slow = await _processing(engine, "slow", pause=2)
    runner = InProcessRunner(engine, poll_interval=0.05, concurrency=1)
    runner.start()

    async def running() -> bool:
        return IN_FLIGHT["now"] == 1

    await _until(running)
    await runner.stop(grace=grace)
    stored = await InboxItem.get(pk=slow.pk)
    if grace:  # it finished
        assert stored.state == "done" and await Tag.filter(name="effect-slow").exists()
        return
    assert stored.state == "processing" and stored.lock_token is None
    assert stored.locked_until is not None and stored.attempts == 0
    await InboxItem.filter(pk=slow.pk).update(payload={})
    assert await _later(engine, 61).advance("inbox_items", slow.pk) == AdvanceResult.MOVED
    done = await InboxItem.get(pk=slow.pk)
    assert done.state == "done" and done.last_error == ""


async def test_a_row_that_kills_its_runner_every_time_ends_failed(db: str) -> None:
    """Real runner processes, each SIGKILLed by the row it runs (a poison row), started
    again each time: the row fails after its state's max_attempts (3) tries; a row claimed
    ahead behind it each time loses no attempt and is done once the poison row is gone."""
    engine = Engine([machine()])
    await _processing(engine, "poison", die=True)
    await _processing(engine, "after")
    deaths = 0
    while True:
        runner = _start_runner(db, lease=1, concurrency=1)
        try:

            async def settled_or_dead(runner: subprocess.Popen[str] = runner) -> bool:
                return (
                    runner.poll() is not None
                    or not await InboxItem.filter(state="processing").exists()
                )

            await _wait_for(settled_or_dead)
        finally:
            if runner.poll() is None:
                runner.terminate()
            runner.wait()
        if runner.returncode != -signal.SIGKILL:
            break
        deaths += 1
        assert deaths <= 3, "the poison row was tried more than its max_attempts"
        behind = await InboxItem.get(activity_id="after")
        assert behind.attempts == 0 and behind.state == "processing"
    poison = await InboxItem.get(activity_id="poison")
    assert deaths == 3 and poison.state == "failed" and poison.attempts == 3, poison.last_error
    assert TAKEN_OVER in poison.last_error
    after = await InboxItem.get(activity_id="after")
    assert after.state == "done" and await Tag.filter(name="effect-after").count() == 1


async def test_a_runner_stopped_between_its_claim_and_the_step_releases_the_row(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop (a cancelled task) can land after the claim's UPDATE and before the step
    starts: the row is released at once, not left under a lease whose takeover would count
    an attempt (seen in CI: a render worker stopped just after it took a job over)."""
    engine = Engine([machine(light=False)], lease=timedelta(seconds=30))
    row = await _processing(engine, "claimed")
    reading = asyncio.Event()
    get_or_none = InboxItem.get_or_none

    def slow_read(*args: Any, **kwargs: Any) -> Any:
        async def read() -> Any:
            reading.set()
            await asyncio.sleep(30)  # the claim's read, on a loaded database
            return await get_or_none(*args, **kwargs)

        return read()

    monkeypatch.setattr(InboxItem, "get_or_none", slow_read)
    step = asyncio.create_task(engine.advance("inbox_items", row.pk))
    await asyncio.wait_for(reading.wait(), 10)
    monkeypatch.undo()
    claimed = await InboxItem.get(pk=row.pk)
    assert claimed.lock_token is not None  # the UPDATE took it
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    released = await InboxItem.get(pk=row.pk)
    assert (released.lock_token, released.locked_until, released.attempts) == (None, None, 0)
    assert await engine.advance("inbox_items", row.pk) == AdvanceResult.MOVED  # due at once
