"""How fast is the read path? Timelines, the account page and the clip page next to a bare
endpoint serving the same bytes, in one run (issue 20, point 6).

Builds a scratch PostgreSQL database (FEDISORA_TEST_POSTGRES's server, default the local one)
with ``fedisora init``, then fills it: ``--accounts`` local accounts following each other,
the newest ``--recent`` clips made through the real services (captions with hashtags and
mentions, likes, boosts, remixes, comments: what a page shows), and older clips copied from
them with SQL up to ``--clips`` in all (they make the tables as large as an instance's; the
pages read the newest). Two servers then run side by side on 127.0.0.1, each a child process
under uvicorn with the same options (one process, no access log):

- fedisora: the app exactly as ``fedisora serve`` builds it, on that database (no Redis);
- bare: a starlette app answering each measured path with the bytes fedisora answered it
  with (same status, content type and ``Link`` header), read once at start.

``wrk`` (Debian's package; installed by ``.ci``-style ``apt-get`` when missing, as the
README says) drives each path for ``--duration`` seconds with ``--connections`` connections
on one thread, alternating fedisora and bare, ``--rounds`` times; printed: requests/s, p50
and p99 of each, and the ratio fedisora/bare of requests/s per path (median of rounds;
target >= 0.10). Then the same runs by the CPU time each server process used per request
(from ``/proc``): the throughput each would reach with a core of its own, which is what the
requests/s say on a quiet machine with the cores for it, and what they cannot say on two
shared cores (wrk, PostgreSQL and the server take turns). Then the CPU per page of each app
called in this process over ASGI, without any HTTP (steadier still, a little flattering).

Then, in this process, the number of SQL queries a page costs at limits 5, 20 and 40
(counted on tortoise's query log): the target is a count that does not grow with the size
(never more at a larger size than at 5; a larger page may need one query less, when the
rows it would load were read already, e.g. the authors of the clips remixed on it).

``--profile`` also runs the public timeline in this process under cProfile and prints the
functions that take the time.

Run: ``.venv/bin/python bench/read_path.py`` (about 3 minutes; ``--quick`` for 1 round of
3 s). Only 127.0.0.1 is used.

Measured on 2026-12-07 (2 cores, nothing else running; wrk, PostgreSQL and the server on the
same cores), fedisora / bare, three full runs after kept pages came to be checked by their
reads' row versions in one statement, and requests for a page during its check to share the
next one: requests/s ratios 0.205-0.229 (public timeline), 0.198-0.260 (an account's
statuses), 0.278-0.323 (a clip page); server CPU per request 0.35-0.39 / 0.087-0.089 ms
(0.215-0.245), 0.32-0.34 / 0.071-0.096 ms (0.221-0.272), 0.21-0.26 / 0.061-0.081 ms
(0.283-0.312). The same day before those two changes: 0.072-0.096, 0.073-0.101, 0.118-0.130.
Those are a visitor's unchanged pages (:mod:`fedisora.api.replay_cache`); a page made anew
(its rows changed) costs 1.4-2.5 ms in process. Issue 20 measured 0.018 before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import os
import pstats
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
# bench/ itself is not on the path: its web.py would stand for the `web` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]

HOST = "127.0.0.1"
ADMIN = os.environ.get("FEDISORA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
TARGET = 0.10
START_TIMEOUT = 120.0


# --- the data -----------------------------------------------------------------------------------


async def fill(env: dict[str, str], accounts: int, recent: int, clips: int) -> dict[str, Any]:
    """The instance's content, through the services (the newest *recent* clips) and SQL
    copies of them (the older ones). Returns what the measured paths need."""
    from factories import rendered_video

    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db
    from fedisora.models import Account, Clip
    from fedisora.services import follows, interactions, posts
    from fedisora.services.accounts import create_local_account

    settings = load_settings(env)
    from fedisora import urls

    urls.configure(settings)
    await init_db(settings)
    try:
        people: list[Account] = []
        for n in range(accounts):
            people.append(
                await create_local_account(f"reader{n}", f"reader{n}@example.com", "bench pw 1")
            )
        for i, person in enumerate(people):
            for k in (1, 2, 3, 5, 8):
                await follows.follow(person, people[(i + k) % len(people)])
        made: list[Clip] = []
        for n in range(recent):
            author = people[n % len(people)]
            friend = people[(n + 1) % len(people)]
            source = made[n - 7] if n >= 7 and n % 4 == 0 else None
            clip = await posts.post_clip(
                author,
                await rendered_video(author),
                caption=(
                    f"A lighthouse in a storm, take {n}, waves over the rocks at dusk "
                    f"#sea #storm{n % 9} #lighthouse with @{friend.username}"
                ),
                remix_of=source,
            )
            made.append(clip)
            for fan in people[(n * 3) % len(people) :][:4]:
                if fan.pk != author.pk:
                    await interactions.like(fan, clip)
            if n % 3 == 0:
                await interactions.boost(friend, clip)
                await interactions.comment(friend, clip, f"@{author.username} what light!")
        older = max(0, clips - recent)
        if older:
            await _copy_older(settings.database_url, older)
        return {
            "account_id": people[0].pk,
            "username": people[0].username,
            "clip_id": made[-1].pk,
            "clip_author": (await Account.get(pk=made[-1].account_id)).username,
        }
    finally:
        await close_db()


async def _copy_older(url: str, count: int) -> None:
    """*count* older clips, copies of the services' ones (every column, new ids and uris),
    with their media and hashtags: the tables as large as an instance's."""
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'clips' ORDER BY ordinal_position"
            )
        ]
        changed = {
            "id": "(c.id - ((g + 1)::bigint * 65536 * 3600000))",  # an hour older per generation
            "uri": "c.uri || '-old-' || g",
            "url": "c.url || '-old-' || g",
            "created_at": "c.created_at - (g + 1) * interval '1 hour'",
            "remix_of_id": "NULL",
        }
        chosen = ", ".join(changed.get(c, f"c.{c}") for c in columns)
        per = await conn.fetchval("SELECT count(*) FROM clips")
        generations = -(-count // per)
        await conn.execute(
            f"INSERT INTO clips ({', '.join(columns)}) SELECT {chosen} FROM clips c,"
            f" generate_series(0, $1::int - 1) g ORDER BY g, c.id LIMIT $2",
            generations,
            count,
        )
        await conn.execute(
            "INSERT INTO clip_tags (tag_id, clip_id) SELECT t.tag_id, o.id FROM clips o"
            " JOIN clips c ON c.uri = split_part(o.uri, '-old-', 1)"
            " JOIN clip_tags t ON t.clip_id = c.id WHERE o.uri LIKE '%-old-%'"
            " ON CONFLICT DO NOTHING"
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# --- the servers --------------------------------------------------------------------------------


def serve_fedisora(port: int) -> None:
    """In a child process: the app as ``fedisora serve`` builds it."""
    import uvicorn

    from fedisora.app import create_app

    uvicorn.run(create_app(), host=HOST, port=port, log_level="warning", proxy_headers=False)


def serve_bare(pages_dir: str, port: int) -> None:
    """In a child process: each saved page's bytes, status and headers, from memory."""
    import json

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    saved = json.loads((Path(pages_dir) / "index.json").read_text())
    bodies = {path: (Path(pages_dir) / entry["file"]).read_bytes() for path, entry in saved.items()}

    async def app_call(request: Request) -> Response:
        key = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        entry = saved.get(key)
        if entry is None:
            return Response(b'{"error":"not saved"}', 404, media_type="application/json")
        return Response(bodies[key], entry["status"], headers=entry["headers"])

    from starlette.routing import Route

    app = Starlette(routes=[Route("/{path:path}", app_call)])
    uvicorn.run(app, host=HOST, port=port, log_level="warning", proxy_headers=False)


@contextlib.contextmanager
def child(argv: list[str], env: dict[str, str], url: str, log: Path) -> Iterator[int]:
    """A server in a child process, ready; yields its pid."""
    from instance import serving

    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    with serving(proc, url, lambda: log.read_text()[-3000:], START_TIMEOUT):
        yield proc.pid


def settle(pid: int, limit: float = 120.0) -> float:
    """Wait until process *pid* is idle (under 5 % of a core for two seconds running): the
    work the filling left (deliveries, outbox events) runs in the instance's own process
    without Redis, and would be counted against its pages. The seconds waited."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < limit and quiet < 2:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        quiet = quiet + 1 if cpu_seconds(pid) - before < 0.05 else 0
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process *pid* has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float
    """The server process's CPU time per request during the run (user + system)."""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if found is None:
        raise ValueError(f"wrk printed a latency I cannot read: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def wrk(url: str, seconds: float, connections: int, pid: int) -> Run:
    """One wrk run against *url*, served by the process *pid* (whose CPU time is read
    before and after)."""
    before = cpu_seconds(pid)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    used = cpu_seconds(pid) - before
    out = done.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors:.*", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Run(rps, p50, p99, errors, used * 1000 / max(requests, 1))


def save_pages(url: str, paths: dict[str, str], pages_dir: Path) -> dict[str, int]:
    """fedisora's answer to each path, saved for the bare server; returns the sizes."""
    import json

    index: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for n, path in enumerate(paths.values()):
        r = httpx.get(f"{url}{path}", timeout=60)
        if r.status_code != 200:
            raise SystemExit(f"{path} answered {r.status_code}: {r.text[:300]}")
        kept = {k: v for k, v in r.headers.items() if k.lower() in ("content-type", "link")}
        (pages_dir / f"{n}.body").write_bytes(r.content)
        index[path] = {"file": f"{n}.body", "status": r.status_code, "headers": kept}
        sizes[path] = len(r.content)
    (pages_dir / "index.json").write_text(json.dumps(index))
    return sizes


async def queries_per_page(
    env: dict[str, str], paths: list[str], show: bool = False
) -> dict[str, int]:
    """SQL queries each path costs, counted on tortoise's query log, in this process."""
    from fedisora.app import create_app
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db

    settings = load_settings(env)
    await init_db(settings)
    app = create_app(settings, run_work=False, manage_db=False)
    counted: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            counted.append(record.getMessage())

    log = logging.getLogger("tortoise.db_client")
    handler = Count(logging.DEBUG)
    old_level = log.level
    log.addHandler(handler)
    counts: dict[str, int] = {}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as http:
            for path in paths:
                await http.get(path)  # caches warm, as a running instance's are
                log.setLevel(logging.DEBUG)
                counted.clear()
                r = await http.get(path)
                log.setLevel(old_level)
                if r.status_code != 200:
                    raise SystemExit(f"{path} answered {r.status_code} in process")
                counts[path] = len(counted)
                if show:
                    print(f"\n{path}:\n" + "\n".join(f"  {q[:300]}" for q in counted))
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        await close_db()
    return counts


async def profile(env: dict[str, str], path: str, pages: int) -> str:
    from fedisora.app import create_app
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db

    settings = load_settings(env)
    await init_db(settings)
    app = create_app(settings, run_work=False, manage_db=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as http:
            await http.get(path)
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(pages):
                await http.get(path)
            prof.disable()
    finally:
        await close_db()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(40)
    return out.getvalue()


async def asgi_get(app: Any, base_url: str, path: str) -> int:
    """``GET path`` straight into the ASGI *app*, with only a ``Host`` header (as wrk sends
    it), the body read and dropped: no HTTP client's work is counted. Its status."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", base_url.split("//", 1)[1].encode())],
        "client": (HOST, 50000),
        "server": (HOST, 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_page(
    env: dict[str, str], paths: dict[str, str], pages_dir: Path, rounds: int
) -> dict[str, tuple[float, float, float]]:
    """Process CPU time per page, in this process over ASGI (no network, no server loop, no
    HTTP client: :func:`asgi_get`),
    for fedisora's app and for a bare starlette app answering the same saved bytes, about
    *rounds* pages each in alternating blocks: the median of the blocks, in ms. CPU time is
    what one web process spends on a page, whatever else the machine is doing (the
    database's work is the server's, not counted). Three sides: fedisora as it runs (a
    visitor's unchanged page answered again: :mod:`fedisora.api.replay_cache`), fedisora
    making every page (what a page costs when its rows changed since), and bare."""
    import json as jsonlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from fedisora.api import replay_cache
    from fedisora.app import create_app
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db

    saved = jsonlib.loads((pages_dir / "index.json").read_text())
    bodies = {k: (pages_dir / v["file"]).read_bytes() for k, v in saved.items()}

    async def bare_call(request: Request) -> Response:
        key = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Response(bodies[key], saved[key]["status"], headers=saved[key]["headers"])

    bare = Starlette(routes=[Route("/{path:path}", bare_call)])
    settings = load_settings(env)
    await init_db(settings)
    app = create_app(settings, run_work=False, manage_db=False)
    out: dict[str, tuple[float, float, float]] = {}
    block = 20
    kept_for = replay_cache.MAX_AGE
    try:
        for label, path in paths.items():
            targets = {"fedisora": app, "made": app, "bare": bare}
            for target in targets.values():
                for _ in range(3):
                    await asgi_get(target, settings.base_url, path)
            # Blocks of pages, alternating: whatever else the machine does falls on both
            # alike. Each block's CPU per page; the median of the blocks.
            per_page: dict[str, list[float]] = {side: [] for side in targets}
            for _ in range(max(rounds // block, 3)):
                for side, target in targets.items():
                    replay_cache.MAX_AGE = 0.0 if side == "made" else kept_for
                    started = time.process_time()
                    for _ in range(block):
                        status = await asgi_get(target, settings.base_url, path)
                        if status != 200:
                            raise SystemExit(f"{path} answered {status} in process")
                    per_page[side].append((time.process_time() - started) * 1000 / block)
                replay_cache.MAX_AGE = kept_for
            if os.environ.get("FEDISORA_BENCH_BLOCKS"):
                print(label, {k: [round(x, 3) for x in v] for k, v in per_page.items()})
            out[label] = (
                statistics.median(per_page["fedisora"]),
                statistics.median(per_page["made"]),
                statistics.median(per_page["bare"]),
            )
    finally:
        await close_db()
    return out


# --- the run --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--recent", type=int, default=120)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    parser.add_argument("--queries", action="store_true", help="print each page's SQL")
    parser.add_argument(
        "--cpu-only", action="store_true", help="only the in-process CPU per page (no wrk)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the public timeline")
    parser.add_argument("--serve-fedisora", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fedisora:
        serve_fedisora(args.serve_fedisora)
        return
    if args.serve_bare:
        serve_bare(args.serve_bare[0], int(args.serve_bare[1]))
        return
    if args.quick:
        args.rounds, args.duration = 1, 3.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package)")

    from instance import fedisora, free_port, instance_env

    name = f"fedisora_bench_read_{secrets.token_hex(3)}"
    admin = ADMIN.replace("postgres://", "postgresql://", 1)
    db_url = f"{ADMIN.rsplit('/', 1)[0]}/{name}"

    async def create_db() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    async def drop_db() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(create_db())
    try:
        with tempfile.TemporaryDirectory(prefix="fedisora-read-") as tmp:
            data, pages_dir = Path(tmp) / "data", Path(tmp) / "pages"
            data.mkdir()
            pages_dir.mkdir()
            port, bare_port = free_port(), free_port()
            env = instance_env(data, port, FEDISORA_DATABASE_URL=db_url)
            env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
            init = fedisora(["init", "--admin-password", "bench-admin-password-1"], env)
            if init.returncode != 0:
                raise SystemExit(f"fedisora init failed:\n{init.stderr}")
            print(f"filling {args.clips:,} clips ({args.recent} through the services)...")
            made = asyncio.run(fill(env, args.accounts, args.recent, args.clips))
            paths = {
                "public timeline": "/api/v1/timelines/public?limit=20",
                "account's clips": f"/api/v1/accounts/{made['account_id']}/statuses?limit=20",
                "clip page (web)": f"/@{made['clip_author']}/{made['clip_id']}",
            }
            url, bare_url = f"http://{HOST}:{port}", f"http://{HOST}:{bare_port}"
            me = [sys.executable, __file__]
            served = data / "serve.log"
            with child([*me, "--serve-fedisora", str(port)], env, url, served) as mine:
                waited = settle(mine)
                print(f"the instance's own work done after {waited:.0f} s", flush=True)
                sizes = save_pages(url, paths, pages_dir)
                bare = [*me, "--serve-bare", str(pages_dir), str(bare_port)]
                with child(bare, env, bare_url, data / "bare.log") as theirs:
                    results: dict[str, dict[str, list[Run]]] = {
                        label: {"fedisora": [], "bare": []} for label in paths
                    }
                    for n in range(0 if args.cpu_only else args.rounds):
                        for label, path in paths.items():
                            for side, base, pid in (
                                ("fedisora", url, mine),
                                ("bare", bare_url, theirs),
                            ):
                                results[label][side].append(
                                    wrk(f"{base}{path}", args.duration, args.connections, pid)
                                )
                        print(f"round {n + 1}/{args.rounds} done", flush=True)
            if not args.cpu_only:
                report(results, paths, sizes, args)
            cpu = asyncio.run(cpu_per_page(env, paths, pages_dir, 100 if args.quick else 600))
            print("\nCPU per page in this process (straight into each app over ASGI, no HTTP")
            print("server or client; alternating blocks, median): a steadier figure on a busy")
            print("machine, without the HTTP work both pay in a server (about 0.05 ms a request):")
            print("(fedisora: as it runs, a visitor's unchanged page answered again; made: every")
            print("page made, what one costs when its rows changed since it was last made)")
            for label, (ours, made_ms, bare_ms) in cpu.items():
                print(
                    f"  {label:18} fedisora {ours:7.3f} ms  made {made_ms:7.3f} ms  "
                    f"bare {bare_ms:6.3f} ms  ratios {bare_ms / ours:.3f} / {bare_ms / made_ms:.3f}"
                )
            account_path = f"/api/v1/accounts/{made['account_id']}/statuses"
            sql_paths = [f"/api/v1/timelines/public?limit={n}" for n in (5, 20, 40)]
            sql_paths += [f"{account_path}?limit={n}" for n in (5, 20, 40)]
            counts = asyncio.run(queries_per_page(env, sql_paths, args.queries))
            print("\nSQL queries per page (counted in process, caches warm):")
            for path, count in counts.items():
                print(f"  {path:60} {count:4d}")
            for prefix in ("/api/v1/timelines/public", f"/api/v1/accounts/{made['account_id']}"):
                seen = [c for p, c in counts.items() if p.startswith(prefix)]
                verdict = "PASS" if max(seen) <= seen[0] else "MISS"
                print(f"  {prefix}: no more queries at a larger page size: {verdict}")
            if args.profile:
                print(asyncio.run(profile(env, paths["public timeline"], 200)))
    finally:
        asyncio.run(drop_db())


def report(
    results: dict[str, dict[str, list[Run]]],
    paths: dict[str, str],
    sizes: dict[str, int],
    args: argparse.Namespace,
) -> None:
    cores = os.cpu_count()
    print(
        f"\nwrk, 1 thread, {args.connections} connections, {args.duration:g} s per run, "
        f"{args.rounds} round(s) alternating; {cores} CPUs (the load tool takes one); "
        f"{args.clips:,} clips on PostgreSQL"
    )
    head = f"{'':18}{'bytes':>8}{'fedisora r/s':>14}{'p50':>9}{'p99':>9}"
    head += f"{'bare r/s':>11}{'p50':>9}{'p99':>9}{'ratio':>8}  target"
    print(head)
    for label, path in paths.items():
        f, b = results[label]["fedisora"], results[label]["bare"]
        ratios = [x.rps / y.rps for x, y in zip(f, b, strict=True)]
        ratio = statistics.median(ratios)

        def med(runs: list[Run], attr: str) -> float:
            return float(statistics.median(getattr(r, attr) for r in runs))

        errors = sum(r.errors for r in f + b)
        print(
            f"{label:18}{sizes[path]:8d}{med(f, 'rps'):14.0f}{med(f, 'p50_ms'):8.1f}m"
            f"{med(f, 'p99_ms'):8.1f}m{med(b, 'rps'):11.0f}{med(b, 'p50_ms'):8.1f}m"
            f"{med(b, 'p99_ms'):8.1f}m{ratio:8.3f}  >= {TARGET} "
            f"{'PASS' if ratio >= TARGET else 'MISS'}" + (f"  ({errors} errors)" if errors else "")
        )
    print(
        "\nThe same runs, by the CPU time each server process used per request (from /proc:"
        "\nwhat a web process with a core of its own would serve, whatever else ran here):"
    )
    print(f"{'':18}{'fedisora ms':>13}{'bare ms':>10}{'ratio':>8}  target")
    for label in paths:
        f, b = results[label]["fedisora"], results[label]["bare"]
        cpu_ratio = statistics.median(y.cpu_ms / x.cpu_ms for x, y in zip(f, b, strict=True))
        verdict = "PASS" if cpu_ratio >= TARGET else "MISS"
        print(
            f"{label:18}{med(f, 'cpu_ms'):13.3f}{med(b, 'cpu_ms'):10.3f}{cpu_ratio:8.3f}"
            f"  >= {TARGET} {verdict}"
        )


if __name__ == "__main__":
    main()
