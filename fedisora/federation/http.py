"""Outgoing HTTP: request signing as an ``httpx.Auth``, an SSRF guard, bounded fetches.

Every request to a peer goes through :class:`PeerClient`:

* the URL must be ``https`` (``http`` only with ``insecure_http``); IP literals in forms other
  than the canonical one (``2130706433``, ``0177.0.0.1``, ``127.1``) are refused outright;
* the host must not resolve to a private, loopback, link-local or otherwise special address
  (unless ``insecure_http``: the loopback test instances need it). The check is made where
  the connection is opened (:mod:`fedisora.federation.pinning`): the host is resolved once,
  refused addresses are dropped, and the socket is connected to a checked IP literal while
  TLS (SNI, certificate) and the ``Host`` header keep the name, so DNS rebinding between the
  check and the connect is not possible;
* redirects are followed by hand, at most three, each hop checked again (and connected
  through the same pinned path);
* responses are read as a stream and cut at a size limit; every request has a timeout.
  Large files (remote videos) go to disk with :meth:`PeerClient.download`, under the same
  rules, never whole in memory.

`SignatureAuth` signs with RFC 9421 and, on a 401 (or another answer that may mean the
peer cannot read it), signs again with draft-cavage ("double-knock"), remembering per host
which scheme worked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from activitypub.keys import PrivateKey
from activitypub.signatures import Request, Scheme, sign_request
from fedisora.boundary.text import MAX_PEER_DEPTH, InputRefused, parse_json
from fedisora.federation.pinning import (
    PinnedTransport,
    RefusedAddress,
    Resolver,
    forbidden_address,
    ip_literal,
    system_resolve,
)

__all__ = [
    "ACCEPT_ACTIVITY",
    "ACTIVITY_JSON",
    "DownloadResult",
    "FetchError",
    "PeerClient",
    "SchemeMemory",
    "SignatureAuth",
    "TooLarge",
    "UnsafeURL",
]

ACTIVITY_JSON = "application/activity+json"
ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "fedisora/0.1 (+https://fedisora.org)"
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """A request to a peer failed (network, status, size, or not JSON)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnsafeURL(FetchError):
    """The URL is not one we may request (scheme, or a private/loopback address)."""


class BlockedHost(UnsafeURL):
    """The instance's domain policy refused the host (a suspended domain, a domain not
    allowed in limited federation, or rejected media): retrying will not help."""


class TooLarge(FetchError):
    """The response is over the size limit, as declared (``Content-Length``) or as read: it
    is not read further. ``status`` is the status of the answer that was too large."""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What :meth:`PeerClient.download` wrote: where from, how much, and its SHA-256."""

    url: str  # the final URL, after redirects
    size: int
    sha256_hex: str
    content_type: str | None


@dataclass
class SchemeMemory:
    """Which signature scheme each host accepted last (cavage after an RFC 9421 401).

    This one lives in process memory; :class:`~fedisora.federation.schemes.StoredSchemes`
    keeps it in the database. :class:`PeerClient` calls :meth:`load` before a signed request
    and :meth:`save` after it (``auth_flow`` is synchronous and cannot do I/O itself)."""

    by_host: dict[str, Scheme] = field(default_factory=dict)
    changed: dict[str, Scheme] = field(default_factory=dict)

    def get(self, host: str) -> Scheme:
        return self.by_host.get(host, "rfc9421")

    def remember(self, host: str, scheme: Scheme) -> None:
        if self.by_host.get(host, "rfc9421") != scheme:
            self.changed[host] = scheme
        self.by_host[host] = scheme

    async def load(self, host: str) -> None:
        """Make what is known about *host* available to :meth:`get` (nothing to do here)."""

    async def save(self) -> None:
        """Keep what :meth:`remember` learnt (nothing to do here)."""
        self.changed.clear()


class SignatureAuth(httpx.Auth):
    """Sign each request with the actor's key; double-knock with cavage on a 401."""

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        private_key: PrivateKey,
        memory: SchemeMemory,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_id = key_id
        self.private_key = private_key
        self.memory = memory
        self.clock = clock

    def _sign(self, request: httpx.Request, scheme: Scheme) -> None:
        for name in ("signature", "signature-input", "digest", "content-digest", "date"):
            request.headers.pop(name, None)
        value = Request(
            request.method, str(request.url), request.headers.multi_items(), request.content
        )
        added = sign_request(value, self.key_id, self.private_key, now=self.clock(), scheme=scheme)
        request.headers.update(added)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        host = request.url.netloc.decode("ascii")
        first = self.memory.get(host)
        self._sign(request, first)
        response = yield request
        if not _signature_refused(response.status_code):
            return
        second: Scheme = "cavage" if first == "rfc9421" else "rfc9421"
        self._sign(request, second)
        response = yield request
        if response.status_code < 400:
            self.memory.remember(host, second)


def _signature_refused(status: int) -> bool:
    """Whether an answer may mean "I cannot read this signature scheme". A 401 says so; some
    servers answer 400, 403 or even 500 (a verifier crashing on RFC 9421 headers: seen in
    bovine). Knocking again is harmless: receivers deduplicate by activity id."""
    return status in (400, 401, 403) or status >= 500


def _numeric_host(host: str) -> bool:
    """Whether *host* is an IPv4 address in a form other than dotted-quad decimal (a single
    number, octal or hex parts, fewer than four parts): resolvers read these as addresses."""
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return ip_literal(host) is None


async def check_url(url: str, *, insecure: bool, resolve: Resolver | None = system_resolve) -> None:
    """Refuse URLs we must not request (the SSRF guard before connecting).

    With *resolve*, the host name is resolved and every address checked; ``None`` leaves that
    to the connection (:class:`~fedisora.federation.pinning.PinnedBackend`), which is the
    check that counts: a resolution here says nothing about the one made to connect."""
    parts = urlsplit(url)
    if parts.scheme not in (("http", "https") if insecure else ("https",)):
        raise UnsafeURL(f"refusing {parts.scheme or 'relative'} URL {url!r}")
    host = parts.hostname
    if not host:
        raise UnsafeURL(f"URL {url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"bad port in {url!r}") from exc
    if _numeric_host(host):
        raise UnsafeURL(f"refusing the numeric host {host!r} in {url!r}")
    if insecure:
        return
    literal = ip_literal(host)
    if literal is not None:
        if forbidden_address(str(literal)):
            raise UnsafeURL(f"refusing the non-public address {host} in {url!r}")
        return
    if resolve is None:
        return
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    for address in addresses:
        if forbidden_address(address):
            raise UnsafeURL(f"{host} resolves to a non-public address ({address})")


@contextlib.contextmanager
def _translated(method: str, url: str) -> Iterator[None]:
    """Errors of one exchange as this module's: a refused address is :class:`UnsafeURL`,
    anything httpx raises a :class:`FetchError` without status (no answer)."""
    try:
        yield
    except RefusedAddress as exc:  # the pinned connection refused the resolved address
        raise UnsafeURL(f"{method} {url}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc


def _redirect_target(url: str, response: httpx.Response) -> str | None:
    """Where a redirect answer points (resolved against *url*), or None if it is none."""
    if response.status_code not in REDIRECTS:
        return None
    location = response.headers.get("location")
    if not location:
        raise FetchError(f"redirect without Location from {url}", response.status_code)
    return urljoin(url, str(location))


def _refuse_declared_size(response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(
            f"response of {declared} bytes is over the limit of {max_bytes}",
            response.status_code,
        )


async def _save(
    response: httpx.Response,
    part: Path,
    max_bytes: int,
    progress: Callable[[int], Awaitable[None]] | None,
) -> DownloadResult:
    _refuse_declared_size(response, max_bytes)
    digest = hashlib.sha256()
    size = 0
    async with await anyio.open_file(part, "wb") as out:
        # As the bytes arrive (at most 64 KiB a read): a slow peer still reports progress.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(
                    f"response is over the limit of {max_bytes} bytes", response.status_code
                )
            digest.update(chunk)
            await out.write(chunk)
            if progress is not None:
                await progress(size)
    return DownloadResult(
        url=str(response.url),
        size=size,
        sha256_hex=digest.hexdigest(),
        content_type=response.headers.get("content-type"),
    )


class PeerClient:
    """The one way fedisora talks to peers. Share one per process (connection pooling)."""

    def __init__(
        self,
        *,
        insecure: bool,
        timeout: float = 10.0,
        total_timeout: float = 30.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        memory: SchemeMemory | None = None,
    ) -> None:
        self.insecure = insecure
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.memory = memory or SchemeMemory()
        # The instance's domain policy (fedisora.services.domain_blocks.peer_guard), set by
        # the Federation: awaited with each URL (and redirect hop) and whether it is media;
        # it raises UnsafeURL for a host this instance does not talk to.
        self.host_guard: Callable[[str, bool], Awaitable[None]] | None = None
        # The pinned transport checks addresses as it connects; any other transport (tests'
        # mock peers) gets the older check-then-connect resolution in check_url.
        self._resolve: Resolver | None = system_resolve
        if transport is None or isinstance(transport, PinnedTransport):
            transport = transport or PinnedTransport(allow_private=insecure)
            self._resolve = None
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def auth(self, key_id: str, private_key: PrivateKey) -> SignatureAuth:
        return SignatureAuth(key_id, private_key, self.memory)

    async def request(
        self,
        method: str,
        url: str,
        *,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """Send one request (following safe GET redirects); return the response and body."""
        for _ in range(MAX_REDIRECTS + 1):
            request = await self._prepare(method, url, headers, content)
            if isinstance(auth, SignatureAuth):
                await auth.memory.load(request.url.netloc.decode("ascii"))
            try:
                with _translated(method, url):
                    # httpx's timeout is per operation; a peer dripping bytes needs a total one.
                    async with asyncio.timeout(self.total_timeout):
                        response = await self._client.send(request, auth=auth, stream=True)
                        try:
                            body = await self._read(response)
                        finally:
                            await response.aclose()
            except TimeoutError as exc:
                raise FetchError(
                    f"{method} {url}: no full answer in {self.total_timeout} s"
                ) from exc
            finally:
                if isinstance(auth, SignatureAuth) and auth.memory.changed:
                    await auth.memory.save()
            target = _redirect_target(url, response) if method == "GET" else None
            if target is None:
                return response, body
            url = target
        raise FetchError(f"too many redirects fetching {url}")

    async def _prepare(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        content: bytes | None,
        *,
        media: bool = False,
    ) -> httpx.Request:
        """The domain policy's and the SSRF guard's URL checks, then the request (each
        redirect hop comes here too). *media*: a download of a video or image."""
        if self.host_guard is not None:
            await self.host_guard(url, media)
        await check_url(url, insecure=self.insecure, resolve=self._resolve)
        try:
            return self._client.build_request(method, url, headers=headers, content=content)
        except httpx.InvalidURL as exc:
            raise UnsafeURL(f"refusing {url!r}: {exc}") from exc

    async def _read(self, response: httpx.Response) -> bytes:
        _refuse_declared_size(response, self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(
                        f"response is over the limit of {self.max_bytes} bytes",
                        response.status_code,
                    )
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise FetchError(f"reading response: {exc}") from exc
        return b"".join(chunks)

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        total_timeout: float,
        accept: str = "*/*",
        progress: Callable[[int], Awaitable[None]] | None = None,
    ) -> DownloadResult:
        """GET *url* into the file *dest*, streamed (never whole in memory), hashing as it goes.

        The SSRF guard, the pinned connections and the redirect rule are those of every other
        request. The body is written to a temporary name next to *dest* and renamed to *dest*
        once complete; on any error (or cancellation) that file is removed and *dest* is left
        as it was. *total_timeout* bounds the whole download, redirects included; each network
        operation also has the client's own shorter timeout. *progress*, if given, is awaited
        after each chunk with the bytes written so far (a worker extends its lease there);
        an exception from it aborts the download.

        Raises :class:`UnsafeURL` for a refused URL or address, :class:`TooLarge` past
        *max_bytes* (refused before reading when ``Content-Length`` says so), and
        :class:`FetchError` for anything else, with ``status`` for an HTTP answer other
        than 200.
        """
        part = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
        try:
            try:
                async with asyncio.timeout(total_timeout):
                    result = await self._download(url, part, max_bytes, accept, progress)
            except TimeoutError as exc:
                raise FetchError(f"GET {url}: not complete in {total_timeout} s") from exc
            part.replace(dest)  # atomic; synchronous so that cancellation cannot split it
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return result

    async def _download(
        self,
        url: str,
        part: Path,
        max_bytes: int,
        accept: str,
        progress: Callable[[int], Awaitable[None]] | None,
    ) -> DownloadResult:
        # Asking for no content coding: a video gains nothing from it, and what arrives is
        # what the peer stores (whatever comes is decoded, and the limit applies to that).
        headers = {"Accept": accept, "Accept-Encoding": "identity"}
        for _ in range(MAX_REDIRECTS + 1):
            request = await self._prepare("GET", url, headers, None, media=True)
            with _translated("GET", url):
                response = await self._client.send(request, stream=True)
                try:
                    target = _redirect_target(url, response)
                    if target is None:
                        if response.status_code != 200:
                            raise FetchError(
                                f"GET {url}: HTTP {response.status_code}", response.status_code
                            )
                        return await _save(response, part, max_bytes, progress)
                finally:
                    await response.aclose()
            url = target
        raise FetchError(f"too many redirects fetching {url}")

    async def open_stream(self, url: str, *, headers: dict[str, str]) -> httpx.Response:
        """GET *url* (unsigned) and return the response with its body not read yet, for the
        caller to stream and then close (``aclose``), whatever happens.

        The SSRF guard, the pinned connections and the redirect rule are those of every other
        request; each network operation has the client's timeout. Any status but a redirect is
        returned as it is: the caller decides what it may pass on. Raises :class:`UnsafeURL`
        for a refused URL or address and :class:`FetchError` for anything else."""
        for _ in range(MAX_REDIRECTS + 1):
            request = await self._prepare("GET", url, headers, None, media=True)
            with _translated("GET", url):
                response = await self._client.send(request, stream=True)
            try:
                target = _redirect_target(url, response)
            except BaseException:
                await response.aclose()
                raise
            if target is None:
                return response
            await response.aclose()
            url = target
        raise FetchError(f"too many redirects fetching {url}")

    async def get_json(
        self, url: str, *, auth: httpx.Auth | None = None, accept: str = ACCEPT_ACTIVITY
    ) -> tuple[str, Any]:
        """GET *url* as JSON; return (the final URL, the document)."""
        response, body = await self.request("GET", url, auth=auth, headers={"Accept": accept})
        final = str(response.url)
        if response.status_code != 200:
            raise FetchError(f"GET {url}: HTTP {response.status_code}", response.status_code)
        try:
            document = parse_json(body, max_depth=MAX_PEER_DEPTH)  # as the inbox reads
        except InputRefused as exc:
            raise FetchError(f"GET {url}: {exc.message}") from exc
        return final, document

    async def post_activity(self, url: str, body: bytes, auth: httpx.Auth) -> httpx.Response:
        """POST an activity; the caller decides what each status means."""
        response, _ = await self.request(
            "POST",
            url,
            auth=auth,
            headers={"Content-Type": ACTIVITY_JSON, "Accept": ACCEPT_ACTIVITY},
            content=body,
        )
        return response
