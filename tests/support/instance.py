"""Start real fedisora instances (``fedisora init`` + ``fedisora serve``) on loopback ports."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_TEMPLATES = Path.home() / ".cache" / "fedisora-tests"


def _migrations_digest() -> str:
    """A hash of the migrations and of the models they import: names the templates."""
    sources = [*sorted((ROOT / "migrations").glob("*.py")), ROOT / "fedisora" / "models.py"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]


@contextmanager
def _templates_lock() -> Iterator[None]:
    """One process at a time makes a template (the test processes of one run start together;
    the others wait for it instead of migrating too)."""
    _TEMPLATES.mkdir(parents=True, exist_ok=True)
    with open(_TEMPLATES / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _migrated_template() -> Path:
    """An empty SQLite database with every migration applied, made once for these
    migrations (the file is named by a hash of them and of the models they import).

    Migrating a fresh database costs tortoise about 10 s of CPU (it rebuilds its model
    state at each step), and the tests start dozens of instances; ``fedisora init`` finds
    a copy of this one migrated already. tests/fedisora/test_migrations.py and the CLI's
    init test migrate for real."""
    path = _TEMPLATES / f"migrated-{_migrations_digest()}.sqlite3"
    if path.exists():
        return path
    with _templates_lock():
        if not path.exists():
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            partial.unlink(missing_ok=True)
            script = (
                "import asyncio, sys\n"
                "from fedisora.db import migrate\n"
                "asyncio.run(migrate('sqlite://' + sys.argv[1]))\n"
            )
            made = subprocess.run(
                [sys.executable, "-c", script, str(partial)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert made.returncode == 0, made.stderr[-3000:]
            os.replace(partial, path)  # whole or not at all
    return path


def copy_migrated_sqlite(target: Path) -> None:
    """Make *target* a copy of the migrated SQLite template."""
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(_migrated_template())
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # a consistent copy, whatever journal the file keeps
        finally:
            copy.close()
    finally:
        source.close()


def migrated_postgres_template(admin_url: str) -> str:
    """The name of a PostgreSQL database with every migration applied, made once for these
    migrations on that server (``CREATE DATABASE ... TEMPLATE`` copies it in a fraction of a
    second; migrating costs ~10 s of CPU). Older templates beyond the three newest are dropped."""
    import asyncio

    import asyncpg

    name = f"fedisora_template_{_migrations_digest()}"
    admin = admin_url.replace("postgres://", "postgresql://", 1)

    partial = f"{name}_partial"

    async def sql(*statements: str) -> bool:
        """Run *statements* unless the template exists; whether it does."""
        conn = await asyncpg.connect(admin)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return True
            for statement in statements:
                if statement == "DROP OLD":
                    # Keep the three newest: other checkouts on this server may be using theirs.
                    for (old,) in await conn.fetch(
                        "SELECT datname FROM pg_database "
                        "WHERE datname LIKE 'fedisora\\_template\\_%' ORDER BY oid DESC OFFSET 3"
                    ):
                        await conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
                else:
                    await conn.execute(statement)
            return False
        finally:
            await conn.close()

    script = (
        "import asyncio, sys\nfrom fedisora.db import migrate\nasyncio.run(migrate(sys.argv[1]))\n"
    )
    with _templates_lock():
        if asyncio.run(sql("DROP OLD", f'CREATE DATABASE "{partial}"')):
            return name
        made = subprocess.run(
            [sys.executable, "-c", script, admin_url.rsplit("/", 1)[0] + f"/{partial}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert made.returncode == 0, made.stderr[-3000:]
        asyncio.run(sql(f'ALTER DATABASE "{partial}" RENAME TO "{name}"'))  # whole or not
    return name


def seed_database(env: dict[str, str]) -> None:
    """Give an instance about to be initialised (its embedded SQLite database, not yet
    made) a copy of the migrated template."""
    if env.get("FEDISORA_DATABASE_URL") or not env.get("FEDISORA_DATA_DIR"):
        return
    target = Path(env["FEDISORA_DATA_DIR"]) / "fedisora.sqlite3"
    if not target.exists():
        copy_migrated_sqlite(target)


def fedisora(
    args: list[str], env: dict[str, str], timeout: float = 120, *, seed: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a ``fedisora`` command. ``init`` starts from the migrated template (see
    :func:`seed_database`) unless *seed* is false."""
    if seed and args[:1] == ["init"]:
        seed_database(env)
    return subprocess.run(
        [sys.executable, "-m", "fedisora", *args],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def cli_ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a ``fedisora`` command that succeeded cleanly."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return str(result.stdout)


def cli_fails(result: subprocess.CompletedProcess[str], message: str) -> None:
    """A ``fedisora`` command failed as a user error: exit code 1, *message*, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


TEST_RATE_LIMITS = (
    "api=1000000/5m,api_ip=1000000/5m,inbox=1000000/5m,render=100000/1h,upload=100000/30m"
)
"""The request-rate limits a test instance runs with: everything a test does comes from
127.0.0.1, often many times what one person would send in five minutes, so the per-address,
per-account and per-host limits are lifted (tests/api/test_api_rate_limits.py and
tests/web/test_web_rate_limits.py test them; the sign-up and app limits stay as shipped)."""


def instance_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_DATA_DIR=str(data_dir),
        FEDISORA_DOMAIN=f"127.0.0.1:{port}",
        FEDISORA_INSECURE_HTTP="1",
        FEDISORA_LOG_LEVEL="warning",
        FEDISORA_RATE_LIMITS=TEST_RATE_LIMITS,
    )
    env.update(extra)
    return env


def admin_headers(url: str, password: str, username: str = "admin") -> dict[str, str]:
    """An ``Authorization`` header with a token of the admin holding ``admin:read``: what
    reads ``/healthz``'s full report (anyone else gets the status only)."""
    scopes = "read admin:read"
    app = httpx.post(
        f"{url}/api/v1/apps",
        data={
            "client_name": "tests",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": scopes,
        },
    )
    assert app.status_code == 200, app.text
    token = httpx.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": app.json()["client_id"],
            "client_secret": app.json()["client_secret"],
            "username": username,
            "password": password,
            "scope": scopes,
        },
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@dataclass
class Instance:
    url: str
    env: dict[str, str]
    data_dir: Path
    admin_password: str
    process: subprocess.Popen[str]


@contextmanager
def running_instance(data_dir: Path, *serve_args: str, **extra_env: str) -> Iterator[Instance]:
    """``fedisora init`` then ``fedisora serve`` (with *serve_args*) on a free loopback port."""
    port = free_port()
    env = instance_env(data_dir, port, **extra_env)
    init = fedisora(["init", "--admin-password", "admin-password-1"], env)
    assert init.returncode == 0, init.stderr
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "fedisora", "serve", "--host", "127.0.0.1"),
            *("--port", str(port), *serve_args),
        ],
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    with serving(proc, url, lambda: proc.stdout.read() if proc.stdout else ""):
        yield Instance(url, env, data_dir, "admin-password-1", proc)


def listening(url: str) -> bool:
    """Whether something accepts TCP connections at *url*'s host and port: what a wait for
    a server to start asks before its first HTTP request (a plain connect costs microseconds
    of CPU, a refused ``httpx.get`` about 20 ms, taken from the server starting meanwhile)."""
    parts = urlsplit(url)
    with socket.socket(socket.AF_INET6 if ":" in (parts.hostname or "") else socket.AF_INET) as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname, parts.port or 80)) == 0


@contextmanager
def serving(
    proc: subprocess.Popen[Any], url: str, output: Callable[[], str], timeout: float = 60
) -> Iterator[None]:
    """Wait until the server *proc* answers at *url* (RuntimeError with its *output* when it
    exits or does not answer within *timeout* seconds); stop it on the way out, whatever
    happened (terminate, then kill after 20 s)."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if listening(url):
                    httpx.get(f"{url}/healthz", timeout=2)
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"instance did not start:\n{output()}")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_FINISHED_RENDER = """
import asyncio, sys
from fedisora.config import load_settings
from fedisora.db import close_db, init_db
from fedisora.models import Account, MediaFile, MediaKind

async def main(username):
    await init_db(load_settings())
    account = await Account.get(username=username, domain=None)
    media = await MediaFile.create(
        account=account, kind=MediaKind.VIDEO, file=f"clips/{username}-test.mp4",
        content_type="video/mp4", width=256, height=448, duration=3.0, fps=16.0,
        frames=49, provenance={"state": "trusted", "local": True},
    )
    print(media.pk)
    await close_db()

asyncio.run(main(sys.argv[1]))
"""


def finished_render(instance: Instance, username: str) -> int:
    """A video row for *username* as the render queue leaves it, in the instance's database.

    For client tests that need a postable media id without rendering (the render path itself
    is tested in tests/render and tests/api/test_api_renders.py).
    """
    done = subprocess.run(
        [sys.executable, "-c", _FINISHED_RENDER, username],
        env=instance.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])
