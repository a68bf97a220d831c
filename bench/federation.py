"""Federation throughput on loopback: signed inbox POSTs, and fan-out of one clip.

Part 1 (inbox): a real fedisora instance (``fedisora serve``: uvicorn, one process) and a
bare starlette app that answers the same POST with 202, run by uvicorn with the same
options, both on 127.0.0.1. The same signed Like activities (RFC 9421, RSA 2048, one fresh
id each) are POSTed over keep-alive connections by a small raw-HTTP/1.1 client, in
alternating rounds, so both are measured in the same run. Prints requests per second, p50
and p99 latency, the ratio fedisora/bare (target >= 0.35), and the share of the server's
time spent verifying signatures: the verification function (parse, precheck, crypto) is
timed in this process over the very same requests, and that cost per request times the
served rate is the share of the server's single event loop it takes.

A third endpoint is measured in the same rounds as a reference: a minimal verifying endpoint
(:func:`minimal_app`: JSON parse, digest check and RSA verify of a fixed-shape signature base,
nothing stored). Its ratio to the bare endpoint is a ceiling for any inbox on this stack and
machine, since every inbox must do at least that; a tampered request is sent to it and to
fedisora first, and both must refuse it.

Part 2 (fan-out): a scratch database with 10,000 remote followers of one local account,
spread over 500 shared inboxes served by one sink process (starlette apps on several ports
and paths, counting POSTs). One clip is posted through the real service; the in-process
runner (as the app runs it) turns its outbox event into Delivery rows and drains them.
Prints rows made (must equal the number of shared inboxes), POSTs the sinks received, and
seconds to post, to enqueue and to drain.

Run: ``.venv/bin/python bench/federation.py`` (options: ``--help``). Only 127.0.0.1 is used;
every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activitypub.keys import (  # noqa: E402
    generate_rsa_key,
    load_public_key_pem,
    private_key_to_pem,
    public_key_to_pem,
)
from activitypub.signatures import (  # noqa: E402
    Request,
    parse_signature,
    precheck,
    sign_request,
    verify_prechecked,
)

HOST = "127.0.0.1"
UVICORN_OPTIONS: dict[str, Any] = {"host": HOST, "log_level": "warning", "proxy_headers": True}
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- helper processes (this file run with a leading "_role") ---------------------------------


def _inbox_app(inbox: Any) -> Any:
    """A starlette app with *inbox* at the admin's inbox path, and ``/ready``."""
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def ready(request: HttpRequest) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/users/admin/inbox", inbox, methods=["POST"]),
            Route("/ready", ready),
        ]
    )


def _run_app(factory: str, port: int, workers: int) -> None:
    """Serve this file's app *factory* with uvicorn (an import string, as uvicorn needs for
    several workers; ``fedisora serve`` uses one too)."""
    import uvicorn

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    uvicorn.run(
        f"federation:{factory}", factory=True, port=port, workers=workers, **UVICORN_OPTIONS
    )


def bare_app() -> Any:
    """A bare starlette endpoint: read the POST body, answer 202 (what our inbox answers)."""
    from starlette.requests import Request as HttpRequest
    from starlette.responses import Response

    async def inbox(request: HttpRequest) -> Response:
        await request.body()
        return Response(status_code=202)

    return _inbox_app(inbox)


#: Environment of the minimal verifying endpoint's process (see :func:`minimal_app`).
MINIMAL_KEY_ENV, MINIMAL_BASE_ENV = "BENCH_MINIMAL_KEY_PEM", "BENCH_MINIMAL_BASE_URL"


def minimal_app() -> Any:
    """A reference, not an inbox: the least a Python endpoint that verifies these POSTs must do.

    It reads the body, parses the JSON, checks the Content-Digest and RSA-verifies the
    signature over a signature base built by string formatting for the one shape this
    bench sends (``@method @target-uri content-digest content-type``), with the signer's
    key already in hand. Nothing is parsed in general, no date or coverage is checked,
    nothing is stored. Its rate over the bare endpoint's bounds what any inbox on this stack
    (uvicorn, starlette, cryptography) could reach here, whatever else it did."""
    import base64
    import hashlib
    import hmac

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from starlette.requests import Request as HttpRequest
    from starlette.responses import Response

    key = load_public_key_pem(os.environ[MINIMAL_KEY_ENV])
    assert isinstance(key, RSAPublicKey)  # the bench signs with RSA 2048
    base_url = os.environ[MINIMAL_BASE_ENV]
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    async def inbox(request: HttpRequest) -> Response:
        body = await request.body()
        json.loads(body)
        headers = request.headers
        digest = headers.get("content-digest", "")
        signature_input = headers.get("signature-input", "")
        signature = headers.get("signature", "")
        if not (
            digest.startswith("sha-256=:")
            and signature_input.startswith("sig1=")
            and signature.startswith("sig1=:")
        ):
            return Response(status_code=401)
        if not hmac.compare_digest(base64.b64decode(digest[9:-1]), hashlib.sha256(body).digest()):
            return Response(status_code=401)
        base = (
            f'"@method": POST\n"@target-uri": {base_url}{request.url.path}\n'
            f'"content-digest": {digest}\n"content-type": {headers.get("content-type")}\n'
            f'"@signature-params": {signature_input[5:]}'
        )
        try:
            key.verify(base64.b64decode(signature[6:-1]), base.encode(), pkcs1, sha256)
        except InvalidSignature:
            return Response(status_code=401)
        return Response(status_code=202)

    return _inbox_app(inbox)


#: Bench-only variants of the instance (``--breakdown``), each with one part of the inbox
#: replaced in its own process, to measure in the running server what each part costs.
VARIANTS = {
    "no-verify": "without signature verification (the first signer is remembered)",
    "no-insert": "without the durable insert (nothing is stored)",
    "neither": "without both",
}


def _run_fed_variant(variant: str, port: int) -> None:
    """``fedisora serve`` (one process, the same uvicorn options as ``cmd_serve``) with a part
    of the inbox replaced. Only this bench does this, in its own process: the server code has
    no switch for it."""
    import uvicorn

    from fedisora.federation import routes

    if variant in ("no-verify", "neither"):
        real_verify = getattr(routes, "verify_signer")  # noqa: B009 - replaced below
        first: list[Any] = []

        async def verify_once(fed: Any, request: Any) -> Any:
            if not first:  # the bench has one signer: verified (and its key fetched) once
                first.append(await real_verify(fed, request))
            return first[0]

        setattr(routes, "verify_signer", verify_once)  # noqa: B010 - replaced on purpose
    if variant in ("no-insert", "neither"):

        async def no_insert(*args: Any, **kwargs: Any) -> None:
            return None

        setattr(routes, "insert_grouped", no_insert)  # noqa: B010
    uvicorn.run(
        "fedisora.app:app_from_env",
        factory=True,
        host=HOST,
        port=port,
        log_level="warning",
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )


def _run_sink(actor_json: str, ports: list[int]) -> None:
    """Inbox sinks on *ports* (any ``/s<n>/inbox`` path answers 202 and is counted), plus the
    bench's signing actor at ``/actor`` on the first port, and ``/count`` for the totals."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    actor = json.loads(actor_json)
    counts: dict[str, int] = {}
    signed = [0]

    async def sink(request: HttpRequest) -> Response:
        await request.body()
        key = f"{request.url.port}{request.url.path}"
        counts[key] = counts.get(key, 0) + 1
        if "signature" in request.headers:
            signed[0] += 1
        return Response(status_code=202)

    async def actor_doc(request: HttpRequest) -> Response:
        return JSONResponse(actor, media_type="application/activity+json")

    async def count(request: HttpRequest) -> Response:
        return JSONResponse(
            {
                "posts": sum(counts.values()),
                "inboxes": len(counts),
                "signed": signed[0],
                "max_per_inbox": max(counts.values(), default=0),
            }
        )

    app = Starlette(
        routes=[
            Route("/actor", actor_doc),
            Route("/count", count),
            Route("/{sink}/inbox", sink, methods=["POST"]),
        ]
    )

    async def serve_all() -> None:
        servers = [uvicorn.Server(uvicorn.Config(app, port=p, **UVICORN_OPTIONS)) for p in ports]
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(serve_all())


# --- process management ----------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds *pid* and its child processes (uvicorn's workers) have
    used so far (Linux ``/proc``)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # itself, or a child
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_http(proc: Proc, url: str) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise SystemExit(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{proc.name} did not start: {proc.log.read_text()[-2000:]}")


@contextmanager
def spawn(
    name: str,
    args: list[str],
    tmp: Path,
    env: dict[str, str] | None = None,
    ready: str | None = None,
) -> Iterator[Proc]:
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env or os.environ.copy(), stdout=out, stderr=subprocess.STDOUT
        )
    proc = Proc(name, process, log)
    try:
        if ready is not None:
            _wait_http(proc, ready)
        yield proc
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def instance_env(data: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        FEDISORA_DATA_DIR=str(data),
        FEDISORA_DOMAIN=f"{HOST}:{port}",
        FEDISORA_INSECURE_HTTP="1",
        FEDISORA_LOG_LEVEL="warning",
        FEDISORA_REGISTRATIONS="closed",
        # One peer sends the whole load: the per-host inbox rate limit (600 per 5 minutes by
        # default) would measure the limit, not the inbox.
        FEDISORA_RATE_LIMITS="inbox=10000000/1s",
    )
    return env


def init_instance(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fedisora", "init", "--admin-password", "correct horse battery"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise SystemExit(f"fedisora init failed: {done.stderr[-2000:]}")


# --- the load client -------------------------------------------------------------------------


def _raw_request(url_path: str, port: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"POST {url_path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() != "host"]
    lines += [f"Content-Length: {len(body)}", "Connection: keep-alive"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


@dataclass
class LoadResult:
    name: str
    count: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    cpu: float = 0.0  # CPU seconds the server process used meanwhile

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.count * 1e6

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(
    name: str, port: int, requests: list[bytes], concurrency: int, limit: float
) -> LoadResult:
    """POST every prepared request once over *concurrency* keep-alive connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for raw in queue:
                started = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    async with asyncio.timeout(limit):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(name, len(requests), time.perf_counter() - started, latencies, statuses)


# --- part 1: inbox ---------------------------------------------------------------------------


@dataclass
class Signer:
    actor: str
    key_id: str
    private_pem: str
    public_pem: str

    def document(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.actor,
            "type": "Person",
            "preferredUsername": "bench",
            "inbox": self.actor + "/inbox",
            "publicKey": {"id": self.key_id, "owner": self.actor, "publicKeyPem": self.public_pem},
        }


def signed_likes(signer: Signer, base: str, first: int, count: int) -> list[Request]:
    """*count* signed POSTs of Like activities (unique ids) to *base*'s admin inbox."""
    from activitypub.keys import load_private_key_pem

    key = load_private_key_pem(signer.private_pem)
    url = f"{base}/users/admin/inbox"
    out = []
    now = time.time()
    for i in range(first, first + count):
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{signer.actor}/likes/{i}",
            "type": "Like",
            "actor": signer.actor,
            "object": f"{base}/users/admin/clips/{i}",
        }
        body = json.dumps(activity, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/activity+json")]
        request = Request("POST", url, headers, body)
        added = sign_request(request, signer.key_id, key, now=now)
        out.append(Request("POST", url, headers + list(added.items()), body))
    return out


def time_verification(signer: Signer, requests: list[Request]) -> float:
    """Seconds per request for the verification function over *requests* (with the key in
    hand, as after the actor cache lookup)."""
    key = load_public_key_pem(signer.public_pem)
    now = time.time()
    started = time.perf_counter()
    for request in requests:
        parsed = parse_signature(request)
        precheck(parsed, request, now=now)
        verify_prechecked(parsed, request, key)
    return (time.perf_counter() - started) / len(requests)


def to_raw(requests: list[Request], port: int) -> list[bytes]:
    from urllib.parse import urlsplit

    return [
        _raw_request(urlsplit(r.url).path, port, list(r.headers.items()), r.body) for r in requests
    ]


def summary(results: list[LoadResult]) -> LoadResult:
    lat = [x for r in results for x in r.latencies]
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    return LoadResult(
        results[0].name,
        sum(r.count for r in results),
        sum(r.seconds for r in results),
        lat,
        statuses,
        sum(r.cpu for r in results),
    )


def measured(
    proc: Proc, port: int, name: str, raw: list[bytes], args: argparse.Namespace
) -> LoadResult:
    """One load run against *proc*, with the CPU time the server used for it."""
    before = cpu_seconds(proc.process.pid)
    result = asyncio.run(load(name, port, raw, args.concurrency, args.timeout))
    result.cpu = cpu_seconds(proc.process.pid) - before
    return result


BENCH_DB = "fedisora_bench_inbox"


async def _recreate_database(server_url: str, name: str) -> str:
    """A fresh, empty database named *name* on *server_url*'s PostgreSQL."""
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server_url.rsplit("/", 1)[0] + "/" + name


async def _received_items(database_url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbox_items WHERE state='received'"))
    finally:
        await conn.close()


def sqlite_backlog(path: Path) -> tuple[int, int]:
    """(processed, stored) inbox items in an embedded instance's database, read-only."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        stored, waiting = conn.execute(
            "SELECT count(*), sum(state = 'received') FROM inbox_items"
        ).fetchone()
    return int(stored) - int(waiting or 0), int(stored)


def drain_with_worker(env: dict[str, str], tmp: Path, items: int, limit: float) -> None:
    """Start ``fedisora worker`` for the default queue and time how long it takes to process
    the *items* inbox rows the load left behind."""
    database_url = env["FEDISORA_DATABASE_URL"]
    before = asyncio.run(_received_items(database_url))
    started = time.perf_counter()
    with spawn(
        "worker", [sys.executable, "-m", "fedisora", "worker", "--queues", "default"], tmp, env=env
    ):
        left = before
        deadline = time.monotonic() + limit
        while left and time.monotonic() < deadline:
            time.sleep(0.25)
            left = asyncio.run(_received_items(database_url))
    seconds = time.perf_counter() - started
    done = before - left
    print(
        f"processing afterwards by one `fedisora worker` process: {done} of {before} stored "
        f"items in {seconds:.1f} s ({done / seconds:.0f} items/s, worker start-up included)"
        + ("" if left == 0 else f"; {left} NOT processed within {limit:.0f} s")
    )
    if before != items:
        print(f"warning: {before} items were waiting, {items} were POSTed")


def _variant_instance(
    args: argparse.Namespace, tmp: Path, variant: str, domain_port: int
) -> dict[str, str]:
    """A fresh instance of its own for a ``--breakdown`` variant. It answers as the main
    instance's domain (so the same signed requests verify: the signature covers the target
    URI, which is made from the configured domain), but has its own data and database."""
    env = instance_env(tmp / f"inbox-{variant}", domain_port)
    if args.postgres:
        name = f"{BENCH_DB}_{variant.replace('-', '_')}"
        env["FEDISORA_DATABASE_URL"] = asyncio.run(_recreate_database(args.postgres, name))
        env["FEDISORA_REDIS_URL"] = args.redis
    init_instance(env)
    return env


def inbox_bench(args: argparse.Namespace, tmp: Path) -> None:
    sink_port, fed_port, bare_port, minimal_port = (free_port() for _ in range(4))
    key = generate_rsa_key()
    actor = f"http://{HOST}:{sink_port}/actor"
    signer = Signer(
        actor, actor + "#main-key", private_key_to_pem(key), public_key_to_pem(key.public_key())
    )
    env = instance_env(tmp / "inbox", fed_port)
    if args.postgres:
        # The production layout: PostgreSQL, and Redis waking separate worker processes; the
        # web process only answers. The worker is started after the load (see below).
        env["FEDISORA_DATABASE_URL"] = asyncio.run(_recreate_database(args.postgres, BENCH_DB))
        env["FEDISORA_REDIS_URL"] = args.redis
    init_instance(env)
    variants = list(VARIANTS) if args.breakdown else []
    variant_envs = {v: _variant_instance(args, tmp, v, fed_port) for v in variants}
    me = [sys.executable, str(Path(__file__).resolve())]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            spawn(
                "sink",
                [*me, "_sink", json.dumps(signer.document()), str(sink_port)],
                tmp,
                ready=f"http://{HOST}:{sink_port}/count",
            )
        )
        bare_proc = stack.enter_context(
            spawn(
                "bare",
                [*me, "_bare", str(bare_port), str(args.workers)],
                tmp,
                ready=f"http://{HOST}:{bare_port}/ready",
            )
        )
        minimal_env = {
            **os.environ,
            MINIMAL_KEY_ENV: signer.public_pem,
            # The URL the requests are signed for (the instance's), as for the variants.
            MINIMAL_BASE_ENV: f"http://{HOST}:{fed_port}",
        }
        minimal_proc = stack.enter_context(
            spawn(
                "minimal",
                [*me, "_minimal", str(minimal_port), str(args.workers)],
                tmp,
                env=minimal_env,
                ready=f"http://{HOST}:{minimal_port}/ready",
            )
        )
        fed_proc = stack.enter_context(
            spawn(
                "fedisora",
                [
                    sys.executable,
                    "-m",
                    "fedisora",
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(fed_port),
                    "--no-render-worker",
                    "--workers",
                    str(args.workers),
                ],
                tmp,
                env=env,
                ready=f"http://{HOST}:{fed_port}/.well-known/nodeinfo",
            )
        )
        servers: list[tuple[str, Proc, int]] = [
            ("bare starlette", bare_proc, bare_port),
            ("minimal verify", minimal_proc, minimal_port),
            ("fedisora inbox", fed_proc, fed_port),
        ]
        for variant, variant_env in variant_envs.items():
            port = free_port()
            proc = stack.enter_context(
                spawn(
                    variant,
                    [*me, "_fed_variant", variant, str(port)],
                    tmp,
                    env=variant_env,
                    ready=f"http://{HOST}:{port}/.well-known/nodeinfo",
                )
            )
            servers.append((variant, proc, port))
        fed_base = f"http://{HOST}:{fed_port}"
        # Warm up each (an instance fetches and caches the signer's key once).
        warm = signed_likes(signer, fed_base, 10**9, args.warmup)
        for name, _, port in servers:
            asyncio.run(load(f"warm {name}", port, to_raw(warm, port), 1, 60))
        tampered = signed_likes(signer, fed_base, 10**9 + args.warmup, 1)[0]
        tampered = Request("POST", tampered.url, tampered.headers, tampered.body + b" ")
        for name, _, port in servers[1:3]:
            refused = asyncio.run(load(f"tampered {name}", port, to_raw([tampered], port), 1, 60))
            if set(refused.statuses) != {401}:
                raise SystemExit(f"{name} answered {refused.statuses} to a tampered POST")
        runs: dict[str, list[LoadResult]] = {name: [] for name, _, _ in servers}
        verify_costs: list[float] = []
        for round_no in range(args.rounds):
            requests = signed_likes(signer, fed_base, round_no * args.requests, args.requests)
            for name, proc, port in servers:
                runs[name].append(measured(proc, port, name, to_raw(requests, port), args))
            verify_costs.append(time_verification(signer, requests))
        backlog = None if args.postgres else sqlite_backlog(tmp / "inbox" / "fedisora.sqlite3")
    bare_runs, fed_runs = runs["bare starlette"], runs["fedisora inbox"]
    bare, fed = summary(bare_runs), summary(fed_runs)
    minimal = summary(runs["minimal verify"])
    for r, log_name in ((fed, "fedisora"), (minimal, "minimal")):
        if set(r.statuses) != {202}:
            print(f"warning: {r.name} answered {r.statuses}; see {tmp / (log_name + '.log')}")
    layout = (
        "PostgreSQL + Redis, items processed by a separate worker after the load"
        if args.postgres
        else "embedded defaults: SQLite, items processed meanwhile by the in-process runner"
    )
    print(
        f"== inbox: {args.rounds} rounds x {args.requests} signed POSTs (RFC 9421, RSA 2048), "
        f"{args.concurrency} keep-alive connections, uvicorn {UVICORN_OPTIONS} with "
        f"{args.workers} worker process(es) each; fedisora on "
        f"{layout}"
    )
    for r in (bare, minimal, fed):
        print(
            f"{r.name:16s} {r.rps:9.1f} req/s   p50 {r.pct(0.5):7.2f} ms   "
            f"p99 {r.pct(0.99):7.2f} ms   server CPU {r.cpu_us:6.0f} us/req   "
            f"statuses {r.statuses}"
        )
    for i, (b, m, f) in enumerate(zip(bare_runs, runs["minimal verify"], fed_runs, strict=True)):
        print(
            f"  round {i + 1}: bare {b.rps:.1f} req/s, minimal verify {m.rps:.1f} req/s, "
            f"fedisora {f.rps:.1f} req/s"
        )
    ratio = fed.rps / bare.rps
    print(
        f"reference, minimal verifying endpoint/bare: {minimal.rps / bare.rps:.3f} (JSON, "
        f"digest and RSA verify of a fixed-shape base, nothing stored: no inbox that verifies "
        f"can do better here); fedisora/minimal: {fed.rps / minimal.rps:.3f}"
    )
    verify = statistics.median(verify_costs)
    print(
        f"ratio fedisora/bare: {ratio:.3f} (target >= 0.35): "
        f"{'met' if ratio >= 0.35 else 'NOT met'}"
    )
    print(
        f"signature verification: {verify * 1e6:.0f} us per request (parse + precheck + "
        f"RSA verify, timed in-process over the same requests) = "
        f"{100 * verify * fed.rps:.1f}% of the server's time at {fed.rps:.0f} req/s"
    )
    if variants:
        print_breakdown(bare, fed, {v: summary(runs[v]) for v in variants}, not args.postgres)
    if args.postgres:
        drain_with_worker(env, tmp, fed.count + args.warmup, args.timeout)
    elif backlog is not None:
        done, stored = backlog
        print(
            f"processing meanwhile by the in-process runner: {done} of {stored} stored items "
            f"were processed when the load ended (the rest are processed afterwards)"
        )


def print_breakdown(
    bare: LoadResult, fed: LoadResult, parts: dict[str, LoadResult], embedded: bool
) -> None:
    """Where the inbox's server CPU goes, from the variants measured in the same rounds."""
    processing = (
        " (with the in-process runner's processing of the stored items)" if embedded else ""
    )
    print(
        "-- breakdown: server CPU per POST in the running server, each variant a separate "
        "instance measured in the same rounds (bench-only replacements, see VARIANTS)"
    )
    for r in (bare, fed, *parts.values()):
        label = VARIANTS.get(r.name, r.name)
        print(f"  {label:64s} {r.cpu_us:6.0f} us/req  {r.rps:9.1f} req/s  {r.statuses}")
    full, base = fed.cpu_us, parts["neither"].cpu_us
    verify, insert = full - parts["no-verify"].cpu_us, full - parts["no-insert"].cpu_us
    print(
        f"  signature verification costs {verify:.0f} us, the durable insert {insert:.0f} us"
        f"{processing}, "
        f"the rest of the inbox {base - bare.cpu_us:.0f} us over the bare endpoint's "
        f"{bare.cpu_us:.0f} us (parts overlap: {verify + insert + base:.0f} us summed vs "
        f"{full:.0f} us measured)"
    )
    # The CPU a POST may cost for the target ratio, if throughput follows server CPU.
    print(f"  for a ratio of 0.35 a POST may cost about {bare.cpu_us / 0.35:.0f} us of server CPU")


# --- part 2: fan-out -------------------------------------------------------------------------


async def _fanout(args: argparse.Namespace, data: Path, ports: list[int], sink_port: int) -> None:
    import httpx

    from fedisora import federation, urls
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db
    from fedisora.federation.context import close_federation
    from fedisora.models import (
        Account,
        Delivery,
        Follow,
        FollowState,
        MediaFile,
        MediaKind,
        OutboxEvent,
    )
    from fedisora.services import posts
    from fedisora.work.machines import build_engine
    from fedisora.work.runner import InProcessRunner

    settings = load_settings(instance_env(data, free_port()))
    urls.configure(settings)
    await init_db(settings)
    try:
        admin = await Account.get(username="admin", domain=None)
        per_inbox = args.followers // args.sinks
        accounts = []
        for s in range(args.sinks):
            port = ports[s % len(ports)]
            base = f"http://{HOST}:{port}/s{s}"
            for k in range(per_inbox):
                accounts.append(
                    Account(
                        username=f"s{s}u{k}",
                        domain=f"{HOST}:{port}",
                        uri=f"{base}/users/u{k}",
                        inbox_uri=f"{base}/users/u{k}/inbox",
                        shared_inbox_uri=f"{base}/inbox",
                    )
                )
        await Account.bulk_create(accounts, batch_size=1000)
        remote = await Account.filter(domain__not_isnull=True).values_list("id", flat=True)
        await Follow.bulk_create(
            [
                Follow(
                    follower_id=pk,
                    target_id=admin.pk,
                    state=FollowState.ACCEPTED,
                    uri=f"urn:bench:follow:{pk}",
                )
                for pk in remote
            ],
            batch_size=1000,
        )
        followers = await Follow.filter(target_id=admin.pk, state=FollowState.ACCEPTED).count()
        media = await MediaFile.create(
            account=admin,
            kind=MediaKind.VIDEO,
            file="clips/bench.mp4",
            content_type="video/mp4",
            width=256,
            height=448,
            duration=3.0,
            provenance={"state": "trusted", "local": True, "manifest_digest": "sha256:bench"},
        )
        engine = build_engine(settings)
        federation.install(engine)
        runner = InProcessRunner(engine, queues=("default",), poll_interval=0.2)
        runner.start()
        started = time.perf_counter()
        await posts.post_clip(admin, media, caption="fan-out bench")
        posted = time.perf_counter() - started
        deadline = time.monotonic() + args.timeout
        # The runner turns the clip's event into its Delivery rows (the outbox).
        while time.monotonic() < deadline:
            if not await OutboxEvent.exclude(state="done").exists():
                break
            await asyncio.sleep(0.005)
        enqueued = time.perf_counter() - started
        rows = await Delivery.all().count()
        while time.monotonic() < deadline:
            if not await Delivery.filter(state="pending").exists():
                break
            await asyncio.sleep(0.05)
        drained = time.perf_counter() - started
        await runner.stop()
        await federation.uninstall()
        await close_federation()
        delivered = await Delivery.filter(state="delivered").count()
        failed = await Delivery.filter(state="failed").count()
        pending = await Delivery.filter(state="pending").count()
        async with httpx.AsyncClient(trust_env=False) as http:
            counted = (await http.get(f"http://{HOST}:{sink_port}/count")).json()
    finally:
        await close_db()
    print(
        f"== fan-out: one clip to {followers} followers over {args.sinks} shared inboxes "
        f"on {len(ports)} ports (runner concurrency {runner.concurrency})"
    )
    print(
        f"delivery rows made: {rows} (shared inboxes: {args.sinks}): "
        f"{'equal' if rows == args.sinks else 'NOT equal'}"
    )
    print(
        f"delivered {delivered}, failed {failed}, still pending {pending}; sinks received "
        f"{counted['posts']} POSTs ({counted['signed']} signed) at {counted['inboxes']} inboxes, "
        f"at most {counted['max_per_inbox']} per inbox"
    )
    print(
        f"seconds to post: {posted:.3f}; to enqueue (the outbox wrote the Delivery rows): "
        f"{enqueued:.2f}; to drain (post to last delivery): "
        f"{drained:.2f}{'' if pending == 0 else ' (TIMED OUT)'}"
    )


def fanout_bench(args: argparse.Namespace, tmp: Path) -> None:
    ports = [free_port() for _ in range(args.ports)]
    data = tmp / "fanout"
    init_instance(instance_env(data, free_port()))
    me = [sys.executable, str(Path(__file__).resolve())]
    with spawn(
        "sinks",
        [*me, "_sink", "{}", *map(str, ports)],
        tmp,
        ready=f"http://{HOST}:{ports[0]}/count",
    ) as sinks:
        for port in ports[1:]:
            _wait_http(sinks, f"http://{HOST}:{port}/count")
        asyncio.run(_fanout(args, data, ports, ports[0]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_bare", "_minimal"):
        _run_app(sys.argv[1][1:] + "_app", int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_fed_variant":
        _run_fed_variant(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_sink":
        _run_sink(sys.argv[2], [int(p) for p in sys.argv[3:]])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="signed POSTs per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--sinks", type=int, default=500, help="shared inboxes")
    parser.add_argument("--ports", type=int, default=10, help="sink ports")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each phase (s)")
    parser.add_argument("--only", choices=("inbox", "fanout"))
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure bench-only variants of the instance without signature "
        "verification, without the insert, and without both, to show what each costs",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run the inbox part on PostgreSQL (a database named "
        f"{BENCH_DB} is created afresh on this server, e.g. "
        "postgresql://postgres@127.0.0.1:5432/postgres) with Redis and a separate worker",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="with --postgres")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes, for both servers"
    )
    args = parser.parse_args()
    if args.followers % args.sinks:
        parser.error("--followers must be a multiple of --sinks")
    with tempfile.TemporaryDirectory(prefix="fedisora-bench-") as name:
        tmp = Path(name)
        if args.only in (None, "inbox"):
            inbox_bench(args, tmp)
        if args.only in (None, "fanout"):
            fanout_bench(args, tmp)


if __name__ == "__main__":
    main()
