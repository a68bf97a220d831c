"""Outgoing HTTP: request signing as an ``httpx.Auth``, an SSRF guard, bounded fetches.

Every request to a peer goes through :class:`PeerClient`:

* the URL must be ``https`` (``http`` only with ``insecure_http``) and its host must not
  resolve to a private, loopback, link-local or otherwise special address (unless
  ``insecure_http``: the loopback test instances need it);
* redirects are followed by hand, at most three, each hop checked again (the address is
  checked when resolved here, so DNS rebinding between check and connect is not covered);
* responses are read as a stream and cut at a size limit; every request has a timeout.

`SignatureAuth` signs with RFC 9421 and, on a 401 (or another answer that may mean the
peer cannot read it), signs again with draft-cavage ("double-knock"), remembering per host
which scheme worked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from activitypub.keys import PrivateKey
from activitypub.signatures import Request, Scheme, sign_request

__all__ = [
    "ACCEPT_ACTIVITY",
    "ACTIVITY_JSON",
    "FetchError",
    "PeerClient",
    "SchemeMemory",
    "SignatureAuth",
    "UnsafeURL",
]

ACTIVITY_JSON = "application/activity+json"
ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "fedisora/0.1 (+https://fedisora.org)"


class FetchError(Exception):
    """A request to a peer failed (network, status, size, or not JSON)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnsafeURL(FetchError):
    """The URL is not one we may request (scheme, or a private/loopback address)."""


@dataclass
class SchemeMemory:
    """Which signature scheme each host accepted last (cavage after an RFC 9421 401).

    This one lives in process memory; :class:`~activitypub.federation.schemes.StoredSchemes`
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


def _forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_url(url: str, *, insecure: bool) -> None:
    """Refuse URLs we must not request; resolves the host (the SSRF guard)."""
    parts = urlsplit(url)
    if parts.scheme not in (("http", "https") if insecure else ("https",)):
        raise UnsafeURL(f"refusing {parts.scheme or 'relative'} URL {url!r}")
    host = parts.hostname
    if not host:
        raise UnsafeURL(f"URL {url!r} has no host")
    if insecure:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"bad port in {url!r}") from exc
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = str(info[4][0])
        if _forbidden_address(address):
            raise UnsafeURL(f"{host} resolves to a non-public address ({address})")


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
            await check_url(url, insecure=self.insecure)
            request = self._client.build_request(method, url, headers=headers, content=content)
            if isinstance(auth, SignatureAuth):
                await auth.memory.load(request.url.netloc.decode("ascii"))
            try:
                # httpx's timeout is per operation; a peer dripping bytes needs a total one.
                async with asyncio.timeout(self.total_timeout):
                    response = await self._client.send(request, auth=auth, stream=True)
                    try:
                        body = await self._read(response)
                    finally:
                        await response.aclose()
            except httpx.HTTPError as exc:
                raise FetchError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
            except TimeoutError as exc:
                raise FetchError(
                    f"{method} {url}: no full answer in {self.total_timeout} s"
                ) from exc
            finally:
                if isinstance(auth, SignatureAuth) and auth.memory.changed:
                    await auth.memory.save()
            if method == "GET" and response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"redirect without Location from {url}", response.status_code)
                url = urljoin(url, location)
                continue
            return response, body
        raise FetchError(f"too many redirects fetching {url}")

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"response of {declared} bytes is over the limit")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"response is over the limit of {self.max_bytes} bytes")
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise FetchError(f"reading response: {exc}") from exc
        return b"".join(chunks)

    async def get_json(
        self, url: str, *, auth: httpx.Auth | None = None, accept: str = ACCEPT_ACTIVITY
    ) -> tuple[str, Any]:
        """GET *url* as JSON; return (the final URL, the document)."""
        response, body = await self.request("GET", url, auth=auth, headers={"Accept": accept})
        final = str(response.url)
        if response.status_code != 200:
            raise FetchError(f"GET {url}: HTTP {response.status_code}", response.status_code)
        try:
            return final, json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise FetchError(f"GET {url}: not JSON") from exc

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
