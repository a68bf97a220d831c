"""The `fedisora` command as a user runs it: clear errors, exit codes, no tracebacks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from instance import cli_fails, cli_ok, fedisora, free_port, instance_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return instance_env(tmp_path / "data", free_port())


def test_init_is_idempotent_and_prints_admin_login(env: dict[str, str]) -> None:
    out = cli_ok(fedisora(["init"], env, seed=False))  # a fresh database, migrated for real
    assert "created admin @admin <admin@localhost>" in out
    assert "admin password: " in out
    data = Path(env["FEDISORA_DATA_DIR"])
    password = (data / "initial-admin-password").read_text().strip()
    assert password in out
    assert "FEDISORA_SECRET_KEY=" in (data / "fedisora.env").read_text()
    again = cli_ok(fedisora(["init"], env))
    assert "already exists" in again and password not in again
    assert (data / "provenance" / "root.pem").read_text().startswith("-----BEGIN CERTIFICATE")


def test_createuser_and_its_errors(env: dict[str, str]) -> None:
    cli_ok(fedisora(["init"], env))
    out = cli_ok(
        fedisora(
            ["createuser", "bob", "--email", "bob@example.com", "--password", "a good password"],
            env,
        )
    )
    assert "created user @bob" in out
    cli_fails(
        fedisora(
            ["createuser", "bob", "--email", "b2@example.com", "--password", "a good password"], env
        ),
        "error: username 'bob' is taken",
    )
    cli_fails(
        fedisora(["createuser", "eve", "--email", "nope", "--password", "a good password"], env),
        "is not a valid e-mail",
    )
    cli_fails(
        fedisora(["createuser", "eve", "--email", "e@example.com", "--password", "x"], env),
        "password must be",
    )
    usage = fedisora(["createuser", "eve"], env)
    assert usage.returncode == 2 and "--email" in usage.stderr


def test_check_reports_problems_with_exit_code_1(env: dict[str, str]) -> None:
    cli_fails(fedisora(["check"], env), "FEDISORA_SECRET_KEY is not set")
    cli_ok(fedisora(["init"], env))
    assert cli_ok(fedisora(["check"], env)).strip().endswith("ok")
    bad_redis = dict(env, FEDISORA_REDIS_URL="redis://127.0.0.1:1/0")
    cli_fails(fedisora(["check"], bad_redis), "error: redis redis://127.0.0.1:1/0")
    no_program = dict(env, FEDISORA_LIKENESS_CHECK="command:/nowhere/check-faces")
    cli_fails(
        fedisora(["check"], no_program),
        "error: FEDISORA_LIKENESS_CHECK: /nowhere/check-faces is not an executable file",
    )
    bad_db = dict(env, FEDISORA_DATABASE_URL="postgres://postgres@127.0.0.1:1/none")
    cli_fails(fedisora(["check"], bad_db), "error: database postgres://postgres@127.0.0.1:1/none")
    cli_fails(
        fedisora(["check"], dict(env, FEDISORA_DOMAIN="bad domain")),
        "error: FEDISORA_DOMAIN must be a host name",
    )
    cli_fails(fedisora(["check"], dict(env, FEDISORA_TYPO="1")), "unknown setting FEDISORA_TYPO")


def test_check_and_migrate_on_postgres_and_redis(
    env: dict[str, str], postgres_url: str, redis_url: str
) -> None:
    pg = dict(
        env,
        FEDISORA_DATABASE_URL=postgres_url,
        FEDISORA_REDIS_URL=redis_url,
        FEDISORA_SECRET_KEY="s" * 40,
    )
    assert "migrations applied" in cli_ok(fedisora(["migrate"], pg))
    out = cli_ok(fedisora(["check"], pg))
    assert "redis: " + redis_url in out and out.strip().endswith("ok")


def test_serve_without_init_says_what_to_do(env: dict[str, str]) -> None:
    cli_fails(fedisora(["serve", "--port", "1"], env), "run `fedisora init` first")


def test_worker_with_redis_heartbeats_and_stops_cleanly(
    env: dict[str, str], postgres_url: str, redis_url: str
) -> None:
    import signal
    import subprocess
    import sys
    import time

    from instance import ROOT

    pg = dict(
        env,
        FEDISORA_DATABASE_URL=postgres_url,
        FEDISORA_REDIS_URL=redis_url,
        FEDISORA_SECRET_KEY="s" * 40,
    )
    cli_ok(fedisora(["migrate"], pg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedisora", "worker", "--queues", "default,render"],
        env=pg,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "arq worker for queues default, render"
        check = """
import asyncio, sys
from fedisora.db import init_db, close_db
from fedisora.health import check_workers
async def main():
    await init_db(sys.argv[1])
    report = await check_workers()
    await close_db()
    print(report["ok"], sorted({w["kind"] for w in report["workers"]}))
asyncio.run(main())
"""
        deadline = time.monotonic() + 30
        while True:
            out = subprocess.run(
                [sys.executable, "-c", check, postgres_url],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if out.stdout.strip() == "True ['arq']" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert out.stdout.strip() == "True ['arq']", out
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_serve_on_a_busy_port_exits_with_the_reason(env: dict[str, str]) -> None:
    """No hang: a failed start ends the process (no connection thread keeps it alive)."""
    import socket

    cli_ok(fedisora(["init"], env))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = fedisora(["serve", "--port", str(port), "--no-render-worker"], env, timeout=60)
    assert result.returncode != 0
    assert "address already in use" in result.stderr


def _render_workers_of(parent: int) -> list[int]:
    """The pids of ``fedisora worker --queues render`` processes whose parent is *parent*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"worker" in cmdline and b"render" in cmdline:
            found.append(int(entry.name))
    return found


def test_serve_starts_its_render_worker_again_when_it_dies(env: dict[str, str]) -> None:
    """The embedded render worker (no Redis) killed (the OOM killer, say): ``serve`` starts
    it again, and ends it when it stops. It used to run it once, and render nothing after."""
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from instance import ROOT

    cli_ok(fedisora(["init"], env))
    port = env["FEDISORA_DOMAIN"].rsplit(":", 1)[1]
    serve = subprocess.Popen(
        [sys.executable, "-m", "fedisora", "serve", "--port", port],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def wait_for(predicate: Any, what: str, limit: float = 60) -> Any:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
            time.sleep(0.2)
        raise AssertionError(f"{what}: not within {limit} s")

    try:
        wait_for(
            lambda: (
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                if _ok_to_connect(port)
                else None
            ),
            "serve answering",
        )
        [first] = wait_for(lambda: _render_workers_of(serve.pid), "the render worker")
        os.kill(first, signal.SIGKILL)
        [second] = wait_for(
            lambda: [p for p in _render_workers_of(serve.pid) if p != first],
            "the render worker started again",
            limit=20,
        )
        assert second != first
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    # uvicorn ends the process by raising the signal again, so the worker sees its parent
    # gone (``--parent-pid``) and stops.
    deadline = time.monotonic() + 30
    while Path(f"/proc/{second}").exists():
        assert time.monotonic() < deadline, "the render worker outlived serve"
        time.sleep(0.2)
    assert "the render worker exited with code -9; starting it again" in (
        serve.stderr.read() if serve.stderr else ""
    )


def _ok_to_connect(port: str) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def test_init_records_the_url_settings_for_later_commands(env: dict[str, str]) -> None:
    """scripts/serve gives FEDISORA_INSECURE_HTTP and FEDISORA_DOMAIN in the environment only;
    a createuser run later in a plain shell must still make http actor ids at that domain."""
    cli_ok(fedisora(["init"], env))
    data = Path(env["FEDISORA_DATA_DIR"])
    recorded = (data / "fedisora.env").read_text()
    assert "FEDISORA_INSECURE_HTTP=1\n" in recorded
    assert f"FEDISORA_DOMAIN={env['FEDISORA_DOMAIN']}\n" in recorded
    shell = {k: v for k, v in env.items() if k not in ("FEDISORA_INSECURE_HTTP", "FEDISORA_DOMAIN")}
    out = cli_ok(
        fedisora(
            ["createuser", "bob", "--email", "bob@example.com", "--password", "a good password"],
            shell,
        )
    )
    assert f"(http://{env['FEDISORA_DOMAIN']}/users/bob)" in out
    # Running init again with another value does not rewrite what URLs were made with.
    again = fedisora(["init"], {**env, "FEDISORA_DOMAIN": "other.example"})
    assert again.returncode == 0 and "FEDISORA_DOMAIN is 'other.example' here" in again.stderr
    assert (data / "fedisora.env").read_text() == recorded
