"""A real instance started as the README starts it, answering over HTTP on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from instance import ROOT, Instance, admin_headers, copy_migrated_sqlite, running_instance


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("instance")) as inst:
        yield inst


def _healthy(instance: Instance) -> httpx.Response:
    """The admin's ``/healthz`` once it is ok (the render worker, a process of its own,
    registers after it has imported torch: seconds on a busy machine), or after 60 s."""
    deadline = time.monotonic() + 60
    admin = admin_headers(instance.url, instance.admin_password)
    while True:
        r = httpx.get(f"{instance.url}/healthz", headers=admin)
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_healthz_reports_database_redis_and_workers(instance: Instance) -> None:
    r = _healthy(instance)
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "backend": "sqlite"}
    assert body["redis"]["configured"] is False and body["redis"]["ok"] is True
    queues = {q for w in body["workers"]["workers"] for q in w["queues"]}
    assert {"default", "render"} <= queues
    # The render queue is served by a separate process, not by the web server.
    pids = {w["pid"] for w in body["workers"]["workers"]}
    assert len(pids) == 2
    # Anyone else reads the status only (tests/api/test_api_healthz.py).
    public = httpx.get(f"{instance.url}/healthz").json()
    assert public == {"status": "ok", **{p: {"ok": True} for p in ("database", "redis", "workers")}}


def test_errors_are_json_on_api_paths_and_pages_in_the_browser(instance: Instance) -> None:
    r = httpx.get(f"{instance.url}/api/v1/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = httpx.get(f"{instance.url}/no-such-page", headers={"accept": "text/html"})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "Not Found" in r.text and "Traceback" not in r.text
    r = httpx.post(f"{instance.url}/healthz")
    assert r.status_code == 405 and "error" in r.json()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_login_and_admin_page(instance: Instance) -> None:
    with httpx.Client(base_url=instance.url) as client:
        r = client.get("/admin", headers={"accept": "text/html"})
        assert r.status_code == 401 and "Log in" in r.text
        # A login form posted from elsewhere (no CSRF cookie and token) logs no one in.
        r = client.post(
            "/login", data={"login": "admin@localhost", "password": instance.admin_password}
        )
        assert r.status_code == 403 and "fedisora_session" not in client.cookies
        csrf = _csrf(client.get("/login").text)
        r = client.post("/login", data={"login": "admin", "password": "wrong", "csrf": csrf})
        assert r.status_code == 401 and "do not match" in r.text
        r = client.post("/login", data={"login": "", "password": "", "csrf": csrf})
        assert r.status_code == 400
        r = client.post(
            "/login",
            data={
                "login": "admin@localhost",
                "password": instance.admin_password,
                "next": "https://evil.example/",
                "csrf": csrf,
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert _healthy(instance).status_code == 200
        r = client.get("/admin")
        assert r.status_code == 200
        assert "Durable work" in r.text and "render jobs" in r.text and "Health: ok" in r.text
        assert "remote media checks" in r.text and "remote quote checks" in r.text
        assert "outbox events" in r.text

        # Logging out: a GET only asks; the POST ends the session, and its cookie, replayed,
        # opens nothing.
        cookie = client.cookies["fedisora_session"]
        r = client.get("/logout")
        assert r.status_code == 200 and "Log out @admin" in r.text
        assert client.get("/admin").status_code == 200
        r = client.post("/logout", data={"csrf": "forged"})
        assert r.status_code == 403 and client.get("/admin").status_code == 200
        r = client.post("/logout", data={"csrf": _csrf(client.get("/logout").text)})
        assert r.status_code == 303 and "fedisora_session" not in client.cookies
    replayed = httpx.get(
        f"{instance.url}/admin",
        headers={"accept": "text/html", "cookie": f"fedisora_session={cookie}"},
    )
    assert replayed.status_code == 401


def test_web_process_never_imports_torch(tmp_path: Path) -> None:
    """Start the app's lifespan in a fresh interpreter and look at what got imported. Its
    database is a copy of the migrated template (migrate finds nothing to do; migrating
    afresh, ~10 s of CPU, is tests/test_web_only_install.py's, in a venv without torch)."""
    copy_migrated_sqlite(tmp_path / "fedisora.sqlite3")
    code = textwrap.dedent(
        """
        import asyncio, sys
        from fedisora.config import load_settings
        from fedisora.app import create_app
        from fedisora.db import migrate

        async def main():
            d = sys.argv[1]
            s = load_settings({"FEDISORA_DATA_DIR": d, "FEDISORA_SECRET_KEY": "s" * 40})
            await migrate(s)
            app = create_app(s)
            async with app.router.lifespan_context(app):
                await asyncio.sleep(0.5)
                print(sorted(m for m in ("torch", "diffusers", "transformers", "av", "c2pa")
                             if m in sys.modules))
        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_sqlite_database_lives_under_the_data_dir(instance: Instance) -> None:
    assert (Path(instance.data_dir) / "fedisora.sqlite3").is_file()
    assert (Path(instance.data_dir) / "provenance" / "chain.pem").is_file()
    assert (Path(instance.data_dir) / "media").is_dir()


def test_serve_with_several_workers(tmp_path: Path) -> None:
    """`serve --workers 2`: two web processes answer on the one port, sharing the database."""
    with running_instance(tmp_path, "--workers", "2", "--no-render-worker") as inst:
        deadline = time.monotonic() + 30
        while True:  # uvicorn starts its workers one after the other
            workers = subprocess.run(
                ["pgrep", "-P", str(inst.process.pid), "-f", "multiprocessing.spawn"],
                capture_output=True,
                text=True,
            ).stdout.split()
            if len(workers) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(workers) == 2
        admin = admin_headers(inst.url, inst.admin_password)
        with httpx.Client(base_url=inst.url, headers=admin) as client:
            # Each web process runs durable work in-process (no Redis) and reports its beat.
            runners: set[int] = set()
            while time.monotonic() < deadline + 30:
                report = client.get("/healthz").json()
                assert report["database"]["ok"]
                beats = report["workers"]["workers"]
                runners = {w["pid"] for w in beats if w["kind"] == "inprocess"}
                if len(runners) == 2:
                    break
                time.sleep(0.2)
            assert runners == {int(pid) for pid in workers}
            info = client.get("/api/v1/instance").json()
            assert info["uri"] == inst.url.removeprefix("http://")
    result = subprocess.run(
        [sys.executable, "-m", "fedisora", "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "must be 1 or more" in result.stderr


def test_render_worker_exits_when_serve_is_killed(tmp_path: Path) -> None:
    """Even a SIGKILLed `serve` leaves no render worker behind."""
    import os
    import signal

    with running_instance(tmp_path) as inst:
        children = subprocess.run(
            ["pgrep", "-P", str(inst.process.pid), "-f", "fedisora worker"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(children) == 1
        inst.process.send_signal(signal.SIGKILL)
        inst.process.wait()
        worker = int(children[0])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the render worker outlived its serve process")
