"""Does a login flood slow unrelated requests? Side by side, in one run.

Starts a real fedisora web process (``fedisora init``, then uvicorn on the app factory, one
process, SQLite, on 127.0.0.1; no render worker) and measures the latency of an unrelated
request (``GET /``, one at a time) in alternating rounds: quiet, then while
``--flooders`` browsers log in over and over as fast as they can through the web login form
(each a CSRF-checked POST whose password is right, so every one costs a full scrypt check;
wrong ones would be refused by the password guard before hashing after 25).

Prints, per kind of round, the unrelated request's p50 and p95 latency and how many ran, the
logins per second the flood achieved (and any 503s of the bounded hasher), and the ratios
flood/quiet of p50 and p95. Before scrypt moved off the event loop, 21 logins a second took
unrelated requests from 37 ms to 700 ms (a ratio near 19); with it on its own thread(s), the
ratio should stay small (target: p50 ratio <= 2).

Run: ``.venv/bin/python bench/login_flood.py`` (options: ``--help``). Only 127.0.0.1 is
used; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOST = "127.0.0.1"
PASSWORD = "bench-password-1"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def web_process(data_dir: Path) -> Iterator[str]:
    """``fedisora init`` in *data_dir*, then the app under uvicorn; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_DATA_DIR=str(data_dir),
        FEDISORA_DOMAIN=f"{HOST}:{port}",
        FEDISORA_INSECURE_HTTP="1",
        FEDISORA_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    init = subprocess.run(
        [sys.executable, "-m", "fedisora", "init", "--admin-password", PASSWORD],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if init.returncode != 0:
        raise SystemExit(f"fedisora init failed:\n{init.stderr}")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "fedisora.app:app_from_env"),
            *("--host", HOST, "--port", str(port), "--log-level", "warning"),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    err = server.stderr.read() if server.stderr else ""
                    raise SystemExit(f"the web process did not start:\n{err}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def probe(url: str, seconds: float) -> list[float]:
    """Latencies (ms) of the unrelated request, one after another, for *seconds*."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            r = await http.get("/", headers={"accept": "text/html"})
            latencies.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text
    return latencies


async def flooder(url: str, stop: asyncio.Event, statuses: Counter[int]) -> None:
    """One browser logging in again and again through the form, until *stop*."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while not stop.is_set():
            page = await http.get("/login")
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert found is not None, page.text[:500]
            r = await http.post(
                "/login",
                data={"login": "admin", "password": PASSWORD, "csrf": found.group(1)},
            )
            statuses[r.status_code] += 1
            if r.status_code == 503:
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))


async def measure(url: str, rounds: int, seconds: float, flooders: int) -> None:
    quiet: list[float] = []
    flooded: list[float] = []
    statuses: Counter[int] = Counter()
    flood_time = 0.0
    await probe(url, 1.0)  # warm up
    for n in range(rounds):
        quiet += await probe(url, seconds)
        stop = asyncio.Event()
        before = statuses[303]
        tasks = [asyncio.create_task(flooder(url, stop, statuses)) for _ in range(flooders)]
        await asyncio.sleep(0.5)  # let the flood start
        start = time.monotonic()
        flooded += await probe(url, seconds)
        flood_time += time.monotonic() - start
        stop.set()
        await asyncio.gather(*tasks)
        print(f"round {n + 1}: {statuses[303] - before} logins during the flood", flush=True)

    def row(name: str, values: list[float]) -> tuple[float, float]:
        p50 = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"{name:>8}: p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({len(values)} requests)")
        return p50, p95

    print("\nunrelated request GET /")
    q50, q95 = row("quiet", quiet)
    f50, f95 = row("flood", flooded)
    print(
        f"\nlogin flood: {statuses[303] / max(flood_time, 1e-9):.1f} logins/s "
        f"({flooders} browsers; statuses {dict(statuses)})"
    )
    print(f"ratio flood/quiet: p50 {f50 / q50:.2f}x  p95 {f95 / q95:.2f}x  (target p50 <= 2x)")
    from fedisora.services.passwords import default_hasher, hash_password, verify_password

    stored = hash_password(PASSWORD)
    start = time.perf_counter()
    for _ in range(5):
        verify_password(PASSWORD, stored)
    cost = (time.perf_counter() - start) / 5
    threads = default_hasher().threads
    print(
        f"one scrypt check here: {cost * 1000:.0f} ms; the server hashes on {threads} "
        f"thread(s): at most {threads / cost:.1f} logins/s, the rest wait (or get a 503)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase of a round")
    parser.add_argument("--flooders", type=int, default=8, help="browsers logging in at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, web_process(Path(tmp)) as url:
        asyncio.run(measure(url, args.rounds, args.seconds, args.flooders))


if __name__ == "__main__":
    main()
