"""The transactional outbox on SQLite and PostgreSQL: the rules of emitting, a real SIGKILL
after a commit and during an event's processing, an event whose processing is cut off
resuming once after its lease, one actor's events taking effect in order, and a committed
event waking the runner (no poll).

The kill at every emit site is :mod:`test_outbox_kills`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import local_account, remote_account, rendered_video
from instance import fedisora
from tortoise.transactions import in_transaction

from fedisora import urls
from fedisora.config import Settings, load_settings
from fedisora.federation import delivery, install, uninstall
from fedisora.models import (
    Account,
    Clip,
    Delivery,
    Notification,
    NotificationType,
    OutboxEvent,
    Tag,
    utcnow,
)
from fedisora.services import events, follows, outbox, posts
from fedisora.services.outbox import build_machine
from fedisora.streaming.broker import start_publisher, start_streaming
from fedisora.work import AdvanceResult, Engine
from fedisora.work.arq_worker import ArqWaker, build_worker, stop_worker
from fedisora.work.runner import InProcessRunner

ROOT = Path(__file__).resolve().parents[2]
TABLE = "outbox_events"
LEASE = timedelta(seconds=60)


class Killed(BaseException):
    """A process dying here (see :mod:`test_outbox_kills` for why this models it)."""


@dataclass
class World:
    settings: Settings
    ann: Account
    ben: Account
    rita: Account  # remote, follows ann
    idol: Account  # remote
    heard: list[events.Event]


@pytest.fixture
async def world(db: str, tmp_path: Path) -> AsyncIterator[World]:
    """ann and ben (local), rita (remote, following ann), idol (remote); committed events
    wait for a runner (none runs unless a test starts one), and a listener hears them."""
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )
    urls.configure(settings)
    heard: list[events.Event] = []

    async def listen(event: events.Event) -> None:
        heard.append(event)

    events.subscribe(listen)
    install(None)
    try:
        ann = await local_account("ann")
        ben = await local_account("ben")
        rita = await remote_account("rita")
        idol = await remote_account("idol", "idols.example")
        await follows.follow(rita, ann, uri=f"{rita.uri}#follows/1")
        assert not await OutboxEvent.exclude(state="done").exists()
        await OutboxEvent.all().delete()  # done: what the tests count starts here
        await Delivery.all().delete()
        heard.clear()
        events.clear_runner()
        yield World(settings, ann, ben, rita, idol, heard)
    finally:
        events.unsubscribe(listen)
        await uninstall()


def _engine(clock: Any = utcnow) -> Engine:
    return Engine([build_machine()], lease=LEASE, clock=clock)


def _later() -> Any:
    return utcnow() + LEASE + timedelta(seconds=1)


# --- the rules ------------------------------------------------------------------------------


async def test_events_are_emitted_only_in_an_events_transaction(world: World) -> None:
    with pytest.raises(RuntimeError, match=r"inside events\.transaction"):
        await events.emit(Account._meta.db, "clip.created", world.ann.pk, clip_id=1)
    with pytest.raises(RuntimeError, match=r"inside events\.transaction"):
        async with in_transaction() as conn:  # a plain transaction: its commit is not seen
            await events.emit(conn, "clip.created", world.ann.pk, clip_id=1)
    with pytest.raises(RuntimeError, match="outermost"):
        async with in_transaction(), events.transaction():
            pass
    with pytest.raises(ValueError, match="unknown event kind"):
        async with events.transaction() as conn:
            await events.emit(conn, "clip.exploded", world.ann.pk)
    assert await OutboxEvent.all().count() == 0


async def test_a_rolled_back_change_leaves_no_event_and_hands_nothing_on(world: World) -> None:
    events.set_runner(None)  # would process at once what commits
    with pytest.raises(ZeroDivisionError):
        async with events.transaction() as conn:
            await Tag.create(name="gone", using_db=conn)
            await events.emit(conn, "account.updated", world.ann.pk)
            raise ZeroDivisionError
    # A savepoint that rolls back takes its events with it; the outer one's go on.
    async with events.transaction() as conn:
        await events.emit(conn, "account.updated", world.ann.pk, n=1)
        with pytest.raises(ZeroDivisionError):
            async with events.transaction() as inner:
                await events.emit(inner, "account.updated", world.ann.pk, n=2)
                raise ZeroDivisionError
    rows = await OutboxEvent.all()
    assert [(r.data, r.state) for r in rows] == [({"n": 1}, "done")]
    assert [e.data for e in world.heard] == [{"n": 1}]
    assert not await Tag.filter(name="gone").exists()
    assert await Delivery.filter(activity_id__contains="#updates/").count() == 1


# --- real kills -----------------------------------------------------------------------------


def _child(world: World, body: str) -> subprocess.CompletedProcess[str]:
    """Run *body* (async, with ``ann``/``ben`` loaded and the outbox's hooks at hand) in a
    process of its own on the test's database, as a web or worker process would."""
    script = textwrap.dedent(
        """
        import asyncio, os, signal, sys
        from fedisora import urls
        from fedisora.config import load_settings
        from fedisora.db import init_db
        from fedisora.models import Account, MediaFile
        from fedisora.services import events, outbox, posts

        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        async def main():
            settings = load_settings()
            urls.configure(settings)
            await init_db(settings)
            ann = await Account.get(username="ann", domain=None)
            ben = await Account.get(username="ben", domain=None)
        """
    ) + textwrap.indent(textwrap.dedent(body), " " * 4)
    script += "\nasyncio.run(main())\n"
    return subprocess.run(
        [sys.executable, "-c", script],
        env=_env(world),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_real_sigkill_right_after_the_commit_loses_nothing(world: World) -> None:
    """The process posting a clip is SIGKILLed right after its transaction commits, before
    its events are handed on: a fresh runner makes the clip's Create and streams it, once,
    and ben's notification is there (it committed with the clip): the same end state as the
    injected kill of :mod:`test_outbox_kills`."""
    video = await rendered_video(world.ann)
    done = _child(
        world,
        f"""
        events.set_runner(None)  # it would process the events at once, but dies first
        events._committed = die
        await posts.post_clip(ann, await MediaFile.get(pk={video.pk}), caption="hi @ben")
        print("not killed")
        """,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    clip = await Clip.get(media_id=video.pk)
    note = await Notification.get(recipient_id=world.ben.pk, type=NotificationType.MENTION)
    assert [e.state for e in await OutboxEvent.all()] == ["pending", "pending"]
    await InProcessRunner(_engine(), poll_interval=3600).drain()
    [create] = await Delivery.all()
    assert create.payload["type"] == "Create" and create.payload["object"]["id"] == clip.uri
    assert sorted((e.kind, e.actor_id, e.data) for e in world.heard) == [
        ("clip.created", world.ann.pk, {"clip_id": clip.pk}),
        ("notification.created", world.ben.pk, {"notification_id": note.pk}),
    ]
    await InProcessRunner(_engine(), poll_interval=3600).drain()
    assert await Delivery.all().count() == 1 and len(world.heard) == 2


async def test_a_real_sigkill_during_processing_is_resumed_once(world: World) -> None:
    """A runner process is SIGKILLed inside an event's transaction, after its Delivery rows
    were written and before the commit: they roll back, the event keeps its lease, and a
    runner past the lease makes them, once."""
    clip = await posts.post_clip(world.ann, await rendered_video(world.ann), caption="one")
    [event] = await OutboxEvent.all()
    done = _child(
        world,
        """
        from fedisora.federation.delivery import on_event
        from fedisora.services.outbox import build_machine
        from fedisora.work import Engine

        async def effect_then_die(event, conn):
            made = await on_event(event, conn)
            assert made == 1
            die()

        outbox._effects = [effect_then_die]
        await Engine([build_machine()]).advance("outbox_events", EVENT)
        print("not killed")
        """.replace("EVENT", str(event.pk)),
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    row = await OutboxEvent.get(pk=event.pk)
    assert row.state == "pending" and row.locked_until is not None
    assert await Delivery.all().count() == 0  # rolled back with the transaction
    assert await _engine().advance(TABLE, event.pk) is AdvanceResult.BUSY  # its lease holds
    assert await _engine(_later).advance(TABLE, event.pk) is AdvanceResult.MOVED
    [create] = await Delivery.all()
    assert create.payload["object"]["id"] == clip.uri
    assert [e.kind for e in world.heard] == ["clip.created"]
    assert await _engine(_later).advance(TABLE, event.pk) is AdvanceResult.SKIPPED


def _env(world: World) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_DOMAIN=world.settings.domain,
        FEDISORA_DATA_DIR=str(world.settings.data_dir),
        FEDISORA_DATABASE_URL=world.settings.database_url,
        FEDISORA_SECRET_KEY="s" * 40,
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    return env


async def test_a_command_leaves_an_event_to_the_runners_behind_its_actors_earlier_ones(
    world: World,
) -> None:
    """``fedisora suspend`` processes its event as it commits, unless the account's earlier
    events still wait for the instance's runners: then it says the Update is queued, and
    the runners send it after them."""
    await posts.post_clip(world.ann, await rendered_video(world.ann), caption="before")
    done = await asyncio.to_thread(fedisora, ["suspend", "ann"], _env(world))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "suspended @ann; the actor's Update is queued for the " + (
        "instance's workers"
    )
    assert await Delivery.all().count() == 0
    await InProcessRunner(_engine(), poll_interval=3600).drain()
    # The clip's Create is not sent: its author is suspended by the time it would be.
    assert [d.payload["type"] for d in await Delivery.all().order_by("id")] == ["Update"]
    # ... and ann is told (the warning she can appeal), after the suspension.
    kinds = ["clip.created", "account.suspended", "notification.created"]
    assert [e.kind for e in world.heard] == kinds
    done = await asyncio.to_thread(fedisora, ["unsuspend", "ann"], _env(world))
    assert done.stdout.strip() == "unsuspended @ann; the actor's Update goes to 1 remote inboxes"


# --- lease expiry ---------------------------------------------------------------------------


async def test_processing_cut_off_midway_resumes_once_and_the_late_runner_changes_nothing(
    world: World,
) -> None:
    """Runner A claims an event and stalls before its transition (hung, or its process
    paused); after A's lease, runner B processes it. When A wakes up, its fenced transition
    fails: no second set of deliveries, no second stream message."""
    await posts.post_clip(world.ann, await rendered_video(world.ann), caption="one")
    [event] = await OutboxEvent.all()
    stalled, resume = asyncio.Event(), asyncio.Event()

    async def stalls(row: OutboxEvent, ctx: Any) -> Any:
        stalled.set()
        await resume.wait()
        return await outbox._process(row, ctx)

    a = Engine([dataclasses.replace(build_machine(), handlers={"pending": stalls})], lease=LEASE)
    late = asyncio.create_task(a.advance(TABLE, event.pk))
    await stalled.wait()
    assert await _engine().advance(TABLE, event.pk) is AdvanceResult.BUSY
    assert await _engine(_later).advance(TABLE, event.pk) is AdvanceResult.MOVED  # B
    assert await Delivery.all().count() == 1
    resume.set()
    assert await late is AdvanceResult.LOST
    assert await Delivery.all().count() == 1
    assert [e.kind for e in world.heard] == ["clip.created"]
    assert (await OutboxEvent.get(pk=event.pk)).state == "done"


# --- order ----------------------------------------------------------------------------------


async def test_one_actors_events_take_effect_in_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ann follows idol, unfollows, follows again; likewise a clip posted, deleted, and
    another posted. Processed by runners claiming batches and working side by side, with the
    Undo made slow to build: the Delivery rows and the stream messages still come in the
    order of the events (a peer that got the second Follow before the Undo of the first
    would drop the follow: Mastodon undoes a follow by the pair of accounts)."""
    w = world
    await follows.follow(w.ann, w.idol)
    await follows.unfollow(w.ann, w.idol)
    again = await follows.follow(w.ann, w.idol)
    first = await posts.post_clip(w.ann, await rendered_video(w.ann), caption="first")
    await posts.delete_clip(w.ann, first)
    second = await posts.post_clip(w.ann, await rendered_video(w.ann), caption="second")
    written = [(e.kind, e.data) for e in await OutboxEvent.filter(actor_id=w.ann.pk).order_by("id")]

    slow_undo = delivery._BUILDERS["follow.deleted"]

    async def slowly(actor: Account, data: dict[str, Any]) -> Any:
        await asyncio.sleep(0.3)
        return await slow_undo(actor, data)

    monkeypatch.setitem(delivery._BUILDERS, "follow.deleted", slowly)
    runners = [
        InProcessRunner(_engine(), poll_interval=0.05, concurrency=4, stagger=0.0) for _ in range(2)
    ]
    await asyncio.gather(*(r.drain() for r in runners))
    heard = [(e.kind, e.data) for e in w.heard if e.actor_id == w.ann.pk]
    assert heard == written
    sent = [d.payload for d in await Delivery.all().order_by("id")]
    # The first Follow's row was gone when its event was processed; its Undo comes before the
    # new Follow. The first clip was deleted before its Create was built: only its Delete.
    assert [a["type"] for a in sent] == ["Undo", "Follow", "Delete", "Create"], sent
    assert sent[1]["id"] == again.uri and sent[1]["object"] == w.idol.uri
    assert sent[2]["object"]["id"] == first.uri and sent[3]["object"]["id"] == second.uri


async def test_one_actors_backlog_does_not_hold_back_the_others(world: World) -> None:
    """A claim takes the oldest event of each actor that has some, whatever the backlog of
    one of them (an account deletion's events): ben's clip is claimed beside ann's first."""
    w = world
    async with events.transaction() as conn:
        for n in range(40):
            await events.emit(conn, "account.updated", w.ann.pk, n=n)
    await posts.post_clip(w.ben, await rendered_video(w.ben), caption="ben's")
    engine = _engine()
    claims = await engine.claim_due(engine.machine(TABLE), 4)
    claimed = [(row.actor_id, row.pk) for row in claims.rows]
    first_of_ann = await OutboxEvent.filter(actor_id=w.ann.pk).order_by("id").first()
    bens = await OutboxEvent.get(actor_id=w.ben.pk)
    assert first_of_ann is not None
    assert claimed == [(w.ann.pk, first_of_ann.pk), (w.ben.pk, bens.pk)]
    assert claims.exhausted
    await engine.release(engine.machine(TABLE), [pk for _, pk in claimed], claims.token)
    await InProcessRunner(engine, poll_interval=3600, concurrency=4).drain()
    assert [e.data.get("n") for e in w.heard if e.actor_id == w.ann.pk] == list(range(40))


async def test_a_failing_event_holds_its_actors_next_ones_back_for_a_few_tries_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    await posts.post_clip(w.ann, await rendered_video(w.ann), caption="poison")
    await posts.post_clip(w.ann, await rendered_video(w.ann), caption="fine")
    await posts.post_clip(w.ben, await rendered_video(w.ben), caption="ben's")
    poison, fine, bens = await OutboxEvent.all().order_by("id")
    real = delivery._clip_created

    async def fails_on_poison(actor: Account, data: dict[str, Any]) -> Any:
        clip = await Clip.get(pk=data["clip_id"])
        if clip.caption == "poison":
            raise RuntimeError("cannot build this one")
        return await real(actor, data)

    monkeypatch.setitem(delivery._BUILDERS, "clip.created", fails_on_poison)
    engine = _engine()
    assert await engine.advance(TABLE, fine.pk) is AdvanceResult.RETRY  # waits for poison
    assert (await OutboxEvent.get(pk=fine.pk)).attempts == 0  # waiting is not failing
    assert await engine.advance(TABLE, bens.pk) is AdvanceResult.MOVED  # another actor's
    for attempt in range(1, outbox.ORDER_PATIENCE + 1):
        await OutboxEvent.filter(pk=poison.pk).update(next_attempt_at=utcnow())
        assert await engine.advance(TABLE, poison.pk) is AdvanceResult.RETRY
        assert (await OutboxEvent.get(pk=poison.pk)).attempts == attempt
    await OutboxEvent.filter(pk=fine.pk).update(next_attempt_at=utcnow())
    assert await engine.advance(TABLE, fine.pk) is AdvanceResult.MOVED  # no longer held
    assert (await OutboxEvent.get(pk=poison.pk)).state == "pending"  # still retried
    assert (await OutboxEvent.get(pk=poison.pk)).last_error.startswith("RuntimeError")


# --- waking ---------------------------------------------------------------------------------


async def test_a_committed_event_wakes_the_runner(world: World) -> None:
    """With the app's wiring (committed events wake the engine's runner) and a runner that
    would not poll for an hour, a posted clip reaches the stream listener and its Delivery
    rows, and so do a burst of one actor's clips (each finished event wakes the next)."""
    engine = _engine()  # the outbox only: the Delivery rows are not sent anywhere
    install(engine)
    runner = InProcessRunner(engine, poll_interval=3600)
    runner.start()
    try:
        heard = asyncio.Event()
        wanted = 4

        async def count(event: events.Event) -> None:
            if sum(e.kind == "clip.created" for e in world.heard) >= wanted:
                heard.set()

        events.subscribe(count)
        try:
            for n in range(wanted):
                await posts.post_clip(world.ann, await rendered_video(world.ann), caption=f"{n}")
            await asyncio.wait_for(heard.wait(), 30)  # far below the poll interval
        finally:
            events.unsubscribe(count)
        assert [d.payload["type"] for d in await Delivery.all()] == ["Create"] * wanted
    finally:
        await runner.stop()


async def test_with_redis_a_worker_runs_the_outbox_and_the_web_process_streams_it(
    world: World, redis_url: str
) -> None:
    """Wired as with ``FEDISORA_REDIS_URL``: the web process's engine only wakes (an arq
    job); an arq worker (``fedisora worker``) processes the event, writes its Delivery row
    and publishes it; the web process's relay hands it to its hub."""
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    web = _engine()
    waker = await ArqWaker.connect(redis_url, prefix)
    web.add_waker(waker)
    install(web)
    streaming = await start_streaming(redis_url)
    stream = streaming.hub.connect()
    stop_publisher = await start_publisher(redis_url)  # the worker's
    worker = build_worker(_engine(), redis_url, "default", prefix=prefix)
    task = asyncio.create_task(worker.async_run())
    try:
        clip = await posts.post_clip(world.ann, await rendered_video(world.ann), caption="one")
        while True:  # (the channel is shared: other test sessions may publish on it)
            got = await asyncio.wait_for(stream.get(), 30)
            if got.kind == "clip.created" and got.data == {"clip_id": clip.pk}:
                break
        [create] = await Delivery.all()
        assert create.payload["object"]["id"] == clip.uri
        assert (await OutboxEvent.get()).state == "done"
    finally:
        await stop_worker(worker, task)
        await stop_publisher()
        await streaming.stop()
        await waker.pool.aclose()
