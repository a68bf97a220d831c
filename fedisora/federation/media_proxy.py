"""Remote clips' videos and posters, served from here: the media proxy.

A remote clip's video used to be embedded at the URL its peer gave, so every viewer's browser
fetched it from that host: the host learnt who watched what, and could serve viewers another
file than the one this server checked. Of the two ways out (embed a remote URL only once the
provenance check has fetched it, or serve it from here), this is the second, as Mastodon
serves cached remote media:

- a viewer's browser never contacts a remote host, for any clip (its address stays here);
- this server fetches with the same :class:`~fedisora.federation.http.PeerClient` as
  every other peer request (SSRF guard, pinned connections to checked addresses, at most
  three redirects, each checked again, timeouts), unsigned;
- only the URLs of stored remote clips are served: a proxy URL carries an HMAC of the media
  row, the kind and the stored URL (:meth:`fedisora.urls.Urls.media_proxy`), so it cannot
  name another URL, and a clip that is deleted, of a suspended author, or whose stored URL
  changed is a 404;
- only once the clip's provenance check has fetched the video (its label is decided from the
  file): before, nothing is fetched for it, and the pages say the video shows once checked;
  afterwards a file whose size is not the checked one is refused (it changed on its server);
- the answer is capped (:data:`~fedisora.federation.media_check.MAX_REMOTE_VIDEO_BYTES`
  for a video, :data:`MAX_POSTER_BYTES` for a poster), streamed (never whole in memory),
  typed by this server (a video type the clip was stored with, or an image type) with
  ``nosniff`` and a sandboxing CSP, and a single byte range (``Range``) is passed on, so
  players seek without downloading everything;
- at most :data:`MAX_STREAMS` answers are streamed at once per process (then a 503), and at
  most :data:`MAX_STREAMS_PER_CLIENT` of them to one client address (then a 429), so that
  one client cannot hold every slot (a browser opens at most six connections to a host over
  HTTP/1.1, fewer than that cap).

Errors say nothing about what the fetch met (that is logged): 404 for anything not served,
502 when the peer's answer cannot be passed on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from activitypub.objects import web_url
from fedisora import urls
from fedisora.api.http import client_ip
from fedisora.federation.context import get_federation
from fedisora.federation.http import FetchError
from fedisora.federation.media_check import MAX_REMOTE_VIDEO_BYTES
from fedisora.ids import row_id
from fedisora.models import Account, Clip, MediaFile

__all__ = [
    "MAX_POSTER_BYTES",
    "MAX_STREAMS",
    "MAX_STREAMS_PER_CLIENT",
    "media_proxy",
    "proxied_poster",
    "proxied_video",
    "routes",
    "video_checked",
]

log = logging.getLogger("fedisora.federation")

MAX_POSTER_BYTES = 8 * 1024 * 1024
MAX_STREAMS = 32
MAX_STREAMS_PER_CLIENT = 8
VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"})
CACHE_CONTROL = "private, max-age=3600"
_RANGE = re.compile(r"bytes=(\d{0,15})-(\d{0,15})")
_CONTENT_RANGE = re.compile(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})")
_streams = asyncio.Semaphore(MAX_STREAMS)
_per_client: dict[str, int] = {}  # client address -> answers being streamed to it


@dataclass(frozen=True)
class _Kind:
    attribute: str  # the MediaFile column holding the remote URL
    max_bytes: int
    accept: str


KINDS = {
    "original": _Kind("remote_url", MAX_REMOTE_VIDEO_BYTES, "video/*, */*;q=0.1"),
    "small": _Kind("remote_poster_url", MAX_POSTER_BYTES, "image/*"),
}


def video_checked(media: MediaFile) -> bool:
    """Whether the provenance check of this remote video has fetched it (whatever it
    found): then, and only then, its video and poster are proxied."""
    prov = media.provenance or {}
    fetched = "file_size" in prov or "file_manifest_digest" in prov
    return bool(prov.get("checked_at")) and fetched


def _proxied(media: MediaFile | None, kind: str) -> str | None:
    if media is None or media.file is not None or not video_checked(media):
        return None
    remote = web_url(getattr(media, KINDS[kind].attribute))  # http(s) only
    if remote is None:
        return None
    return urls.current().media_proxy(media.pk, kind, remote)


def proxied_video(media: MediaFile | None) -> str | None:
    """The URL a remote clip's video is shown from (None: not to be shown, or not yet)."""
    return _proxied(media, "original")


def proxied_poster(media: MediaFile | None) -> str | None:
    """The URL a remote clip's poster is shown from (None: none, or not yet)."""
    return _proxied(media, "small")


def _not_found() -> Response:
    return JSONResponse({"error": "Record not found"}, 404)


def _bad_gateway() -> Response:
    return JSONResponse({"error": "the file could not be fetched from its server"}, 502)


def _range(value: str | None) -> str | None:
    """One byte range to pass on, or None (absent, several, or not one: the whole file is
    sent, as RFC 9110 lets a server ignore a Range it does not take)."""
    found = _RANGE.fullmatch((value or "").strip())
    if found is None or not (found.group(1) or found.group(2)):
        return None
    start, end = found.group(1), found.group(2)
    if start and end and int(end) < int(start):
        return None
    return f"bytes={start}-{end}"


async def _media(request: Request) -> tuple[MediaFile, str, _Kind] | None:
    """The remote media the path names and the URL to fetch, if it is served now."""
    kind = KINDS.get(str(request.path_params["kind"]))
    media_id = row_id(str(request.path_params["media_id"]))
    if kind is None or media_id is None:
        return None
    media = await MediaFile.get_or_none(pk=media_id)
    if media is None or media.file is not None or not video_checked(media):
        return None
    remote = web_url(getattr(media, kind.attribute))
    if remote is None:
        return None
    expected = urls.current().media_proxy_token(media.pk, str(request.path_params["kind"]), remote)
    if not hmac.compare_digest(expected, str(request.path_params["token"])):
        return None
    clip = await Clip.filter(media_id=media.pk, local=False, deleted_at=None).first()
    if clip is None:
        return None
    author = await Account.get_or_none(pk=clip.account_id)
    if author is None or author.suspended:
        return None
    return media, remote, kind


def _length_of(upstream: httpx.Response, ranged: bool) -> tuple[int | None, int | None]:
    """(bytes this answer carries, the whole file's size) as the peer declares them; a
    declaration that does not parse is a :class:`ValueError`."""
    declared = upstream.headers.get("content-length")
    length = int(declared) if declared is not None and declared.isdigit() else None
    if declared is not None and length is None:
        raise ValueError(f"Content-Length {declared!r}")
    if not ranged:
        return length, length
    found = _CONTENT_RANGE.fullmatch(upstream.headers.get("content-range", "").strip())
    if found is None:
        raise ValueError(f"Content-Range {upstream.headers.get('content-range')!r}")
    start, end, total = (int(g) for g in found.groups())
    if end < start or end >= total or (length is not None and length != end - start + 1):
        raise ValueError(f"Content-Range {upstream.headers.get('content-range')!r}")
    return end - start + 1, total


def _answer_headers(
    media: MediaFile, kind: _Kind, upstream: httpx.Response, size: tuple[int | None, int | None]
) -> dict[str, str]:
    """The headers passed on: the type is this server's, the lengths the peer's (checked)."""
    length, total = size
    if kind.attribute == "remote_url":
        content_type = media.content_type if media.content_type in VIDEO_TYPES else "video/mp4"
        checked = (media.provenance or {}).get("file_size")
        if isinstance(checked, int) and total is not None and total != checked:
            raise ValueError(f"the file is {total} bytes, the checked one {checked}")
    else:
        content_type = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in IMAGE_TYPES:
            raise ValueError(f"poster of type {content_type!r}")
    if (length or 0) > kind.max_bytes or (total or 0) > kind.max_bytes:
        raise ValueError(f"{total} bytes is over the limit of {kind.max_bytes}")
    encoding = upstream.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ValueError(f"content coding {encoding!r}")
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if length is not None:
        headers["Content-Length"] = str(length)
    if upstream.status_code == 206:
        headers["Content-Range"] = str(upstream.headers["content-range"]).strip()
    return headers


class _Held:
    """A stream slot (the process's and the client's) and the peer's response, given back
    once, however the answer ends."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.upstream: httpx.Response | None = None
        self._released = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            if self.upstream is not None:
                await self.upstream.aclose()
        finally:
            _streams.release()
            left = _per_client.pop(self.client, 1) - 1
            if left > 0:
                _per_client[self.client] = left


async def _body(held: _Held, limit: int, what: str) -> AsyncIterator[bytes]:
    """The peer's bytes as they come, cut at *limit* (the declared length or the cap); the
    slot and the peer's response are given back when it ends, however it ends (a viewer
    that goes away included)."""
    assert held.upstream is not None
    sent = 0
    try:
        async for chunk in held.upstream.aiter_raw():
            if sent + len(chunk) > limit:
                log.info("media proxy: %s sent more than %d bytes; cut", what, limit)
                chunk = chunk[: limit - sent]
            sent += len(chunk)
            if chunk:
                yield chunk
            if sent >= limit:
                return
    except httpx.HTTPError as exc:  # the status is sent: the answer can only end short
        log.info("media proxy: reading %s failed: %s", what, exc)
    finally:
        await held.release()


async def media_proxy(request: Request) -> Response:
    """``GET /media_proxy/<media id>/<token>/<original|small>``."""
    found = await _media(request)
    if found is None:
        return _not_found()
    media, remote, kind = found
    client = client_ip(request)
    if _per_client.get(client, 0) >= MAX_STREAMS_PER_CLIENT:
        mine = {"error": "too many files are being served to you at once; try again"}
        return JSONResponse(mine, 429, headers={"Retry-After": "5"})
    if _streams.locked():
        busy = {"error": "too many files are being served; try again"}
        return JSONResponse(busy, 503, headers={"Retry-After": "5"})
    await _streams.acquire()  # no await between the checks and here: both hold
    _per_client[client] = _per_client.get(client, 0) + 1
    held = _Held(client)
    handed_over = False
    try:
        wanted = _range(request.headers.get("range"))
        headers = {"Accept": kind.accept, "Accept-Encoding": "identity"}
        if wanted is not None:
            headers["Range"] = wanted
        fed = get_federation(request.app.state.settings)
        try:
            held.upstream = upstream = await fed.client.open_stream(remote, headers=headers)
        except FetchError as exc:
            log.info("media proxy: cannot fetch %s: %s", remote, exc)
            return _bad_gateway()
        if upstream.status_code == 416 and wanted is not None:
            return Response(status_code=416)
        ranged = upstream.status_code == 206 and wanted is not None
        if upstream.status_code != 200 and not ranged:
            log.info("media proxy: %s answered HTTP %d", remote, upstream.status_code)
            return _bad_gateway()
        try:
            size = _length_of(upstream, ranged)
            answer = _answer_headers(media, kind, upstream, size)
        except ValueError as exc:
            log.info("media proxy: refusing %s: %s", remote, exc)
            return _bad_gateway()
        limit = size[0] if size[0] is not None else kind.max_bytes
        checked = (media.provenance or {}).get("file_size")
        if size[0] is None and kind is KINDS["original"] and isinstance(checked, int):
            limit = min(limit, checked)  # no declared length: at most the checked file
        response = StreamingResponse(
            _body(held, limit, remote),
            status_code=upstream.status_code,
            headers=answer,
            background=BackgroundTask(held.release),
        )
        handed_over = True
        return response
    finally:
        if not handed_over:
            await held.release()


def routes() -> list[BaseRoute]:
    return [Route("/media_proxy/{media_id}/{token}/{kind}", media_proxy, methods=["GET"])]
