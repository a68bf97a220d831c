"""Provenance roots: this instance publishes its own, and fetches those its peers publish.

Every fedisora instance signs its clips under a small root CA of its own
(``<data_dir>/provenance/root.pem``, see :mod:`render.instance`). It serves that root's
certificate, and nothing else, at :data:`PROVENANCE_ROOT_PATH` and advertises the URL in its
NodeInfo metadata as ``provenanceRoot``. A peer checking one of its clips fetches the root
from the clip's origin (:class:`PeerRoots`) and adds it to its trust anchors for that check.

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

from activitypub.federation.http import FetchError, PeerClient
from activitypub.federation.keycache import TimedCache
from activitypub.objects import same_origin
from fedisora.config import Settings
from render.instance import provenance_dir

__all__ = [
    "PEM_TYPE",
    "PROVENANCE_ROOT_PATH",
    "PeerRoots",
    "own_root",
    "parse_root_pem",
    "peer_roots",
    "provenance_root",
    "root_url",
]

log = logging.getLogger("fedisora.federation")

PROVENANCE_ROOT_PATH = "/.well-known/fedisora/provenance-root.pem"
PEM_TYPE = "application/x-pem-file"
MAX_ROOT_BYTES = 64 * 1024
MAX_ROOT_CERTIFICATES = 4


def parse_root_pem(data: bytes | str) -> str:
    """The CA certificates in *data*, re-encoded as PEM; ``ValueError`` when *data* is not
    one to four CA certificates. Anything else in the text (a private key put there by
    mistake, comments) is dropped, never passed on."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_ROOT_BYTES:
        raise ValueError(f"more than {MAX_ROOT_BYTES} bytes")
    certificates = x509.load_pem_x509_certificates(raw)  # ValueError when there is none
    if len(certificates) > MAX_ROOT_CERTIFICATES:
        raise ValueError(f"more than {MAX_ROOT_CERTIFICATES} certificates")
    for certificate in certificates:
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            raise ValueError("a certificate without BasicConstraints is not a root") from None
        if not constraints.value.ca:
            raise ValueError("a certificate that is not a CA is not a root")
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates)


def own_root(settings: Settings) -> str | None:
    """This instance's root certificate(s) as published, or None before ``fedisora init``."""
    path = provenance_dir(settings) / "root.pem"
    try:
        return parse_root_pem(path.read_bytes())
    except OSError:
        return None
    except ValueError:
        log.error("%s holds no usable root certificate; it is not published", path)
        return None


def root_url(uri: str) -> str:
    """Where the instance serving *uri* (an actor URI, or its base URL) publishes its root."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{PROVENANCE_ROOT_PATH}"


async def provenance_root(request: Request) -> Response:
    """``GET /.well-known/fedisora/provenance-root.pem``: the public root certificate."""
    settings: Settings = request.app.state.settings
    pem = own_root(settings)
    if pem is None:
        return JSONResponse({"error": "this instance has no provenance root"}, 404)
    return Response(
        pem,
        media_type=PEM_TYPE,
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


class PeerRoots:
    """Roots published by peers, fetched through the :class:`PeerClient` and kept per origin
    for *ttl* seconds (*miss_ttl* when the peer publishes none, e.g. it is not fedisora)."""

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        miss_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        # (root,) rather than root: a peer known to publish none is cached too.
        self._cache: TimedCache[str, tuple[str | None]] = TimedCache(ttl, 10_000, clock)

    def clear(self) -> None:
        self._cache.clear()

    async def get(self, client: PeerClient, uri: str) -> str | None:
        """The root published by the instance serving *uri*, or None if it publishes none.

        Raises :class:`FetchError` when the peer cannot be asked now (down, 5xx, timeout):
        the caller tries again later rather than concluding anything."""
        url = root_url(uri)
        cached = self._cache.get(url)
        if cached is not None:
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
        self._cache.put(url, (root,), seconds=self.ttl if root else self.miss_ttl)
        return root


peer_roots = PeerRoots()
"""The process's cache of peers' roots."""
