"""The media proxy: remote clips' videos and posters served from here, never from the peer.

A remote clip's video was embedded at the peer's URL: every viewer's browser contacted the
peer, before the provenance check as after it. Now pages and API entities name a proxy URL
on this server, only once the check has fetched the video; the proxy serves only the URLs of
stored clips (an HMAC in the path), through the SSRF-guarded peer client, capped, typed by
this server, with byte ranges for players; and its errors say nothing about the fetch.

The peer is a real HTTP server on loopback that honours ``Range`` and records each request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from factories import local_account
from fedhelpers import DOMAIN, make_remote

from activitypub import objects
from fedisora import urls
from fedisora.config import Settings
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient
from fedisora.federation.ingest import handle_activity
from fedisora.federation.media_proxy import (
    MAX_POSTER_BYTES,
    MAX_STREAMS,
    MAX_STREAMS_PER_CLIENT,
)
from fedisora.models import Account, Clip, MediaFile
from fedisora.services import posts
from fedisora.services.account_deletion import suspend_account

VIDEO = bytes(range(256)) * 40  # 10,240 bytes
POSTER = b"\x89PNG\r\n\x1a\n" + b"p" * 100


@dataclass
class RangePeer:
    """A static file server on 127.0.0.1 that honours one byte range, recording requests."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0
    gate: threading.Event | None = None  # when set: bodies wait for it after the headers
    _server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RangePeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                peer.requests.append((self.path, wanted))
                found = peer.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                body, content_type = found
                status, start, end = 200, 0, len(body) - 1
                match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted or "")
                if match:
                    if match.group(1):
                        start = int(match.group(1))
                        end = int(match.group(2)) if match.group(2) else len(body) - 1
                    else:
                        start = max(0, len(body) - int(match.group(2)))
                    end = min(end, len(body) - 1)
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                self.end_headers()
                if peer.gate is not None:
                    self.wfile.flush()
                    peer.gate.wait(30)
                self.wfile.write(body[start : end + 1])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a reader that hangs up early (a refused answer) is no error here

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def peer() -> Iterator[RangePeer]:
    server = RangePeer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def app(db: str, settings: Settings) -> Any:
    """The app, its federation talking to loopback through the real (pinned) peer client."""
    from fedisora.app import create_app

    urls.configure(settings)
    federation = Federation(settings, PeerClient(insecure=True, timeout=5.0))
    set_federation(federation)
    try:
        yield create_app(settings, run_work=False, manage_db=False)
    finally:
        await federation.aclose()
        set_federation(None)


def _create(author: Account, peer: RangePeer, n: int) -> dict[str, Any]:
    """A Create(Note) with a video and a poster on *peer*, as a peer federates a clip."""
    assert author.followers_uri is not None
    note_id = f"{author.uri}/clips/{n}"
    to, cc = objects.addressing("public", author.followers_uri)
    note = objects.note_document(
        objects.NoteInfo(
            id=note_id,
            attributed_to=author.uri,
            content="<p>waves #sea</p>",
            published="2026-01-01T00:00:00Z",
            to=to,
            cc=cc,
            hashtags=[("sea", f"{peer.base}/tags/sea")],
            video=objects.VideoInfo(
                url=f"{peer.base}/v/{n}.mp4",
                poster_url=f"{peer.base}/p/{n}.png",
                width=64,
                height=112,
                duration=1.0,
            ),
        ),
        context=False,
    )
    return objects.activity(
        "Create", f"{note_id}/activity", author.uri, note, to=note["to"], cc=note["cc"]
    )


async def _remote_clip(peer: RangePeer, settings: Settings, n: int = 1) -> Clip:
    """A clip of rita@<peer> stored as the inbox stores it (nothing fetched meanwhile)."""
    uri = f"{peer.base}/users/rita"
    author = await Account.get_or_none(uri=uri)
    if author is None:
        author = (await make_remote("rita", f"127.0.0.1:{peer.port}", uri)).account
    peer.files[f"/v/{n}.mp4"] = (VIDEO, "video/mp4")
    peer.files[f"/p/{n}.png"] = (POSTER, "image/png")
    fed = Federation(settings, PeerClient(insecure=True, transport=httpx.MockTransport(_never)))
    try:
        await handle_activity(fed, _create(author, peer, n))
    finally:
        await fed.aclose()
    return await Clip.get(uri=f"{uri}/clips/{n}")


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"nothing is fetched while storing: {request.url}")


async def _checked(clip: Clip, state: str = "verified", size: int = len(VIDEO)) -> MediaFile:
    """The clip's video as the provenance check leaves it after fetching it."""
    media = await MediaFile.get(pk=clip.media_id)
    media.provenance = {
        **media.provenance,
        "state": state,
        "reason": "checked",
        "checked_at": "2026-01-02T03:04:05+00:00",
        "file_manifest_digest": None,
        "file_size": size,
        "file_sha256": "00" * 32,
    }
    await media.save()
    return media


def _path(url: str) -> str:
    return url.removeprefix(f"https://{DOMAIN}")


SRC = re.compile(r'(?:src|poster)="([^"]*)"')
FEED = "/explore?tab=federated"  # the page that plays remote clips (a grid shows no video)


def _media_urls(page: str) -> list[str]:
    """The URLs *page* loads media from (the site's own script aside)."""
    return [u for u in SRC.findall(page) if not u.startswith("/static/")]


async def test_nothing_is_fetched_or_embedded_before_the_check(
    app: Any, peer: RangePeer, settings: Settings
) -> None:
    clip = await _remote_clip(peer, settings)
    media = await MediaFile.get(pk=clip.media_id)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        page = await c.get(FEED, headers={"accept": "text/html"})
        api = (await c.get(f"/api/v1/statuses/{clip.pk}")).json()
        # Even a correctly signed proxy URL serves nothing before the check.
        token_url = urls.current().media_proxy(media.pk, "original", str(media.remote_url))
        early = await c.get(_path(token_url))
    assert "The video shows once this server has checked its provenance." in page.text
    assert _media_urls(page.text) == [] and peer.base not in page.text.replace(
        f'href="{peer.base}', ""
    )
    attachment = api["media_attachments"][0]
    assert attachment["url"] is None and attachment["preview_url"] is None
    assert attachment["remote_url"] == f"{peer.base}/v/1.mp4"
    assert early.status_code == 404 and early.json() == {"error": "Record not found"}
    assert peer.requests == []


async def test_a_checked_clip_plays_from_here_with_byte_ranges(
    app: Any, peer: RangePeer, settings: Settings
) -> None:
    clip = await _remote_clip(peer, settings)
    await _checked(clip)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        page = (await c.get(FEED, headers={"accept": "text/html"})).text
        attachment = (await c.get(f"/api/v1/statuses/{clip.pk}")).json()["media_attachments"][0]
        embedded = _media_urls(page)
        assert embedded == [attachment["url"], attachment["preview_url"]]
        assert all(u.startswith(f"https://{DOMAIN}/media_proxy/{clip.media_id}/") for u in embedded)
        assert peer.requests == []  # the page and the entity cost the peer nothing

        whole = await c.get(_path(attachment["url"]))
        assert whole.status_code == 200 and whole.content == VIDEO
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["content-length"] == str(len(VIDEO))
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in whole.headers["content-security-policy"]
        assert peer.requests == [("/v/1.mp4", None)]

        part = await c.get(_path(attachment["url"]), headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == VIDEO[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(VIDEO)}"
        tail = await c.get(_path(attachment["url"]), headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == VIDEO[-10:]
        # Several ranges, or one that is not one, are ignored: the whole file.
        for odd in ("bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=-"):
            r = await c.get(_path(attachment["url"]), headers={"Range": odd})
            assert r.status_code == 200 and r.content == VIDEO, odd
        past = await c.get(_path(attachment["url"]), headers={"Range": "bytes=99999-"})
        assert past.status_code == 416

        poster = await c.get(_path(attachment["preview_url"]))
        assert poster.status_code == 200 and poster.content == POSTER
        assert poster.headers["content-type"] == "image/png"


async def test_only_urls_handed_out_for_stored_clips_are_served(
    app: Any, peer: RangePeer, settings: Settings
) -> None:
    clip = await _remote_clip(peer, settings)
    media = await _checked(clip)
    u = urls.current()
    good = _path(u.media_proxy(media.pk, "original", str(media.remote_url)))
    media_id, token, kind = good.split("/")[2:]
    forged = [
        f"/media_proxy/{media_id}/{token[:-2]}AA/{kind}",  # a token not ours
        f"/media_proxy/{media_id}/{token}/small",  # the video's token for the poster
        f"/media_proxy/{int(media_id) + 1}/{token}/{kind}",
        f"/media_proxy/{media_id}/{token}/evil",
        f"/media_proxy/x/{token}/{kind}",
        # Another URL cannot be named: the token is for the stored one only.
        _path(u.media_proxy(media.pk, "original", "http://127.0.0.1:1/admin")),
    ]
    ann = await local_account("ann")
    own = await posts.post_clip(ann, await _local_video(ann), caption="mine")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        for path in forged:
            r = await c.get(path)
            assert r.status_code == 404 and r.json() == {"error": "Record not found"}, path
        # A local clip's media is no proxy's business.
        local = _path(u.media_proxy(int(own.media_id or 0), "original", "http://x/y"))
        assert (await c.get(local)).status_code == 404
        assert (await c.get(good)).status_code == 200

        # The peer changes the URL (an Update): the old proxy URL dies with it.
        await MediaFile.filter(pk=media.pk).update(remote_url=f"{peer.base}/v/other.mp4")
        assert (await c.get(good)).status_code == 404
        await MediaFile.filter(pk=media.pk).update(remote_url=f"{peer.base}/v/1.mp4")
        # Deleted, or its author suspended: nothing is served any more.
        await Clip.filter(pk=clip.pk).update(deleted_at=clip.created_at)
        assert (await c.get(good)).status_code == 404
        await Clip.filter(pk=clip.pk).update(deleted_at=None)
        await suspend_account(await Account.get(pk=clip.account_id))
        assert (await c.get(good)).status_code == 404
    assert peer.requests == [("/v/1.mp4", None)]


async def _local_video(account: Account) -> MediaFile:
    from factories import rendered_video

    return await rendered_video(account)


async def test_what_cannot_be_passed_on_is_a_502_that_says_nothing(
    app: Any, peer: RangePeer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    changed = await _remote_clip(peer, settings, 1)
    await _checked(changed, size=len(VIDEO) + 1)  # the peer serves another file now
    missing = await _remote_clip(peer, settings, 2)
    await _checked(missing)
    peer.files.pop("/v/2.mp4")
    html_poster = await _remote_clip(peer, settings, 3)
    await _checked(html_poster)
    peer.files["/p/3.png"] = (b"<script>alert(1)</script>", "text/html")
    big_poster = await _remote_clip(peer, settings, 4)
    await _checked(big_poster)
    peer.files["/p/4.png"] = (b"\x89PNG" + b"x" * MAX_POSTER_BYTES, "image/png")

    cases = [
        (changed, "original"),
        (missing, "original"),
        (html_poster, "small"),
        (big_poster, "small"),
    ]
    transport = httpx.ASGITransport(app=app)
    caplog.set_level(logging.INFO, logger="fedisora.federation")
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        for clip, kind in cases:
            media = await MediaFile.get(pk=clip.media_id)
            remote = media.remote_url if kind == "original" else media.remote_poster_url
            r = await c.get(_path(urls.current().media_proxy(media.pk, kind, str(remote))))
            assert r.status_code == 502, (clip.pk, kind)
            assert r.json() == {"error": "the file could not be fetched from its server"}
            assert "127.0.0.1" not in r.text and "<script" not in r.text
    assert "media proxy" in caplog.text  # the why is logged


async def test_the_proxy_fetches_through_the_ssrf_guard(
    db: str, settings: Settings, peer: RangePeer
) -> None:
    """With the production client (no private addresses), a stored clip whose URL names a
    loopback host is refused before any connection: the proxy is no way past the guard."""
    from fedisora.app import create_app

    urls.configure(settings)
    federation = Federation(settings, PeerClient(insecure=False, timeout=5.0))
    set_federation(federation)
    try:
        clip = await _remote_clip(peer, settings)
        media = await _checked(clip)
        app = create_app(settings, run_work=False, manage_db=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
            proxied = urls.current().media_proxy(media.pk, "original", str(media.remote_url))
            r = await c.get(_path(proxied))
        assert r.status_code == 502 and "127.0.0.1" not in r.text
        assert peer.requests == []
    finally:
        await federation.aclose()
        set_federation(None)


async def _requested(peer: RangePeer, n: int) -> None:
    """Wait until *peer* got *n* requests."""
    async with asyncio.timeout(10):
        while True:
            if len(peer.requests) >= n:
                return
            await asyncio.sleep(0.01)


async def test_one_client_cannot_hold_every_stream(
    app: Any, peer: RangePeer, settings: Settings
) -> None:
    """A client holding its share of streams gets a 429 for the next, while another client
    is still served; once its answers end, it is served again."""
    assert MAX_STREAMS_PER_CLIENT < MAX_STREAMS
    clip = await _remote_clip(peer, settings)
    media = await _checked(clip)
    video = _path(urls.current().media_proxy(media.pk, "original", str(media.remote_url)))
    peer.gate = threading.Event()

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 1234))
        return httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}")

    async with client("198.51.100.7") as greedy, client("203.0.113.9") as other:
        held = [asyncio.create_task(greedy.get(video)) for _ in range(MAX_STREAMS_PER_CLIENT)]
        await _requested(peer, MAX_STREAMS_PER_CLIENT)  # all streaming (the peer holds them)
        refused = await greedy.get(video)
        assert refused.status_code == 429, refused.text
        assert refused.json() == {
            "error": "too many files are being served to you at once; try again"
        }
        assert refused.headers["Retry-After"] == "5"
        assert len(peer.requests) == MAX_STREAMS_PER_CLIENT  # nothing fetched for it

        served = asyncio.create_task(other.get(video))  # another client still gets a slot
        await _requested(peer, MAX_STREAMS_PER_CLIENT + 1)
        peer.gate.set()
        for answer in await asyncio.gather(*held, served):
            assert answer.status_code == 200 and answer.content == VIDEO

        again = await greedy.get(video)  # its slots were given back
        assert again.status_code == 200 and again.content == VIDEO
