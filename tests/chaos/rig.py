"""A fedisora instance deployed as in production, on loopback, with every part breakable.

PostgreSQL (a throwaway cluster), Redis (a throwaway server), the web process
(``fedisora serve``), one ``fedisora worker`` per queue (``default``: deliveries, the inbox,
checks; ``render``: the tiny random-weight CPU pipeline), the media root on a small tmpfs,
and the scripted remote :class:`~peer.ChaosPeer`. :func:`chaos_rig` builds it and takes it
all down afterwards, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from peer import ChaosPeer
from throwaway import (
    PostgresCluster,
    Process,
    RedisServer,
    free_port,
    postgres_cluster,
    redis_server,
    small_filesystem,
)

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
HERE = Path(__file__).resolve().parent

LEASE_SECONDS = 5  # the smallest FEDISORA_WORKER_LEASE_SECONDS allows: faults heal sooner
RENDER_STEPS = 4  # a few seconds a render on a busy CPU: long enough to be killed in
MEDIA_BYTES = 24 * 1024 * 1024


@dataclass
class LoadUser:
    id: str
    username: str
    uri: str
    tokens: list[str]
    media: list[int]  # finished videos not posted yet
    requests: int = 0

    def headers(self) -> dict[str, str]:
        """A token spread: at most 150 requests on each (the API allows 300 in 5 minutes)."""
        self.requests += 1
        token = self.tokens[(self.requests // 150) % len(self.tokens)]
        return {"Authorization": f"Bearer {token}"}


@dataclass
class ChaosRig:
    tmp: Path
    pg: PostgresCluster
    redis: RedisServer
    peer: ChaosPeer
    media_root: Path
    media_fs: str  # "tmpfs" or "loop ext4"
    port: int
    env: dict[str, str]
    database_url: str
    clock_file: Path | None
    processes: dict[str, Process] = field(default_factory=dict)
    users: list[LoadUser] = field(default_factory=list)
    more_webs: dict[str, int] = field(default_factory=dict)
    """Web processes beyond ``web`` (``web2``, ...), by name, with the port each listens on:
    the same instance (its domain is ``web``'s), as behind a load balancer."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- stored media (the media root, or the bucket with FEDISORA_MEDIA_BACKEND=s3) ------

    def _bucket(self) -> tuple[Any, str] | None:
        """(a boto3 client, the bucket) when the instance keeps its media in S3."""
        if self.env.get("FEDISORA_MEDIA_BACKEND") != "s3":
            return None
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.env["FEDISORA_S3_ENDPOINT"],
            region_name=self.env.get("FEDISORA_S3_REGION", "us-east-1"),
            aws_access_key_id=self.env["FEDISORA_S3_ACCESS_KEY"],
            aws_secret_access_key=self.env["FEDISORA_S3_SECRET_KEY"],
        )
        return client, self.env["FEDISORA_S3_BUCKET"]

    def media_keys(self) -> list[str]:
        """Every stored media file's key (its path under the media root), sorted; render
        scratch work (``render-work/``) stays on the worker's disk whatever the backend."""
        bucket = self._bucket()
        local = sorted(
            str(p.relative_to(self.media_root)) for p in self.media_root.rglob("*") if p.is_file()
        )
        if bucket is None:
            return local
        client, name = bucket
        keys = [k for k in local if k.startswith("render-work/")]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)

    def media_bytes(self, key: str) -> bytes | None:
        """A stored media file's bytes, or None when there is none under *key*."""
        bucket = self._bucket()
        if bucket is None:
            path = self.media_root / key
            return path.read_bytes() if path.is_file() else None
        client, name = bucket
        try:
            body: bytes = client.get_object(Bucket=name, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return body

    def has_media(self, key: str) -> bool:
        bucket = self._bucket()
        if bucket is None:
            return (self.media_root / key).is_file()
        client, name = bucket
        try:
            client.head_object(Bucket=name, Key=key)
        except client.exceptions.ClientError:
            return False
        return True

    @property
    def webs(self) -> list[str]:
        return ["web", *self.more_webs]

    def url_of(self, web: str) -> str:
        """The base URL web process *web* answers on."""
        return self.url if web == "web" else f"http://127.0.0.1:{self.more_webs[web]}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- processes ------------------------------------------------------------------------

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def _process(self, name: str) -> Process:
        if name in self.webs:
            port = self.port if name == "web" else self.more_webs[name]
            argv = self._python(
                "-m",
                "fedisora",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-render-worker",
            )
        elif name == "default" and self.clock_file is not None:
            argv = self._python(
                str(SUPPORT / "warped_worker.py"), str(self.clock_file), "--queues", "default"
            )
        else:
            argv = self._python("-m", "fedisora", "worker", "--queues", name)
        return Process(argv, self.tmp / f"{name}.log", env=self.env, cwd=ROOT)

    def start(self, name: str) -> None:
        process = self.processes.setdefault(name, self._process(name))
        process.start()
        if name in self.webs:
            self.wait_web(process, web=name)

    def wait_web(
        self, process: Process | None = None, timeout: float = 60, *, web: str = "web"
    ) -> None:
        process = process or self.processes[web]
        url = self.url_of(web)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/.well-known/nodeinfo", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not process.alive or time.monotonic() > deadline:
                raise AssertionError(f"the web process did not start:\n{process.tail()}")
            time.sleep(0.1)

    def kill(self, name: str) -> float:
        """SIGKILL process *name*; return when (time.monotonic()) it was sent."""
        at = time.monotonic()
        self.processes[name].kill()
        return at

    def stop_all(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(Exception):
                process.kill()

    def logs(self) -> str:
        parts = [f"--- {name} ---\n{p.tail(3000)}" for name, p in self.processes.items()]
        return "\n".join(parts)

    # --- the warped clock of the default worker --------------------------------------------

    def clock_offset(self) -> float:
        assert self.clock_file is not None
        try:
            return float(self.clock_file.read_text())
        except FileNotFoundError:
            return 0.0

    def set_clock_offset(self, seconds: float) -> None:
        """Move the default worker's engine clock to real time + *seconds* (never back)."""
        assert self.clock_file is not None
        assert seconds >= self.clock_offset(), "the warped clock only moves forward"
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{seconds:.3f}")
        os.replace(tmp, self.clock_file)

    async def nudge(self, queue: str = "default") -> None:
        """Ask *queue*'s worker for a sweep now (what its cron does every few seconds)."""
        from arq.connections import RedisSettings, create_pool

        pool = await create_pool(RedisSettings(host="127.0.0.1", port=self.redis.port))
        try:
            await pool.enqueue_job(
                "sweep", _job_id=f"chaos-nudge:{time.time_ns()}", _queue_name=f"fedisora:{queue}"
            )
        finally:
            await pool.aclose()

    # --- setup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """An instance made once per session (``fedisora init`` and the load's users, in a
    stopped cluster's data directory and an instance data directory) that each test's
    rig copies: the same port, so the URIs stored in it stay right."""

    pgdata: Path
    data: Path
    port: int
    users: list[dict[str, Any]]


def _env(data: Path, port: int, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        FEDISORA_DATA_DIR=str(data),
        FEDISORA_DOMAIN=f"127.0.0.1:{port}",
        FEDISORA_INSECURE_HTTP="1",
        FEDISORA_LOG_LEVEL="warning",
        FEDISORA_DATABASE_URL=database_url,
        FEDISORA_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        FEDISORA_RENDER_STEPS=str(RENDER_STEPS),
        FEDISORA_RENDER_CLIPS_PER_DAY="100000",
        FEDISORA_RENDER_GPU_SECONDS_PER_DAY="1000000",
        **extra,
    )
    return env


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@contextlib.contextmanager
def chaos_template(users: int = 4, tokens: int = 20, media: int = 80) -> Iterator[Template]:
    """``fedisora init`` and the load's users (see _setup.py) once, kept for every rig in a
    temporary directory removed after the block."""
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="fedisora-chaos-template-"))
    try:
        with postgres_cluster() as pg:
            url = pg.create_database("fedisora")
            env = _env(tmp / "data", port, url)
            init = [sys.executable, "-m", "fedisora", "init", "--admin-password", "chaos admin 1"]
            _run(init, env)
            setup = [sys.executable, str(HERE / "_setup.py"), str(users), str(tokens), str(media)]
            made = json.loads(_run(setup, env))
            pg.save(tmp / "pgdata")
        yield Template(tmp / "pgdata", tmp / "data", port, made)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def chaos_rig(
    tmp: Path,
    template: Template,
    *,
    warped: bool = False,
    webs: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[ChaosRig]:
    """The whole deployment for the block, from *template*; every process, server, mount
    and directory is gone after it, whatever happened. *warped*: the default worker's
    engine reads a clock the test moves (:meth:`ChaosRig.set_clock_offset`). *webs*: how
    many web processes serve the instance (``web``, then ``web2``, ... on ports of their
    own); *env*: more settings for every process."""
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(postgres_cluster(template.pgdata))
        redis = stack.enter_context(redis_server(tmp))
        data = tmp / "data"
        shutil.copytree(template.data, data)
        media_root = tmp / "media"
        media_fs = stack.enter_context(small_filesystem(media_root, MEDIA_BYTES))
        peer = ChaosPeer()
        peer.up()
        stack.callback(peer.down)
        database_url = pg.url("fedisora")
        env = _env(
            data,
            template.port,
            database_url,
            FEDISORA_REDIS_URL=redis.url(0),
            FEDISORA_MEDIA_ROOT=str(media_root),
            **(env or {}),
        )
        clock_file = tmp / "clock-offset" if warped else None
        rig = ChaosRig(
            tmp,
            pg,
            redis,
            peer,
            media_root,
            media_fs,
            template.port,
            env,
            database_url,
            clock_file,
        )
        stack.callback(rig.stop_all)
        rig.users = [
            LoadUser(str(u["id"]), u["username"], u["uri"], list(u["tokens"]), list(u["media"]))
            for u in template.users
        ]
        rig.more_webs = {f"web{n}": free_port() for n in range(2, webs + 1)}
        for web in rig.webs:
            rig.start(web)
        rig.start("default")
        rig.start("render")
        yield rig


async def sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
