"""Workers SIGKILLed mid-step: another worker resumes the row within its lease and a sweep
interval, and the step's effect happens once. One ``fedisora worker`` sweeps every queue.

Real ``fedisora worker`` processes (arq on Redis, and the in-process runner), a real peer on
127.0.0.1 that hangs the request the first worker makes, real PostgreSQL and SQLite.

The first worker runs with a longer lease than the second (:data:`VICTIM_LEASE`), so that it
surely still holds the row when it is killed, once the second one is up; the row is then due
when that lease ends, and what is measured is how soon after that the live worker takes it
over.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from loopback import LoopbackServer, parse_head, running
from worker_procs import (
    ARQ_SWEEP,
    LEASE,
    SLACK,
    start_worker,
    sweep_interval,
    wait_until,
    worker_env,
)

from activitypub import keys
from fedisora.config import load_settings
from fedisora.federation.delivery import enqueue
from fedisora.health import check_workers
from fedisora.models import (
    Account,
    Delivery,
    Follow,
    InboxItem,
    Notification,
    NotificationType,
    RenderJob,
    WorkerHeartbeat,
    utcnow,
)
from fedisora.work.arq_worker import ArqWaker
from fedisora.work.machines import build_engine

VICTIM_LEASE = 20
"""The killed worker's lease: time for the second worker to start while it holds the row."""

MODES = pytest.mark.parametrize(
    ("db", "mode"),
    [("postgres", "arq"), ("postgres", "inprocess"), ("sqlite", "inprocess")],
    indirect=["db"],
)


@dataclass
class Seen:
    method: str
    path: str
    activity_id: str | None
    answered: bool = False


@dataclass
class Peer(LoopbackServer):
    """A fediverse server on 127.0.0.1: serves one actor (``/users/rita``), takes POSTs to
    ``/inbox`` with a 202, and leaves the first *hang* requests (``"GET"``/``"POST"``)
    without an answer, as a peer that stalls does."""

    hang: dict[str, int] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    key: Any = field(default_factory=keys.generate_rsa_key)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def actor(self) -> str:
        return f"{self.base}/users/rita"

    def document(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.actor,
            "type": "Person",
            "preferredUsername": "rita",
            "inbox": f"{self.actor}/inbox",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": f"{self.actor}#main-key",
                "owner": self.actor,
                "publicKeyPem": keys.public_key_to_pem(self.key.public_key()),
            },
        }

    async def stop(self) -> None:
        self._release.set()
        await super().stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: several requests per connection
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method = head.split(b" ", 1)[0].decode()
                path, headers = parse_head(head)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                activity = json.loads(body).get("id") if body else None
                seen = Seen(method, path, activity)
                self.seen.append(seen)
                if self.hang.get(method, 0) > 0:
                    self.hang[method] -= 1
                    await self._release.wait()  # the caller is killed meanwhile
                    return
                if method == "GET" and path == "/users/rita":
                    doc = json.dumps(self.document()).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/activity+json\r\n"
                        + f"Content-Length: {len(doc)}\r\n\r\n".encode()
                        + doc
                    )
                elif method == "POST" and path in ("/inbox", "/users/rita/inbox"):
                    writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                seen.answered = True
        finally:
            writer.close()


def _env(db: str, mode: str, redis_url: str, data: Path, lease: int) -> dict[str, str]:
    data.mkdir(exist_ok=True)
    return worker_env(
        db,
        data,
        redis_url=redis_url if mode == "arq" else None,
        FEDISORA_WORKER_LEASE_SECONDS=str(lease),
    )


async def _wake_as_the_web_does(env: dict[str, str], row: Any) -> None:
    """On the arq path, an ``advance`` job for *row*, as the web process enqueues one for each
    row it stores: the first worker runs the step as that job, and dies with it marked
    running in Redis."""
    if "FEDISORA_REDIS_URL" not in env:
        return
    engine = build_engine(load_settings(env))
    waker = await ArqWaker.connect(env["FEDISORA_REDIS_URL"])
    try:
        await waker(engine.machine_for(type(row)), row)
    finally:
        await waker.pool.aclose()


async def _kill_mid_step(
    model: Any,
    pk: int,
    peer: Peer,
    method: str,
    env: dict[str, str],
    tmp_path: Path,
) -> tuple[float, float, Any]:
    """Run a first worker until it is stuck in *method* to the peer for row *pk*, start a
    second, kill the first; return (the kill, the row's lease end, the second worker), as
    ``time.monotonic()`` values."""
    victim_env = {**env, "FEDISORA_WORKER_LEASE_SECONDS": str(VICTIM_LEASE)}
    victim = await start_worker(victim_env, tmp_path / "victim.log")
    rescuer = None
    try:

        async def stuck() -> bool:
            return any(s.method == method for s in peer.seen)

        await wait_until(stuck, 60, f"the first worker's {method}", workers=(victim,))
        held = await model.get(pk=pk)
        assert held.lock_token is not None
        rescuer = await start_worker(env, tmp_path / "rescuer.log")
        row = await model.get(pk=pk)
        # Still the first worker's, with its lease running: the test measures a takeover.
        assert row.lock_token == held.lock_token and row.locked_until > utcnow(), (
            "the second worker took longer to start than the first worker's lease"
        )
        killed_at = await victim.kill()
        lease_end = killed_at + (row.locked_until - utcnow()).total_seconds()
    except BaseException:
        if rescuer is not None:
            await rescuer.stop()
        raise
    finally:
        await victim.stop()
    return killed_at, lease_end, rescuer


@MODES
async def test_worker_killed_mid_delivery_is_resumed_within_a_lease_and_a_sweep(
    db: str, mode: str, redis_url: str, tmp_path: Path
) -> None:
    async with running(Peer(hang={"POST": 1})) as peer:
        alice = await local_account()
        rita = await Account.create(
            username="rita",
            domain=peer.domain,
            uri=peer.actor,
            inbox_uri=f"{peer.actor}/inbox",
            shared_inbox_uri=f"{peer.base}/inbox",
        )
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{alice.uri}#likes/{secrets.token_hex(4)}",
            "type": "Like",
            "actor": alice.uri,
            "object": f"{peer.base}/notes/1",
        }
        assert await enqueue(alice, activity, [rita]) == 1
        row = await Delivery.get()
        env = _env(db, mode, redis_url, tmp_path / "data", LEASE)
        await _wake_as_the_web_does(env, row)
        killed_at, lease_end, rescuer = await _kill_mid_step(
            Delivery, row.pk, peer, "POST", env, tmp_path
        )
        try:

            async def delivered() -> bool:
                return (await Delivery.get(pk=row.pk)).state != "pending"

            done_at = await wait_until(
                delivered, VICTIM_LEASE + 30, "the delivery", workers=(rescuer,)
            )
        finally:
            await rescuer.stop()
    bound = sweep_interval(mode) + SLACK
    assert done_at - lease_end <= bound, f"delivered {done_at - lease_end:.1f} s after the lease"
    assert done_at - killed_at <= VICTIM_LEASE + bound
    done = await Delivery.get(pk=row.pk)
    assert done.state == "delivered" and done.delivered_at is not None, done.last_error
    # The hung POST and the one that was answered, of the same activity: the peer
    # deduplicates by its id; on our side the row was delivered once.
    posts = [s for s in peer.seen if s.method == "POST"]
    assert [(s.activity_id, s.answered) for s in posts] == [
        (activity["id"], False),
        (activity["id"], True),
    ]
    assert await Delivery.all().count() == 1


@MODES
async def test_worker_killed_mid_inbox_item_is_resumed_within_a_lease_and_a_sweep(
    db: str, mode: str, redis_url: str, tmp_path: Path
) -> None:
    """A Follow from an actor not cached yet: processing it fetches the actor, and the
    peer hangs that fetch until the worker making it is dead."""
    async with running(Peer(hang={"GET": 1})) as peer:
        alice = await local_account()
        follow = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{peer.actor}#follows/{secrets.token_hex(4)}",
            "type": "Follow",
            "actor": peer.actor,
            "object": alice.uri,
        }
        now = utcnow()
        item = await InboxItem.create(
            activity_id=follow["id"],
            actor_uri=peer.actor,
            payload=follow,
            state="received",
            state_changed_at=now,
            next_attempt_at=now,
        )
        env = _env(db, mode, redis_url, tmp_path / "data", LEASE)
        await _wake_as_the_web_does(env, item)
        killed_at, lease_end, rescuer = await _kill_mid_step(
            InboxItem, item.pk, peer, "GET", env, tmp_path
        )
        try:

            async def processed() -> bool:
                return (await InboxItem.get(pk=item.pk)).state != "received"

            done_at = await wait_until(
                processed, VICTIM_LEASE + 30, "the inbox item", workers=(rescuer,)
            )

            async def accepted() -> bool:  # the Accept the follow answered with
                return await Delivery.filter(state="delivered").exists()

            await wait_until(accepted, 30, "the Accept delivered", workers=(rescuer,))
        finally:
            await rescuer.stop()
    bound = sweep_interval(mode) + SLACK
    assert done_at - lease_end <= bound, f"processed {done_at - lease_end:.1f} s after the lease"
    assert done_at - killed_at <= VICTIM_LEASE + bound
    done = await InboxItem.get(pk=item.pk)
    assert done.state == "processed", done.last_error
    # Once: one follow, one notification of it, one Accept sent back.
    [row] = await Follow.all()
    assert row.target_id == alice.pk and row.uri == follow["id"]
    assert await Notification.filter(type=NotificationType.FOLLOW).count() == 1
    [accept] = await Delivery.all()
    assert accept.payload["type"] == "Accept" and accept.payload["object"]["id"] == follow["id"]
    gets = [s for s in peer.seen if s.method == "GET"]
    assert [s.answered for s in gets] == [False, True]


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_one_worker_sweeps_every_queue_each_tick_and_health_sees_them(
    db: str, redis_url: str, tmp_path: Path
) -> None:
    """``fedisora worker`` serves both queues, one arq worker each in one process: each
    queue's sweep runs every tick (they used to share one cron job id, so only one of them
    ran), and /healthz's worker check finds both queues served."""
    (tmp_path / "data").mkdir()
    env = worker_env(db, tmp_path / "data", redis_url=redis_url)
    worker = await start_worker(env, tmp_path / "worker.log")
    alice = await local_account()
    try:
        for tick in range(3):
            # Rows nothing woke a worker for (stored while Redis was away, say): only a
            # sweep finds them. A render job cancelled before it started ends at once.
            now = utcnow()
            item = await InboxItem.create(
                activity_id=f"https://peer.example/unsupported/{tick}",
                actor_uri="https://peer.example/users/x",
                payload={"type": "Listen", "actor": "https://peer.example/users/x"},
                state="received",
                state_changed_at=now,
                next_attempt_at=now,
            )
            job = await RenderJob.create(
                account=alice,
                spec={"prompt": "never rendered", "seed": 1, "seconds": 0.5},
                state="queued",
                state_changed_at=now,
                next_attempt_at=now,
                cancel_requested=True,
            )
            stored_at = time.monotonic()

            async def both_swept(item: InboxItem = item, job: RenderJob = job) -> bool:
                return (await InboxItem.get(pk=item.pk)).state == "ignored" and (
                    await RenderJob.get(pk=job.pk)
                ).state == "cancelled"

            swept_at = await wait_until(both_swept, 30, f"tick {tick}", workers=(worker,))
            assert swept_at - stored_at <= ARQ_SWEEP + SLACK, swept_at - stored_at
            await asyncio.sleep(tick * 1.3)  # the next rows at another point of the tick
        report = await check_workers()
        assert report["ok"] and report["missing_queues"] == [], report
        beats = await WorkerHeartbeat.filter(pid=worker.pid)
        assert sorted(b.queues for b in beats) == ["default", "render"]
        assert all(utcnow() - b.last_seen < timedelta(seconds=10) for b in beats)
    finally:
        await worker.stop()
