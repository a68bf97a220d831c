"""The per-host delivery cap holds across processes when Redis is configured.

Against the real Redis of the test machine (``redis_url``), each test with its own key
prefix; requests go to a sink server on 127.0.0.1 that counts the requests in flight.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from factories import local_account
from loopback import LoopbackServer, parse_head, running

from fedisora import urls
from fedisora.config import Settings, load_settings
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.delivery import (
    DELIVERY_GRAPH,
    PER_HOST_CONCURRENCY,
    THROTTLED_RETRY_SECONDS,
    host_cap,
)
from fedisora.federation.hostcap import HostBusy, LocalHostCap, RedisHostCap, SlotsUnavailable
from fedisora.federation.http import PeerClient
from fedisora.federation.rows import create_row
from fedisora.models import Account, Delivery, utcnow
from fedisora.work.engine import AdvanceResult
from fedisora.work.machines import build_engine


@dataclass
class Sink(LoopbackServer):
    """An inbox on 127.0.0.1 that holds each POST for *delay* seconds and answers 202."""

    delay: float = 0.15
    in_flight: int = 0
    max_in_flight: int = 0
    total: int = 0
    workers: set[str] = field(default_factory=set)

    @property
    def host(self) -> str:
        return self.domain

    @property
    def inbox(self) -> str:
        return f"{self.base}/inbox"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: several requests per connection
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                _, headers = parse_head(head)
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.workers.add(headers.get("x-worker", "?"))
                self.total += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    await asyncio.sleep(self.delay)
                finally:
                    self.in_flight -= 1
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with running(Sink()) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"fedisora-test-{secrets.token_hex(6)}"


# --- separate processes ----------------------------------------------------------------------

# A worker process: N concurrent deliveries to the sink, each inside a slot of the cap.
_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from fedisora.federation.hostcap import LocalHostCap, RedisHostCap
    from fedisora.federation.http import PeerClient

    mode, redis_url, prefix, inbox, host, count, limit, name = sys.argv[1:]
    if mode == "redis":
        cap = RedisHostCap(redis_url, int(limit), prefix=prefix, wait=60)
    else:
        cap = LocalHostCap(int(limit))

    async def main():
        client = PeerClient(insecure=True)

        async def one():
            async with cap.slot(host):
                response, _ = await client.request(
                    "POST", inbox, headers={"X-Worker": name}, content=b"{}"
                )
                assert response.status_code == 202, response.status_code

        try:
            await asyncio.gather(*(one() for _ in range(int(count))))
        finally:
            await client.aclose()

    print("ready", flush=True)
    sys.stdin.readline()  # start together with the other worker
    asyncio.run(main())
    print("done", flush=True)
    """
)


async def _run_workers(
    mode: str, redis_url: str, prefix: str, sink: Sink, *, workers: int, each: int, limit: int
) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            mode,
            redis_url,
            prefix,
            sink.inbox,
            sink.host,
            str(each),
            str(limit),
            f"w{n}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line == b"ready\n", line
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            assert out == b"done\n"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_two_processes_share_the_cap_through_redis(
    redis_url: str, prefix: str, sink: Sink
) -> None:
    await _run_workers("redis", redis_url, prefix, sink, workers=2, each=8, limit=3)
    assert sink.total == 16 and sink.workers == {"w0", "w1"}
    assert sink.max_in_flight == 3  # never more, and the cap was reached
    assert await RedisHostCap(redis_url, 3, prefix=prefix).holders(sink.host) == 0


async def test_without_redis_each_process_has_its_own_cap(
    redis_url: str, prefix: str, sink: Sink
) -> None:
    """The control: per-process semaphores let two processes exceed the cap together, so
    the test above measures something."""
    await _run_workers("local", redis_url, prefix, sink, workers=2, each=8, limit=3)
    assert sink.total == 16
    assert sink.max_in_flight > 3


_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from fedisora.federation.hostcap import RedisHostCap

    redis_url, prefix, host, lease = sys.argv[1:]

    async def main():
        cap = RedisHostCap(redis_url, 2, prefix=prefix, lease=float(lease), wait=0)
        async with cap.slot(host):
            print("held", flush=True)
            await asyncio.sleep(3600)  # killed here, never releasing

    asyncio.run(main())
    """
)


async def test_a_holder_that_dies_frees_its_slot_after_the_lease(
    redis_url: str, prefix: str
) -> None:
    """Two slots: a process takes one and is killed; a live holder keeps the other (and the
    key) alive. The dead process's slot comes free when its own lease ends."""
    host = "peer.example"
    lease = 1.5
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        redis_url,
        prefix,
        host,
        str(lease),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"held\n"
        held_at = time.monotonic()
    finally:
        proc.kill()  # SIGKILL: no finally blocks, no release
        await proc.wait()
    assert proc.returncode == -9

    live = RedisHostCap(redis_url, 2, prefix=prefix, lease=60, wait=0)
    hasty = RedisHostCap(redis_url, 2, prefix=prefix, lease=60, wait=0.2)
    patient = RedisHostCap(redis_url, 2, prefix=prefix, lease=60, wait=10)
    async with live.slot(host):
        assert await live.holders(host) == 2  # the dead process still holds its slot
        with pytest.raises(HostBusy):
            async with hasty.slot(host):
                pytest.fail("got a slot the dead holder's lease still covers")
        async with patient.slot(host):
            waited = time.monotonic() - held_at
            assert await live.holders(host) == 2
        assert lease - 0.3 < waited < lease + 2.0  # freed by its lease running out
        assert await live.holders(host) == 1
    assert await live.holders(host) == 0


async def test_slots_are_given_back_on_exit_and_on_error(redis_url: str, prefix: str) -> None:
    cap = RedisHostCap(redis_url, 2, prefix=prefix, wait=0)
    host = "peer.example"
    async with cap.slot(host), cap.slot(host):
        assert await cap.holders(host) == 2
        with pytest.raises(HostBusy):
            async with cap.slot(host):
                pass
    assert await cap.holders(host) == 0
    with pytest.raises(RuntimeError, match="boom"):
        async with cap.slot(host):
            raise RuntimeError("boom")
    assert await cap.holders(host) == 0
    async with cap.slot("other.example"), cap.slot("other.example"):
        assert await cap.holders(host) == 0  # hosts are counted apart

    # The key expires with the leases: nothing is left behind for idle hosts.
    from redis.asyncio import Redis

    async with cap.slot(host), Redis.from_url(redis_url) as redis:
        ttl = await redis.pttl(cap.key(host))
        assert 0 < ttl <= cap.lease * 1000


def test_the_cap_follows_the_settings() -> None:
    assert isinstance(host_cap(Settings()), LocalHostCap)
    shared = host_cap(Settings(redis_url="redis://127.0.0.1:6379/9"))
    assert isinstance(shared, RedisHostCap) and shared.limit == PER_HOST_CONCURRENCY
    assert host_cap(Settings(redis_url="redis://127.0.0.1:6379/9")) is shared


# --- the delivery machine --------------------------------------------------------------------


@pytest.fixture
async def delivering(
    db: str, redis_url: str, tmp_path: Any, sink: Sink
) -> AsyncIterator[tuple[Settings, Account]]:
    """Settings with Redis, a real peer client (loopback allowed) and a local sender."""
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_INSECURE_HTTP": "1",
            "FEDISORA_REDIS_URL": redis_url,
        }
    )
    urls.configure(settings)
    set_federation(Federation(settings, PeerClient(insecure=True)))
    try:
        yield settings, await local_account("ann")
    finally:
        from fedisora.federation.context import close_federation

        await close_federation()


async def _rows(sender: Account, sink: Sink, count: int) -> list[Delivery]:
    rows = []
    for n in range(count):
        activity = {"id": f"{sender.uri}#likes/{n}", "type": "Like", "actor": sender.uri}
        rows.append(
            await create_row(
                Delivery,
                DELIVERY_GRAPH.initial,
                sender=sender,
                inbox_url=sink.inbox,
                host=sink.host,
                activity_id=activity["id"],
                payload=activity,
            )
        )
    return rows


async def test_a_throttled_delivery_is_rescheduled_without_using_an_attempt(
    delivering: tuple[Settings, Account], redis_url: str, prefix: str, sink: Sink
) -> None:
    """Throttling is a non-counting retry (``Retry(counts=False)``): a row one counted failure
    from ``failed`` is throttled again and again and stays pending, its attempts as stored."""
    settings, ann = delivering
    engine = build_engine(settings, providers=["fedisora.federation.delivery:machines"])
    engine.context["host_cap"] = RedisHostCap(redis_url, 2, prefix=prefix, wait=0.3)
    [row] = await _rows(ann, sink, 1)
    max_attempts = DELIVERY_GRAPH["pending"].max_attempts
    assert max_attempts is not None
    # Real failures before: one more counted failure and the row would fail for good.
    await Delivery.filter(pk=row.pk).update(attempts=max_attempts - 1)

    # Another process holds both slots of the sink's host.
    others = RedisHostCap(redis_url, 2, prefix=prefix, wait=0)
    release = asyncio.Event()
    held = asyncio.Semaphore(0)

    async def hold() -> None:
        async with others.slot(sink.host):
            held.release()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    for _ in holders:
        await held.acquire()
    low, high = THROTTLED_RETRY_SECONDS
    try:
        for _ in range(3):
            before = utcnow()
            assert await engine.advance("deliveries", row.pk) == AdvanceResult.RETRY
            row = await Delivery.get(pk=row.pk)
            assert row.state == "pending" and row.attempts == max_attempts - 1
            assert row.last_error.startswith("throttled:") and sink.host in row.last_error
            assert row.next_attempt_at is not None and row.locked_until is None
            wait = row.next_attempt_at - before
            assert timedelta(seconds=low) <= wait <= timedelta(seconds=high + 2)
            await Delivery.filter(pk=row.pk).update(next_attempt_at=utcnow())  # due again
    finally:
        release.set()
        await asyncio.gather(*holders)
    assert sink.total == 0

    # With the slots free, it goes out.
    assert await engine.advance("deliveries", row.pk) == AdvanceResult.MOVED
    row = await Delivery.get(pk=row.pk)
    assert row.state == "delivered" and sink.total == 1


async def test_two_engines_deliver_within_the_shared_cap(
    delivering: tuple[Settings, Account], redis_url: str, prefix: str, sink: Sink
) -> None:
    """Two engines, each with its own Redis cap object (as two worker processes would have),
    run twelve deliveries to one host at once: at most two are ever in flight."""
    settings, ann = delivering
    engines = []
    for _ in range(2):
        engine = build_engine(settings, providers=["fedisora.federation.delivery:machines"])
        engine.context["host_cap"] = RedisHostCap(redis_url, 2, prefix=prefix, wait=30)
        engines.append(engine)
    rows = await _rows(ann, sink, 12)
    results = await asyncio.gather(
        *(engines[n % 2].advance("deliveries", row.pk) for n, row in enumerate(rows))
    )
    assert results == [AdvanceResult.MOVED] * 12
    assert await Delivery.filter(state="delivered").count() == 12
    assert sink.total == 12 and sink.max_in_flight == 2
    assert await Delivery.filter(attempts__gt=0).count() == 0


async def test_a_delivery_while_redis_is_away_waits_without_using_an_attempt(
    delivering: tuple[Settings, Account], sink: Sink
) -> None:
    """Redis, which keeps the host slots, does not answer (a restart): the delivery is
    rescheduled as a throttled one, not failed an attempt it never got to make."""
    settings, ann = delivering
    engine = build_engine(settings, providers=["fedisora.federation.delivery:machines"])
    with socket.socket() as closed:  # a port nothing listens on: Redis is down
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine.context["host_cap"] = RedisHostCap(f"redis://127.0.0.1:{port}/0", 2)
    [row] = await _rows(ann, sink, 1)
    with pytest.raises(SlotsUnavailable) as raised:
        async with engine.context["host_cap"].slot(sink.host):
            pass
    assert isinstance(raised.value, HostBusy)
    before = utcnow()
    assert await engine.advance("deliveries", row.pk) == AdvanceResult.RETRY
    row = await Delivery.get(pk=row.pk)
    assert row.state == "pending" and row.attempts == 0
    assert row.last_error.startswith("throttled: the request slots for") and sink.host in (
        row.last_error
    )
    low, high = THROTTLED_RETRY_SECONDS
    assert row.next_attempt_at is not None
    assert timedelta(seconds=low) <= row.next_attempt_at - before <= timedelta(seconds=high + 2)
    assert sink.total == 0
