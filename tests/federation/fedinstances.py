"""Real fedisora instances for tests: ``fedisora init`` + ``fedisora serve`` on loopback.

Each instance has its own data directory and SQLite database, listens on a free port of
127.0.0.1 (or of another loopback address: two instances that must not share a host, as a
domain block between them needs), and runs with FEDISORA_INSECURE_HTTP=1 (plain http and
loopback peers allowed). Users act through ``_peer.py`` in separate processes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from instance import TEST_RATE_LIMITS, listening, seed_database
from loopback import OnLoopback

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(__file__).with_name("_peer.py")
ADMIN_PASSWORD = "correct horse battery"
"""The password ``fedisora init`` gives each instance's admin here (see :func:`start`)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Instance(OnLoopback):
    name: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def env_dir(self) -> Path:
        """Where the instance's data directory and server log are (the test's tmp dir)."""
        return Path(self.env["FEDISORA_DATA_DIR"]).parent

    @property
    def domain(self) -> str:
        """host:port, or the host alone on port 80 (http's own port, as a deployment has)."""
        return self.host if self.port == 80 else f"{self.host}:{self.port}"

    def act(self, *args: str) -> Any:
        out = subprocess.run(
            [sys.executable, str(PEER), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, f"{self.name} {args}: {out.stderr[-3000:]}"
        return json.loads(out.stdout.strip().splitlines()[-1])


def start(
    name: str,
    tmp: Path,
    host: str = "127.0.0.1",
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> Instance:
    """Instance *name* on *port* of *host* (a free one by default), its environment with
    *extra_env* added."""
    port = port or free_port(host)
    data = tmp / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_DATA_DIR=str(data),
        FEDISORA_DOMAIN=Instance(name, port, {}, host=host).domain,
        FEDISORA_INSECURE_HTTP="1",
        FEDISORA_LOG_LEVEL="warning",
        FEDISORA_RATE_LIMITS=TEST_RATE_LIMITS,  # as every test instance (tests/support)
    )
    env.update(extra_env or {})
    instance = Instance(name, port, env, host=host)
    seed_database(env)
    init = subprocess.run(
        [sys.executable, "-m", "fedisora", "init", "--admin-password", ADMIN_PASSWORD],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr[-3000:]
    serve(instance, tmp)
    return instance


@contextmanager
def instances(tmp: Path, *names: str) -> Iterator[tuple[Instance, ...]]:
    """An instance per name for the block, in that order; those that started are stopped
    after it (whatever happened)."""
    started: list[Instance] = []
    try:
        for name in names:
            started.append(start(name, tmp))
        yield tuple(started)
    finally:
        for instance in started:
            stop(instance)


@contextmanager
def two_instances(tmp: Path, b_host: str = "127.0.0.1") -> Iterator[tuple[Instance, Instance]]:
    """Instances ``a`` (on 127.0.0.1) and ``b`` (on *b_host*, another loopback address for
    two hosts) for the block; those that started are stopped after it."""
    started: list[Instance] = []
    try:
        started.append(start("a", tmp))
        started.append(start("b", tmp, b_host))
        yield started[0], started[1]
    finally:
        for instance in started:
            stop(instance)


def serve(instance: Instance, tmp: Path) -> None:
    """Start (or restart) the instance's server and wait until it answers."""
    log_path = tmp / f"{instance.name}.log"
    with log_path.open("ab") as log:
        instance.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fedisora",
                "serve",
                "--host",
                instance.host,
                "--port",
                str(instance.port),
                "--no-render-worker",
            ],
            env=instance.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise AssertionError(f"{instance.name} exited: {log_path.read_text()[-3000:]}")
        if listening(instance.base):  # no HTTP request (~20 ms of CPU) until something listens
            try:
                if httpx.get(f"{instance.base}/.well-known/nodeinfo", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"{instance.name} did not start: {log_path.read_text()[-3000:]}")


def stop(instance: Instance) -> None:
    if instance.process is not None and instance.process.poll() is None:
        instance.process.terminate()
        try:
            instance.process.wait(15)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait()


def wait_for(
    instance: Instance,
    check: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 30,
) -> Any:
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = instance.act("state")
        if check(state):
            return state
        time.sleep(0.5)
    raise AssertionError(f"{instance.name}: timed out waiting for {what}; state {state}")


def api_headers(instance: Instance, scopes: str, username: str = "admin") -> dict[str, str]:
    """An ``Authorization`` header for the Mastodon API: a token of *username* (the admin
    by default) with *scopes*, through the real app and OAuth password-grant endpoints."""
    with httpx.Client(base_url=instance.base, timeout=30) as http:
        app = http.post(
            "/api/v1/apps",
            data={
                "client_name": "tests",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": scopes,
            },
        )
        assert app.status_code == 200, app.text
        token = http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": app.json()["client_id"],
                "client_secret": app.json()["client_secret"],
                "username": username,
                "password": ADMIN_PASSWORD,
                "scope": scopes,
            },
        )
        assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def form_csrf(page: str) -> str:
    """The CSRF token of the (first) form of a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[-2000:]
    return found.group(1)


@contextmanager
def web_session(instance: Instance, username: str = "admin") -> Iterator[httpx.Client]:
    """A browser on *instance*'s web pages for the block, logged in as *username* (the admin
    by default) through the real login form: for the admin pages that have no API."""
    with httpx.Client(base_url=instance.base, timeout=30, headers={"accept": "text/html"}) as http:
        page = http.get("/login")
        assert page.status_code == 200, page.text[-2000:]
        form = {"login": username, "password": ADMIN_PASSWORD, "csrf": form_csrf(page.text)}
        r = http.post("/login", data=form)
        assert r.status_code == 303, r.text[-2000:]
        yield http
