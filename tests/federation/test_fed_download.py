"""PeerClient.download against real servers on 127.0.0.1: streamed to disk, byte for byte,
within a size limit and a total timeout, under the SSRF guard, and nothing left on failure.

:class:`Origin` is an HTTP/1.1 server answering each path with a scripted behaviour (a file,
a redirect, an endless chunked body, a body that drips). The secure-mode test adds TLS and a
pinned transport whose name server and network are the test's, so a "public" address is
routed to a loopback port and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from loopback import (
    PUBLIC_V4,
    LoopbackServer,
    RecordingNetwork,
    ScriptedResolver,
    make_certs,
    parse_head,
    pinned_client,
    running,
)

from fedisora.federation.http import (
    USER_AGENT,
    DownloadResult,
    FetchError,
    PeerClient,
    TooLarge,
    UnsafeURL,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- the origin server -----------------------------------------------------------------------


@dataclass
class Origin(LoopbackServer):
    """Answers ``routes[path]``, 404 otherwise; records each request and each path whose
    client hung up while the server was still sending (or waiting to)."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0
    hung_up: dict[str, asyncio.Event] = field(default_factory=dict)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path, headers = parse_head(head)
            self.requests.append((path, headers))
            handler = self.routes.get(path, _not_found)
            try:
                await handler(reader, writer)
            except ConnectionError:
                self.hang_up_of(path).set()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def hang_up_of(self, path: str) -> asyncio.Event:
        return self.hung_up.setdefault(path, asyncio.Event())

    async def wait_hung_up(self, path: str) -> None:
        async with asyncio.timeout(5):
            await self.hang_up_of(path).wait()


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_head("404 Not Found", {"Content-Length": "9"}) + b"not here\n")
    await writer.drain()


def serve_file(body: bytes, content_type: str = "video/mp4") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        writer.write(_head("200 OK", headers) + body)
        await writer.drain()

    return handler


def serve_chunked(body: bytes, piece: int = 10_000) -> Handler:
    """*body* with ``Transfer-Encoding: chunked``: no Content-Length to refuse early."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head("200 OK", {"Transfer-Encoding": "chunked"}))
        for start in range(0, len(body), piece):
            part = body[start : start + piece]
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return handler


def serve_endless() -> Handler:
    """A chunked body that never ends: only the client hanging up stops it (or 64 MiB, a
    safety net this test never reaches when the client keeps its limit)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head("200 OK", {"Content-Type": "video/mp4", "Transfer-Encoding": "chunked"}))
        piece = b"\0" * 65536
        for _ in range(1024):
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.001)
        raise AssertionError("the client read 64 MiB of an endless body")

    return handler


def serve_claiming(length: int) -> Handler:
    """Declares *length* bytes, sends a few, then waits for the client to hang up."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head("200 OK", {"Content-Length": str(length)}) + b"\0" * 100)
        await writer.drain()
        await asyncio.wait_for(reader.read(1), 10)  # b"" (EOF) when the client closes
        raise ConnectionResetError("the client hung up")

    return handler


def serve_dripping(length: int, pause: float) -> Handler:
    """Declares *length* bytes and sends one every *pause* seconds."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head("200 OK", {"Content-Length": str(length)}))
        for _ in range(length):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(pause)

    return handler


def serve_truncated(length: int, sent: int) -> Handler:
    """Declares *length* bytes, sends *sent* of them and closes the connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head("200 OK", {"Content-Length": str(length)}) + b"y" * sent)
        await writer.drain()

    return handler


def serve_redirect(location: str, status: str = "302 Found") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(status, {"Location": location, "Content-Length": "0"}))
        await writer.drain()

    return handler


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with running(Origin()) as server:
        yield server


@pytest.fixture
async def guard() -> AsyncIterator[Origin]:
    """A loopback service a hostile redirect wants this server to reach."""
    async with running(Origin(routes={"/secret": serve_file(b"secret", "text/plain")})) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[PeerClient]:
    """The production client in insecure mode: real sockets, loopback allowed."""
    peer = PeerClient(insecure=True)
    try:
        yield peer
    finally:
        await peer.aclose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "downloads"
    path.mkdir()
    return path


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Watcher:
    """A progress callback recording the sizes reported and the folder's files each time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sizes: list[int] = []
        self.files: list[list[str]] = []
        self.started = asyncio.Event()

    async def __call__(self, size: int) -> None:
        self.sizes.append(size)
        self.files.append(names(self.folder))
        self.started.set()

    def saw_only_a_part_file(self, dest: str) -> bool:
        return bool(self.files) and all(
            len(f) == 1 and f[0].startswith(f".{dest}.") and f[0].endswith(".part")
            for f in self.files
        )


# --- success ---------------------------------------------------------------------------------


async def test_a_download_is_byte_exact_and_reaches_its_name_only_when_complete(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    body = os.urandom(1_000_003)
    origin.routes["/old.mp4"] = serve_redirect(f"{origin.base}/media/new.mp4", "301 Moved")
    origin.routes["/media/new.mp4"] = serve_file(body)
    watch = Watcher(folder)
    dest = folder / "v.mp4"

    got = await client.download(
        f"{origin.base}/old.mp4",
        dest,
        max_bytes=len(body),  # exactly at the limit is allowed
        total_timeout=10,
        accept="video/*",
        progress=watch,
    )
    assert got == DownloadResult(
        url=f"{origin.base}/media/new.mp4",
        size=len(body),
        sha256_hex=hashlib.sha256(body).hexdigest(),
        content_type="video/mp4",
    )
    assert dest.read_bytes() == body
    assert names(folder) == ["v.mp4"]  # the temporary file was renamed, nothing else is left
    # Written under a temporary name, in order, chunk after chunk.
    assert watch.saw_only_a_part_file("v.mp4")
    assert watch.sizes == sorted(watch.sizes) and watch.sizes[-1] == len(body)
    assert len(watch.sizes) > 1  # streamed, not read in one piece
    [(_, first), (path, second)] = origin.requests
    assert path == "/media/new.mp4"
    for headers in (first, second):
        assert headers["accept"] == "video/*" and headers["accept-encoding"] == "identity"
        assert headers["user-agent"] == USER_AGENT


async def test_a_chunked_body_without_length_is_downloaded_too(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    body = os.urandom(123_457)
    origin.routes["/c"] = serve_chunked(body)
    dest = folder / "c.bin"
    dest.write_bytes(b"an older copy")  # replaced as a whole
    got = await client.download(f"{origin.base}/c", dest, max_bytes=len(body), total_timeout=10)
    assert dest.read_bytes() == body and got.size == len(body)
    assert got.sha256_hex == hashlib.sha256(body).hexdigest() and got.content_type is None
    assert origin.requests[0][1]["accept"] == "*/*"
    assert names(folder) == ["c.bin"]


# --- refusals and failures: an exception, and nothing left behind ----------------------------


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    origin.routes["/big"] = serve_claiming(50_000_000)
    watch = Watcher(folder)
    started = time.monotonic()
    with pytest.raises(TooLarge, match="50000000 bytes is over the limit of 1000000") as caught:
        await client.download(
            f"{origin.base}/big",
            folder / "big.mp4",
            max_bytes=1_000_000,
            total_timeout=30,
            progress=watch,
        )
    assert caught.value.status == 200
    await origin.wait_hung_up("/big")  # the client closed the connection at once
    assert time.monotonic() - started < 5
    assert watch.sizes == [] and names(folder) == []  # no byte of the body was written


async def test_a_body_without_length_is_cut_at_the_limit(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    origin.routes["/endless"] = serve_endless()
    watch = Watcher(folder)
    with pytest.raises(TooLarge, match="over the limit of 300000 bytes") as caught:
        await client.download(
            f"{origin.base}/endless",
            folder / "e.mp4",
            max_bytes=300_000,
            total_timeout=30,
            progress=watch,
        )
    assert caught.value.status == 200
    await origin.wait_hung_up("/endless")  # stopped reading: the server's writes failed
    assert watch.sizes[-1] <= 300_000  # never wrote past the limit
    assert watch.saw_only_a_part_file("e.mp4")
    assert names(folder) == []


async def test_the_total_timeout_covers_a_peer_that_drips(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    """Each byte arrives well within the per-read timeout (10 s); the whole never does.

    The whole would take 20 s; 2 s leaves a loaded machine time to connect and read some bytes
    (with 0.6 s, a loaded CI run once timed out before the first byte).
    """
    origin.routes["/slow"] = serve_dripping(1000, 0.02)
    watch = Watcher(folder)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"GET .*/slow: not complete in 2 s") as caught:
        await client.download(
            f"{origin.base}/slow",
            folder / "s.mp4",
            max_bytes=10_000,
            total_timeout=2,
            progress=watch,
        )
    elapsed = time.monotonic() - started
    assert type(caught.value) is FetchError and caught.value.status is None
    assert 1.95 < elapsed < 5
    assert watch.sizes and watch.saw_only_a_part_file("s.mp4")  # it was mid-download
    assert names(folder) == []


async def test_a_truncated_body_and_an_error_status_leave_nothing(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    origin.routes["/cut"] = serve_truncated(200_000, 70_000)
    watch = Watcher(folder)
    with pytest.raises(FetchError) as cut:
        await client.download(
            f"{origin.base}/cut",
            folder / "t.mp4",
            max_bytes=10**6,
            total_timeout=10,
            progress=watch,
        )
    assert type(cut.value) is FetchError and cut.value.status is None
    assert "RemoteProtocolError" in str(cut.value)
    assert watch.saw_only_a_part_file("t.mp4") and names(folder) == []

    with pytest.raises(FetchError, match="HTTP 404") as missing:
        await client.download(
            f"{origin.base}/nothing", folder / "n.mp4", max_bytes=10**6, total_timeout=10
        )
    assert missing.value.status == 404
    assert names(folder) == []


async def test_an_error_in_the_progress_callback_aborts_and_keeps_the_old_file(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    origin.routes["/v"] = serve_file(os.urandom(500_000))
    dest = folder / "v.mp4"
    dest.write_bytes(b"the previous file")
    seen: list[list[str]] = []

    async def lease_lost(size: int) -> None:
        seen.append(names(folder))
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        await client.download(
            f"{origin.base}/v", dest, max_bytes=10**6, total_timeout=10, progress=lease_lost
        )
    assert len(seen) == 1 and len(seen[0]) == 2  # v.mp4 and its temporary sibling
    assert names(folder) == ["v.mp4"] and dest.read_bytes() == b"the previous file"


async def test_cancelling_a_download_leaves_nothing(
    client: PeerClient, origin: Origin, folder: Path
) -> None:
    origin.routes["/slow"] = serve_dripping(1000, 0.02)
    watch = Watcher(folder)
    task = asyncio.create_task(
        client.download(
            f"{origin.base}/slow",
            folder / "x.mp4",
            max_bytes=10**6,
            total_timeout=30,
            progress=watch,
        )
    )
    async with asyncio.timeout(5):
        await watch.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert watch.saw_only_a_part_file("x.mp4") and names(folder) == []


async def test_a_redirect_to_a_numeric_loopback_host_is_refused_in_every_mode(
    client: PeerClient, origin: Origin, guard: Origin, folder: Path
) -> None:
    """``2130706433`` is 127.0.0.1 to the system resolver: refused even in insecure mode."""
    origin.routes["/hop"] = serve_redirect(f"http://2130706433:{guard.port}/secret")
    with pytest.raises(UnsafeURL, match="numeric host"):
        await client.download(f"{origin.base}/hop", folder / "h", max_bytes=1000, total_timeout=10)
    assert [path for path, _ in origin.requests] == ["/hop"]
    assert guard.connections == 0 and names(folder) == []


# --- secure mode: TLS, a scripted name server, the pinned connection -------------------------


async def test_secure_mode_pins_each_hop_and_refuses_a_redirect_inside(
    tmp_path: Path, guard: Origin, folder: Path
) -> None:
    """peer.test is public (routed to a loopback TLS server); it redirects to inside.test,
    whose only address is 127.0.0.1. The hop is refused where the connection would be made,
    so the guard service is never reached, and no file is written."""
    peer = await Origin().start(make_certs(tmp_path, ["peer.test"]).server)
    body = os.urandom(50_000)
    peer.routes["/ok.mp4"] = serve_file(body)
    peer.routes["/go"] = serve_redirect(f"https://inside.test:{guard.port}/secret")
    resolver = ScriptedResolver({"peer.test": [[PUBLIC_V4]], "inside.test": [["127.0.0.1"]]})
    net = RecordingNetwork({(PUBLIC_V4, peer.port): peer.port})
    # TLS verification is not what is tested here (test_fed_ssrf_pinning covers it).
    client = pinned_client(resolver, net, verify=False)
    try:
        got = await client.download(
            f"https://peer.test:{peer.port}/ok.mp4",
            folder / "ok.mp4",
            max_bytes=10**6,
            total_timeout=10,
        )
        assert got.size == len(body) and (folder / "ok.mp4").read_bytes() == body
        assert peer.requests[0][1]["host"] == f"peer.test:{peer.port}"

        with pytest.raises(UnsafeURL, match=r"inside\.test resolves to no public address"):
            await client.download(
                f"https://peer.test:{peer.port}/go",
                folder / "go.mp4",
                max_bytes=10**6,
                total_timeout=10,
            )
        # An http:// URL is refused outright in secure mode.
        with pytest.raises(UnsafeURL, match="refusing http URL"):
            await client.download(
                f"http://127.0.0.1:{guard.port}/secret",
                folder / "plain",
                max_bytes=10**6,
                total_timeout=10,
            )
    finally:
        await client.aclose()
        await peer.stop()
    assert resolver.calls == ["peer.test", "peer.test", "inside.test"]
    assert all(dialled == (PUBLIC_V4, peer.port) for dialled in net.attempts)
    assert [path for path, _ in peer.requests] == ["/ok.mp4", "/go"]
    assert guard.connections == 0
    assert names(folder) == ["ok.mp4"]
