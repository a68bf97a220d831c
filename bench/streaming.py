"""Does a thousand idle streams slow the instance down, and how long does one post take to reach
them all?

Two real instances (``fedisora serve``, one web process each, embedded SQLite, on 127.0.0.1),
alike but for one thing: a helper process holds ``--streams`` anonymous server-sent event
streams of ``/api/v1/streaming/public`` open on instance B (its per-address limit raised for
the run), none on A. In one run, side by side:

1. idle: unrelated requests (a public timeline page, ``--probes`` of them) alternate between
   A and B; prints p50/p95/mean latency on each and the ratio B/A (target: within 2x).
2. memory: B's resident memory before and after the streams opened, per stream.
3. posting: ``--posts`` public clips, one a second, on both instances at once; prints the POST
   latency on each (the request does not wait for the fan-out), the fan-out time of each post
   on B (from sending the POST to the last of the streams receiving the clip, as the helper
   process saw it: its own reading of a thousand sockets is included) and the unrelated
   request latency on both while this goes on.

The server's CPU time (from /proc) is printed for each phase too: it is what the streams cost,
whatever else loads the machine, while wall times swing with that load.

Measured on the 2-core machine with other jobs running (load average about 8), 1,000 streams:
idle B/A 0.97 to 1.3 (p50 and mean); 29 KB of server memory per idle stream (mostly uvicorn's
and starlette's per-connection state); the fan-out costs 60 to 125 ms of server CPU per post
(60 to 125 us per stream, most of it the socket write), the last stream has the clip 0.2 to
0.85 s after the POST was sent, and unrelated requests while posting run at 1 to 2.4 times A's
p50. The same bench on the code before this change (main at 934c7ed, every connection running
its own queries for every event): 3.8 s of server CPU per post, the last stream 6.5 s after
the POST, which itself took 6.5 s (its queries queued behind the fan-out's), and unrelated
requests at 35 times A's p50 while posting (the finding: 3.6 s per post, 7 ms -> 930 ms).

Run: ``.venv/bin/python bench/streaming.py [--streams 1000] [--probes 300] [--posts 5]``.
Only 127.0.0.1 is used; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from instance import Instance, cli_ok, fedisora, running_instance  # noqa: E402

HOST = "127.0.0.1"
PASSWORD = "a long password 1"
PROBE = "/api/v1/timelines/public?limit=20"
WAIT = 120.0

_MEDIA = """
import asyncio, sys
from fedisora.config import load_settings
from fedisora.db import close_db, init_db
from fedisora.models import Account, MediaFile, MediaKind

async def main(username, count):
    await init_db(load_settings())
    account = await Account.get(username=username, domain=None)
    for n in range(count):
        media = await MediaFile.create(
            account=account, kind=MediaKind.VIDEO, file=f"clips/bench-{n}.mp4",
            content_type="video/mp4", width=256, height=448, duration=3.0, fps=16.0,
            frames=49, provenance={"state": "trusted", "local": True},
        )
        print(media.pk)
    await close_db()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


# --- the stream holder (this file run with "_hold PORT COUNT") ---------------------------------


async def _open_stream(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"stream refused: {head.decode(errors='replace').splitlines()[0]}")
    return reader, writer


async def _chunks(reader: asyncio.StreamReader) -> Any:
    """The chunks of a chunked HTTP/1.1 body."""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


async def _hold(port: int, count: int) -> None:
    """Open *count* public streams; report when all are subscribed, then for each clip the
    monotonic time the first and the last stream received it."""
    arrivals: dict[str, list[float]] = {}
    ready = 0
    all_ready = asyncio.Event()
    gate = asyncio.Semaphore(50)

    async def one() -> None:
        nonlocal ready
        async with gate:
            reader, _writer = await _open_stream(port, "/api/v1/streaming/public")
        buffer = b""
        async for chunk in _chunks(reader):
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                if block == b":)":
                    ready += 1
                    if ready == count:
                        all_ready.set()
                    continue
                if not block.startswith(b"event: update\n"):
                    continue
                # the payload opens with {"id":"...": read only that, so that this process's
                # own work per message stays small next to the server's
                data = block.split(b"\ndata: ", 1)[1]
                clip_id = data[7 : data.index(b'"', 7)].decode()
                seen = arrivals.setdefault(clip_id, [])
                seen.append(time.monotonic())
                if len(seen) == count:
                    print(f"fanout {clip_id} {seen[0]} {max(seen)}", flush=True)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.wait_for(all_ready.wait(), WAIT)
    print("ready", flush=True)
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        task.result()


# --- the bench ---------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """CPU time *pid* has used (user + system): unlike wall time, not inflated when other
    processes load the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(instances: dict[str, Instance]) -> dict[str, float]:
    return {name: _cpu_seconds(inst.process.pid) for name, inst in instances.items()}


def _rss_kb(pid: int) -> int:
    """Resident memory of *pid* (``fedisora serve`` with one worker runs uvicorn in-process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _token(inst: Instance, username: str) -> str:
    cli_ok(
        fedisora(
            ["createuser", username, "--email", f"{username}@example.com", "--password", PASSWORD],
            inst.env,
        )
    )
    with httpx.Client(base_url=inst.url, timeout=30) as http:
        app = http.post(
            "/api/v1/apps",
            data={
                "client_name": "bench",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write",
            },
        ).json()
        r = http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "username": f"{username}@example.com",
                "password": PASSWORD,
                "scope": "read write",
            },
        )
        r.raise_for_status()
        return str(r.json()["access_token"])


def _media(inst: Instance, username: str, count: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _MEDIA, username, str(count)],
        env=inst.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    return done.stdout.split()


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  "
        f"mean {statistics.fmean(ordered) * 1000:7.1f} ms"
    )


class _Prober:
    """Unrelated requests to each instance. The API allows 300 requests per 5 minutes per
    address, so the requests come from a fresh loopback address every :data:`PER_ADDRESS`."""

    PER_ADDRESS = 250

    def __init__(self, instances: dict[str, Instance]) -> None:
        self.instances = instances
        self._sent = 0
        self._address = 0
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def _client(self, name: str) -> httpx.AsyncClient:
        if self._sent // self.PER_ADDRESS != self._address or not self._clients:
            await self.aclose()
            self._address = self._sent // self.PER_ADDRESS
            here = f"127.0.2.{self._address + 1}"
            self._clients = {
                key: httpx.AsyncClient(
                    base_url=inst.url,
                    timeout=60,
                    transport=httpx.AsyncHTTPTransport(local_address=here),
                )
                for key, inst in self.instances.items()
            }
        return self._clients[name]

    async def rounds(self, count: int) -> dict[str, list[float]]:
        """*count* requests on each instance, alternating."""
        times: dict[str, list[float]] = {name: [] for name in self.instances}
        for _ in range(count):
            for name in self.instances:
                client = await self._client(name)
                started = time.perf_counter()
                r = await client.get(PROBE)
                times[name].append(time.perf_counter() - started)
                r.raise_for_status()
            self._sent += 1
        return times

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients = {}


def _limit_settings(streams: int) -> dict[str, str]:
    """Raise B's per-address limit for the run (when the code under test has one)."""
    from fedisora import config

    if "STREAMS_PER_IP" in getattr(config, "_PARSERS", {}):
        return {"FEDISORA_STREAMS_PER_IP": str(streams + 10)}
    return {}


@contextmanager
def _holder(port: int, count: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "_hold", str(port), str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def _read_line(stream: IO[str], prefix: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError("the stream holder stopped")
        if line.startswith(prefix):
            return line.strip()
    raise TimeoutError(prefix)


async def _bench(args: argparse.Namespace, a: Instance, b: Instance) -> None:
    tokens = {"A": _token(a, "poster"), "B": _token(b, "poster")}
    media = {"A": _media(a, "poster", args.posts), "B": _media(b, "poster", args.posts)}
    instances = {"A": a, "B": b}
    clients = {
        name: httpx.AsyncClient(base_url=inst.url, timeout=60) for name, inst in instances.items()
    }
    prober = _Prober(instances)
    try:
        await prober.rounds(20)  # warm up
        rss_before = _rss_kb(b.process.pid)
        with _holder(int(b.url.rsplit(":", 1)[1]), args.streams) as holder:
            assert holder.stdout is not None
            opened = time.monotonic()
            _read_line(holder.stdout, "ready", time.monotonic() + WAIT)
            print(f"{args.streams} idle streams open on B after {time.monotonic() - opened:.1f} s")
            await asyncio.sleep(2)
            rss_after = _rss_kb(b.process.pid)

            cpu = _cpu(instances)
            idle = await prober.rounds(args.probes)
            idle_cpu = {k: v - cpu[k] for k, v in _cpu(instances).items()}
            print(f"\nunrelated requests (GET {PROBE}), alternating, {args.probes} each:")
            for name in instances:
                label = "B (with streams)" if name == "B" else "A (no streams)  "
                print(f"  {label} {_summary(idle[name])}")
            ratio = statistics.median(idle["B"]) / statistics.median(idle["A"])
            mean_ratio = statistics.fmean(idle["B"]) / statistics.fmean(idle["A"])
            print(
                f"  ratio B/A: p50 {ratio:.2f}, mean {mean_ratio:.2f} "
                f"(target: within 2x: {'yes' if max(ratio, mean_ratio) <= 2 else 'NO'})"
            )
            print(
                f"  server CPU meanwhile: A {idle_cpu['A']:.2f} s, B {idle_cpu['B']:.2f} s "
                f"(B/A {idle_cpu['B'] / max(idle_cpu['A'], 0.01):.2f})"
            )
            print(
                f"\nmemory of B: {rss_before / 1024:.1f} MB before, {rss_after / 1024:.1f} MB with "
                f"the streams: {(rss_after - rss_before) / args.streams:.1f} KB per idle stream"
            )

            post_times: dict[str, list[float]] = {"A": [], "B": []}
            fanouts: list[tuple[float, float]] = []
            busy: dict[str, list[float]] = {"A": [], "B": []}
            stop = asyncio.Event()

            async def probing() -> None:
                while not stop.is_set():
                    got = await prober.rounds(1)
                    for name, values in got.items():
                        busy[name] += values

            async def post(name: str, n: int) -> tuple[str, float]:
                started = time.perf_counter()
                sent = time.monotonic()
                r = await clients[name].post(
                    "/api/v1/statuses",
                    headers={"Authorization": f"Bearer {tokens[name]}"},
                    data={"status": f"bench {n}", "media_ids[]": media[name][n]},
                )
                r.raise_for_status()
                post_times[name].append(time.perf_counter() - started)
                return str(r.json()["id"]), sent

            cpu = _cpu(instances)
            probes = asyncio.create_task(probing())
            loop = asyncio.get_running_loop()
            for n in range(args.posts):
                (clip_id, sent), _ = await asyncio.gather(post("B", n), post("A", n))
                line = await loop.run_in_executor(
                    None, _read_line, holder.stdout, f"fanout {clip_id}", time.monotonic() + WAIT
                )
                _, _, first, last = line.split()
                fanouts.append((float(first) - sent, float(last) - sent))
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - sent)))
            stop.set()
            await probes
            busy_cpu = {k: v - cpu[k] for k, v in _cpu(instances).items()}
            print(f"\nposting {args.posts} public clips, one a second, on both at once:")
            for name in ("A", "B"):
                print(f"  POST /api/v1/statuses on {name}: {_summary(post_times[name])}")
            firsts = [f for f, _ in fanouts]
            lasts = [last for _, last in fanouts]
            first, last = statistics.median(firsts), statistics.median(lasts)
            print(
                f"  fan-out on B to {args.streams} streams (POST sent -> received): first "
                f"{first * 1000:.0f} ms, last {last * 1000:.0f} ms median "
                f"(max {max(lasts) * 1000:.0f} ms)"
            )
            print("  unrelated requests meanwhile:")
            for name in ("A", "B"):
                print(f"    {name} {_summary(busy[name])}")
            print(
                "    ratio B/A: p50 "
                f"{statistics.median(busy['B']) / statistics.median(busy['A']):.2f}, mean "
                f"{statistics.fmean(busy['B']) / statistics.fmean(busy['A']):.2f}"
            )
            extra = (busy_cpu["B"] - busy_cpu["A"]) / args.posts
            print(
                f"  server CPU: A {busy_cpu['A']:.2f} s, B {busy_cpu['B']:.2f} s: the fan-out "
                f"costs B {extra * 1000:.0f} ms of CPU per post, "
                f"{extra / args.streams * 1e6:.0f} us per stream"
            )
    finally:
        await prober.aclose()
        for client in clients.values():
            await client.aclose()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_hold":
        asyncio.run(_hold(int(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--posts", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("FEDISORA_REDIS_URL", None)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        a = stack.enter_context(running_instance(Path(tmp) / "a", "--no-render-worker"))
        b = stack.enter_context(
            running_instance(Path(tmp) / "b", "--no-render-worker", **_limit_settings(args.streams))
        )
        asyncio.run(_bench(args, a, b))


if __name__ == "__main__":
    main()
