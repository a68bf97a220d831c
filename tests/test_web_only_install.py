"""A web-only host: `pip install fedisora` without the render extra installs no torch,
diffusers, transformers, PyAV or c2pa, and still initialises and serves an instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "transformers", "av", "c2pa")


@pytest.fixture(scope="module")
def web_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("webonly") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


def test_no_render_dependency_is_installed(web_venv: Path) -> None:
    code = f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"
    out = subprocess.run(
        [str(web_venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_web_only_host_initialises_and_serves(web_venv: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_DATA_DIR=str(tmp_path / "data"),
        FEDISORA_DOMAIN=f"127.0.0.1:{port}",
        FEDISORA_INSECURE_HTTP="1",
        FEDISORA_LOG_LEVEL="warning",
    )
    fedisora = str(web_venv / "bin" / "fedisora")
    init = subprocess.run(
        [fedisora, "init"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert init.returncode == 0, init.stderr
    proc = subprocess.Popen(
        [fedisora, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-render-worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert health.json()["database"] == {"ok": True}  # the status only, for anyone
        # No render worker runs on this host, and /healthz says so (to an admin).
        from instance import admin_headers

        password = (tmp_path / "data" / "initial-admin-password").read_text().strip()
        url = f"http://127.0.0.1:{port}"
        body = httpx.get(f"{url}/healthz", headers=admin_headers(url, password)).json()
        assert body["database"]["ok"] is True
        assert "render" in body["workers"]["missing_queues"]
        webfinger = httpx.get(
            f"http://127.0.0.1:{port}/.well-known/webfinger",
            params={"resource": f"acct:admin@127.0.0.1:{port}"},
        )
        assert webfinger.status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
