"""Provenance roots: this instance publishes its own, and fetches those its peers publish.

Every fedisora instance signs its clips under a small root CA of its own
(``<data_dir>/provenance/root.pem``, see :mod:`render.instance`). When that root is replaced
(``fedisora init --new-provenance-root``, or by hand), the old one is *retired*: kept in the
root history (``provenance/roots/``, certificates only) and still published, so the clips
signed under it keep verifying. The instance serves its roots at :data:`PROVENANCE_ROOT_PATH`
and advertises that URL in its NodeInfo metadata as ``provenanceRoot``:

- ``GET /.well-known/fedisora/provenance-root.pem``: a PEM bundle, the current root first,
  then the most recently retired ones, at most :data:`LEGACY_ROOT_CERTIFICATES` in all (what
  fedisora before root history accepts; software reading only the first certificate gets
  the current root);
- ``GET /.well-known/fedisora/provenance-root.pem?all=1``: the same, with every retired root
  (up to :data:`MAX_ROOT_CERTIFICATES`). Peers ask for this one; an older instance ignores
  the query and answers with its root.

A peer checking one of its clips fetches the roots from the clip's origin (:class:`PeerRoots`)
and adds them to its trust anchors for that check only: a root, retired or not, counts only
for clips from the instance that publishes it (and the manifest must name that instance).

Trusting a root published by the origin itself means "verified" says *this clip was rendered
and signed by the instance it comes from*, which is what the label promises; it does not
vouch for that instance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from activitypub.objects import same_origin
from fedisora.config import Settings
from fedisora.federation.http import FetchError, PeerClient
from fedisora.federation.keycache import TimedCache
from render.instance import ca_certificates, own_roots

__all__ = [
    "ALL_ROOTS_QUERY",
    "LEGACY_ROOT_CERTIFICATES",
    "MAX_ROOT_CERTIFICATES",
    "PEM_TYPE",
    "PROVENANCE_ROOT_PATH",
    "PeerRoots",
    "own_root",
    "parse_root_pem",
    "peer_roots",
    "provenance_root",
    "root_url",
    "roots_url",
]

log = logging.getLogger("fedisora.federation")

PROVENANCE_ROOT_PATH = "/.well-known/fedisora/provenance-root.pem"
ALL_ROOTS_QUERY = "all=1"
PEM_TYPE = "application/x-pem-file"
MAX_ROOT_BYTES = 128 * 1024
LEGACY_ROOT_CERTIFICATES = 4
"""The most certificates fedisora before root history accepts from a peer (64 KiB at most):
the plain endpoint never serves more."""
MAX_ROOT_CERTIFICATES = 32
"""The most roots served with ``?all=1``, and accepted from a peer."""


def parse_root_pem(data: bytes | str, *, limit: int = MAX_ROOT_CERTIFICATES) -> str:
    """The CA certificates in *data*, re-encoded as PEM; ``ValueError`` when *data* is not
    one to *limit* CA certificates. Anything else in the text (a private key put there by
    mistake, comments) is dropped, never passed on."""
    from cryptography.hazmat.primitives.serialization import Encoding

    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_ROOT_BYTES:
        raise ValueError(f"more than {MAX_ROOT_BYTES} bytes")
    certificates = ca_certificates(raw, limit=limit)
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates)


def own_root(settings: Settings, *, limit: int = LEGACY_ROOT_CERTIFICATES) -> str | None:
    """This instance's roots as published, current first, then retired ones newest first (at
    most *limit*), or None before ``fedisora init``."""
    roots = own_roots(settings)
    if not roots:
        return None
    if len(roots) > limit:
        if limit >= MAX_ROOT_CERTIFICATES:
            log.warning(
                "%d provenance roots; only the newest %d are published (see provenance/roots/)",
                len(roots),
                limit,
            )
        roots = roots[:limit]
    return "".join(roots)


def root_url(uri: str) -> str:
    """Where the instance serving *uri* (an actor URI, or its base URL) publishes its root."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{PROVENANCE_ROOT_PATH}"


def roots_url(uri: str) -> str:
    """Where the instance serving *uri* publishes all its roots, retired ones included."""
    return f"{root_url(uri)}?{ALL_ROOTS_QUERY}"


async def provenance_root(request: Request) -> Response:
    """``GET /.well-known/fedisora/provenance-root.pem[?all=1]``: the public root
    certificates, the current one first."""
    settings: Settings = request.app.state.settings
    every = request.query_params.get("all") not in (None, "", "0")
    pem = own_root(settings, limit=MAX_ROOT_CERTIFICATES if every else LEGACY_ROOT_CERTIFICATES)
    if pem is None:
        return JSONResponse({"error": "this instance has no provenance root"}, 404)
    return Response(
        pem,
        media_type=PEM_TYPE,
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


class PeerRoots:
    """Roots published by peers, fetched through the :class:`PeerClient` and kept per origin
    for *ttl* seconds (*miss_ttl* when the peer publishes none, e.g. it is not fedisora).

    A check whose manifest is sound but not signed under the cached roots asks again with
    *fetched_since* (the peer may have replaced its root after they were cached): roots
    fetched before that :attr:`clock` reading are fetched anew."""

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        miss_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self.clock = clock
        # (roots, fetched at) rather than roots: a peer known to publish none is cached too.
        self._cache: TimedCache[str, tuple[str | None, float]] = TimedCache(
            ttl, 10_000, clock, name="provenance_roots"
        )

    def clear(self) -> None:
        self._cache.clear()

    async def get(
        self, client: PeerClient, uri: str, *, fetched_since: float | None = None
    ) -> str | None:
        """The roots (a PEM bundle: current first, then retired ones) published by the
        instance serving *uri*, or None if it publishes none.

        Raises :class:`FetchError` when the peer cannot be asked now (down, 5xx, timeout):
        the caller tries again later rather than concluding anything."""
        url = roots_url(uri)
        cached = self._cache.get(url)
        if cached is not None and (fetched_since is None or cached[1] >= fetched_since):
            return cached[0]
        response, body = await client.request("GET", url, headers={"Accept": PEM_TYPE})
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise FetchError(f"GET {url}: HTTP {response.status_code}", response.status_code)
        root: str | None = None
        if response.status_code == 200 and same_origin(str(response.url), url):
            try:
                root = parse_root_pem(body)
            except ValueError as exc:
                log.info("%s is not a provenance root: %s", url, exc)
        self._cache.put(url, (root, self.clock()), seconds=self.ttl if root else self.miss_ttl)
        return root


peer_roots = PeerRoots()
"""The process's cache of peers' roots."""
