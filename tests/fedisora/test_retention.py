"""Retention of finished durable work, run as the ``work_retention`` chore: payloads dropped and
rows deleted after their documented times (passed in through the engine clock), counts kept,
bounded batches, and no harm from two runners at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chores import Clock, engine_for, run_chore
from factories import local_account, remote_account, rendered_video
from tortoise.backends.base.client import BaseDBAsyncClient

from fedisora.config import Settings, load_settings
from fedisora.models import (
    Chore,
    Delivery,
    InboxItem,
    QuoteCheck,
    RemoteMediaCheck,
    RenderJob,
    WorkTally,
    utcnow,
)
from fedisora.services import retention
from fedisora.services.storage import work_space
from fedisora.work import LeaseLost
from fedisora.work.housekeeping import AGAIN, CHORES, ensure_chores
from fedisora.work.machines import build_machines

PAYLOAD = {"type": "Flag", "content": "x" * 1000}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
        }
    )


async def item(n: int, state: str, *, host: str = "remote.example") -> InboxItem:
    now = utcnow()
    return await InboxItem.create(
        activity_id=f"https://{host}/activities/{n}",
        actor_uri=f"https://{host}/users/rita",
        payload=PAYLOAD,
        host=host,
        size=1030,
        state=state,
        state_changed_at=now,
        created_at=now,
        received_at=now,
    )


async def counts(model: Any) -> dict[str, tuple[int, int]]:
    """(rows, deleted) per state, as the admin overview shows them."""
    table = str(model._meta.db_table)
    [space] = [w for w in await work_space() if w.table == table]
    return {s.state: (s.rows, s.deleted) for s in space.states}


async def test_inbox_payloads_dropped_and_rows_deleted_after_their_times(
    db: str, settings: Settings
) -> None:
    clock = Clock()
    engine = engine_for(settings, clock)
    assert await ensure_chores() == len(CHORES)
    for n in range(3):
        await item(n, "ignored")
    for n in range(3, 5):
        await item(n, "processed")
    await item(5, "failed")
    await item(6, "received")

    async def held() -> dict[str, int]:
        rows = await InboxItem.all().values("state", "size", "payload")
        out: dict[str, int] = {}
        for r in rows:
            assert (r["size"] > 0) == (r["payload"] != {})
            out[r["state"]] = out.get(r["state"], 0) + (r["size"] > 0)
        return out

    clock.passed = timedelta(minutes=9)
    await run_chore(engine, "work_retention")
    assert await held() == {"ignored": 3, "processed": 2, "failed": 1, "received": 1}

    clock.passed = timedelta(minutes=11)  # past RETAIN_INBOX_IGNORED_MINUTES (10)
    chore = await run_chore(engine, "work_retention")
    assert await held() == {"ignored": 0, "processed": 2, "failed": 1, "received": 1}
    assert chore.progress["last"]["counts"] == {"inbox_items:ignored": 3}
    assert chore.next_attempt_at > clock() + timedelta(seconds=50)  # nothing more: a minute

    clock.passed = timedelta(minutes=61)  # processed payloads (60 minutes)
    await run_chore(engine, "work_retention")
    assert await held() == {"ignored": 0, "processed": 0, "failed": 1, "received": 1}

    clock.passed = timedelta(days=3, minutes=1)  # failed (RETAIN_FAILED_DAYS 3)
    await run_chore(engine, "work_retention")
    assert await held() == {"ignored": 0, "processed": 0, "failed": 0, "received": 1}
    # Dropped payloads, kept rows: the activity ids still recognise a redelivery.
    assert await InboxItem.all().count() == 7
    assert await counts(InboxItem) == {
        "ignored": (3, 0),
        "processed": (2, 0),
        "failed": (1, 0),
        "received": (1, 0),
    }

    clock.passed = timedelta(days=7, minutes=1)  # INBOX_DEDUPE_DAYS (7): the rows go
    await run_chore(engine, "work_retention")
    assert [i.state for i in await InboxItem.all()] == ["received"]  # never a live row
    assert await counts(InboxItem) == {
        "ignored": (0, 3),
        "processed": (0, 2),
        "failed": (0, 1),
        "received": (1, 0),
    }


async def test_deliveries_deleted_and_counted_per_host(db: str, settings: Settings) -> None:
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    ann = await local_account("ann")
    now = utcnow()

    async def delivery(n: int, state: str, host: str) -> None:
        await Delivery.create(
            sender=ann,
            inbox_url=f"https://{host}/inbox",
            host=host,
            activity_id=f"https://fedisora.test/a/{n}",
            payload={"type": "Like"},
            state=state,
            state_changed_at=now,
            created_at=now,
            next_attempt_at=now if state == "pending" else None,
        )

    for n, (state, host) in enumerate(
        [("delivered", "a.example")] * 3
        + [("delivered", "b.example"), ("failed", "b.example"), ("pending", "a.example")]
    ):
        await delivery(n, state, host)

    clock.passed = timedelta(hours=25)  # RETAIN_DELIVERED_HOURS (24)
    await run_chore(engine, "work_retention")
    assert sorted(await Delivery.all().values_list("state", flat=True)) == ["failed", "pending"]
    clock.passed = timedelta(days=3, hours=1)  # RETAIN_FAILED_DAYS (3)
    await run_chore(engine, "work_retention")
    assert await Delivery.all().values_list("state", flat=True) == ["pending"]
    tallied = {
        (t.state, t.group_key): t.count for t in await WorkTally.filter(table_name="deliveries")
    }
    assert tallied == {
        ("delivered", "a.example"): 3,
        ("delivered", "b.example"): 1,
        ("failed", "b.example"): 1,
    }
    assert await counts(Delivery) == {"delivered": (0, 4), "failed": (0, 1), "pending": (1, 0)}


async def test_other_work_tables_and_render_input_stills(db: str, settings: Settings) -> None:
    """Tables without a policy of their own (found through the engine's machines) lose their
    terminal rows after RETAIN_WORK_DAYS; render jobs keep theirs but not the input still."""
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    ann = await local_account("ann")
    rita = await remote_account("rita")
    media = await rendered_video(rita)
    now = utcnow()
    work = dict(state_changed_at=now, created_at=now)
    for state in ("verified", "failed", "pending"):
        await RemoteMediaCheck.create(
            media=media,
            clip_uri="https://remote.example/c/1",
            url="u",
            origin="o",
            state=state,
            next_attempt_at=now if state == "pending" else None,
            **work,
        )
    await QuoteCheck.create(remix_uri="r", quoted_uri="q", origin="o", state="checked", **work)
    stills = settings.media_root / "render-inputs"
    stills.mkdir(parents=True)
    for name in ("done", "live"):
        (stills / f"{name}.png").write_bytes(b"png")
    done = await RenderJob.create(
        account=ann, spec={"input_image": "render-inputs/done.png"}, state="published", **work
    )
    live = await RenderJob.create(
        account=ann, spec={"input_image": "render-inputs/live.png"}, state="ready", **work
    )

    clock.passed = timedelta(days=6)
    await run_chore(engine, "work_retention")
    assert await RemoteMediaCheck.all().count() == 3
    assert (stills / "done.png").exists()

    clock.passed = timedelta(days=7, minutes=1)
    await run_chore(engine, "work_retention")
    assert await RemoteMediaCheck.all().values_list("state", flat=True) == ["pending"]
    assert not await QuoteCheck.exists()
    assert await counts(RemoteMediaCheck) == {
        "failed": (0, 1),
        "pending": (1, 0),
        "verified": (0, 1),
    }
    assert await counts(QuoteCheck) == {"checked": (0, 1)}
    assert not (stills / "done.png").exists()  # a finished job's still
    assert (stills / "live.png").exists()  # a draft (ready) is not over
    assert {j.pk for j in await RenderJob.all()} == {done.pk, live.pk}  # history stays


async def test_batches_are_bounded_and_the_chore_comes_back_at_once(
    db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    for n in range(7):
        await item(n, "ignored")
    clock.passed = timedelta(minutes=11)
    dropped = []
    for _ in range(4):
        chore = await run_chore(engine, "work_retention")
        dropped.append(await InboxItem.filter(size=0).count())
        more = chore.progress["last"]["more"]
        due_in = chore.next_attempt_at - clock()
        assert (due_in <= AGAIN) if more else (due_in > timedelta(seconds=50))
    assert dropped == [3, 6, 7, 7]  # three rows a step; a full batch asks for another run


async def test_two_runners_at_once_count_each_deleted_row_once(db: str, settings: Settings) -> None:
    found = retention.policies(settings, build_machines(settings))
    for n in range(40):
        await item(n, "processed")
    later = utcnow() + timedelta(days=8)
    progress: list[dict[str, Any]] = [{}, {}]

    async def no_fence(conn: BaseDBAsyncClient) -> None:
        return None

    async def run(i: int) -> None:
        await retention.run_policies(
            found, now=later, progress=progress[i], fence=no_fence, media_root=settings.media_root
        )

    await asyncio.gather(run(0), run(1))
    assert not await InboxItem.exists()
    [tally] = await WorkTally.filter(table_name="inbox_items")
    assert (tally.state, tally.count) == ("processed", 40)


async def test_a_lost_lease_changes_nothing(db: str, settings: Settings) -> None:
    found = retention.policies(settings, build_machines(settings))
    for n in range(3):
        await item(n, "ignored")

    async def lost(conn: BaseDBAsyncClient) -> None:
        raise LeaseLost("chores:1")

    with pytest.raises(LeaseLost):
        await retention.run_policies(
            found,
            now=utcnow() + timedelta(days=8),
            progress={},
            fence=lost,
            media_root=settings.media_root,
        )
    assert await InboxItem.filter(size__gt=0).count() == 3  # rolled back with the fence
    assert not await WorkTally.exists()


async def test_chores_run_in_the_in_process_runner(db: str, settings: Settings) -> None:
    """No runner code knows of chores: the runner advances their rows like any other."""
    from fedisora.work.runner import InProcessRunner

    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    await item(1, "ignored")
    clock.passed = timedelta(minutes=11)
    runner = InProcessRunner(engine, queues=("default",))
    await runner.drain(limit_seconds=20)
    assert await InboxItem.filter(size=0).count() == 1
    assert {c.name for c in await Chore.filter(next_attempt_at__gt=clock())} == set(CHORES)


async def test_chores_run_in_an_arq_worker(db: str, settings: Settings, redis_url: str) -> None:
    """The arq worker's sweeps advance chore rows like any light row: no code of its own."""
    import secrets
    import time

    from fedisora.work.arq_worker import build_worker, stop_worker

    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    await item(1, "ignored")
    clock.passed = timedelta(minutes=11)
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    worker = build_worker(engine, redis_url, "default", prefix=prefix, max_jobs=2)
    task = asyncio.create_task(worker.async_run())
    try:
        deadline = time.monotonic() + 30
        while await Chore.filter(progress__not={}).count() < len(CHORES):
            assert time.monotonic() < deadline, "the arq worker did not run the chores"
            assert not task.done(), task.exception() if task.done() else None
            await asyncio.sleep(0.1)
    finally:
        await stop_worker(worker, task)
    assert await InboxItem.filter(size=0).count() == 1


async def test_expired_rows_of_other_tables_go(db: str, settings: Settings) -> None:
    """Idempotency keys past their TTL, OAuth codes a day past expiry and heartbeats of
    runners gone for a week: dead rows that would otherwise pile up for good."""
    from fedisora.models import (
        IdempotencyKey,
        OAuthApplication,
        OAuthAuthorizationCode,
        WorkerHeartbeat,
    )

    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    ann = await local_account("ann")
    app = await OAuthApplication.create(name="app", client_id="c", client_secret="s")
    now = utcnow()
    for n, age in enumerate((timedelta(hours=2), timedelta(minutes=10))):
        await IdempotencyKey.create(account=ann, key=f"k{n}", status_id=n)
        await IdempotencyKey.filter(key=f"k{n}").update(created_at=now - age)
        await OAuthAuthorizationCode.create(
            code=f"code{n}",
            application=app,
            account=ann,
            redirect_uri="urn:ietf:wg:oauth:2.0:oob",
            scopes="read",
            expires_at=now - age * 12,  # 24 hours ago, and 2 hours ago
        )
        await WorkerHeartbeat.create(
            name=f"inprocess:host:{n}", kind="inprocess", pid=n, last_seen=now - age * 84
        )
    clock.passed = timedelta(minutes=1)
    await run_chore(engine, "expired_rows")
    assert await IdempotencyKey.all().values_list("key", flat=True) == ["k1"]
    assert await OAuthAuthorizationCode.all().values_list("code", flat=True) == ["code1"]
    assert await WorkerHeartbeat.all().values_list("pid", flat=True) == [1]
