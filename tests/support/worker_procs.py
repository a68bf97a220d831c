"""Real ``fedisora worker`` processes for crash tests: started, SIGKILLed, timed.

A worker runs the production command (``python -m fedisora worker``) against the test's
database, with Redis (the arq path) or without (the in-process runner), and a short lease
(``FEDISORA_WORKER_LEASE_SECONDS``) so that a dead worker's rows come due again quickly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LEASE = 5
"""The lease the workers run with: the smallest FEDISORA_WORKER_LEASE_SECONDS allows."""
ARQ_SWEEP = 5.0
"""Seconds between an arq worker's sweeps of each queue (``build_worker``'s cron)."""
INPROCESS_SWEEP = 1.0
"""Seconds between the in-process runner's looks for rows stored elsewhere (its poll)."""
SLACK = 2.0
"""Allowance on top of lease + sweep interval: a claim, a step, the test's own polling."""


def sweep_interval(mode: str) -> float:
    return ARQ_SWEEP if mode == "arq" else INPROCESS_SWEEP


def worker_env(
    db_url: str,
    data_dir: Path,
    *,
    domain: str = "fedisora.test",
    secret_key: str = "s" * 40,
    redis_url: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a worker on *db_url* (and Redis at *redis_url*, if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_CONFIG=str(data_dir / "none.env"),
        FEDISORA_DATABASE_URL=db_url,
        FEDISORA_DATA_DIR=str(data_dir),
        FEDISORA_DOMAIN=domain,
        FEDISORA_SECRET_KEY=secret_key,
        FEDISORA_WORKER_LEASE_SECONDS=str(LEASE),
        FEDISORA_INSECURE_HTTP="1",  # loopback peers
        FEDISORA_LOG_LEVEL="warning",
    )
    if redis_url is not None:
        env["FEDISORA_REDIS_URL"] = redis_url
    env.update(extra)
    return env


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def alive(self) -> bool:
        return self.process.returncode is None

    async def kill(self) -> float:
        """SIGKILL; returns when it was sent (``time.monotonic()``)."""
        os.kill(self.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        await self.process.wait()
        assert self.process.returncode == -signal.SIGKILL
        return killed

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(20):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_worker(env: dict[str, str], log: Path, queues: str = "default,render") -> Worker:
    """``fedisora worker --queues QUEUES``, once it says it runs."""
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "fedisora", "worker", "--queues", queues),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    worker = Worker(process, log)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
    except TimeoutError:
        await worker.stop()
        raise AssertionError(f"the worker did not start:\n{worker.output()}") from None
    assert b"worker for queues" in line, (line, worker.output())
    return worker


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    limit: float,
    what: str,
    *,
    interval: float = 0.05,
    workers: tuple[Worker, ...] = (),
) -> float:
    """Poll *predicate* until it holds; returns when (``time.monotonic()``). Fails after
    *limit* seconds, or as soon as one of *workers* died."""
    deadline = time.monotonic() + limit
    while True:
        if await predicate():
            return time.monotonic()
        for worker in workers:
            assert worker.alive(), f"a worker died:\n{worker.output()}"
        if time.monotonic() > deadline:
            logs = "\n".join(w.output() for w in workers)
            raise AssertionError(f"{what}: not within {limit:.1f} s\n{logs}")
        await asyncio.sleep(interval)
