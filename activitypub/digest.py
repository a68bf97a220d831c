"""Body digests: ``Digest`` (RFC 3230, draft-cavage) and ``Content-Digest`` (RFC 9530).

* ``Digest: SHA-256=<base64>``: what Mastodon sends and requires with draft-cavage
  signatures. Algorithm names are case-insensitive (fediverse-pasture sends
  ``sha-256=``).
* ``Content-Digest: sha-256=:<base64>:``: a Structured Field dictionary of byte
  sequences, what RFC 9421 signatures cover.

SHA-256 and SHA-512 are checked; other algorithms are ignored (RFC 9530 says to
ignore deprecated ones such as md5 and sha). Verification requires at least one
supported algorithm and that every supported one present matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

import http_sf

from activitypub._sf import SFError, parse_dictionary, split_member
from activitypub.errors import DigestMismatch, MalformedDigest

__all__ = [
    "content_digest_header",
    "digest_header",
    "verify_content_digest",
    "verify_digest_header",
]

_HASHES: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda body: hashlib.sha256(body).digest(),
    "sha-512": lambda body: hashlib.sha512(body).digest(),
}
_SIZES = {"sha-256": 32, "sha-512": 64}
# Digest headers are a few hundred bytes; refuse to parse anything absurd.
_MAX_HEADER = 4096


def digest_header(body: bytes) -> str:
    """The ``Digest`` header value for ``body``: ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """The ``Content-Digest`` header value for ``body``: ``sha-256=:<base64>:``."""
    try:
        digest = _HASHES[algorithm](body)
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None
    return http_sf.ser({algorithm: (digest, {})})


def _check(offered: list[tuple[str, bytes]], body: bytes, header: str) -> None:
    checked = False
    for algorithm, expected in offered:
        if algorithm not in _HASHES:
            continue
        if len(expected) != _SIZES[algorithm]:
            raise MalformedDigest(f"{header}: a {algorithm} digest has {_SIZES[algorithm]} bytes")
        if not hmac.compare_digest(_HASHES[algorithm](body), expected):
            raise DigestMismatch(f"{header}: the body does not match its {algorithm} digest")
        checked = True
    if not checked:
        names = ", ".join(algorithm for algorithm, _ in offered) or "none"
        raise DigestMismatch(f"{header}: no supported algorithm (offered: {names})")


def verify_digest_header(value: str, body: bytes) -> None:
    """Check a ``Digest`` header against ``body``.

    Raises :class:`MalformedDigest` for syntax errors and :class:`DigestMismatch`
    when the body does not match or no supported algorithm is offered.
    """
    if len(value) > _MAX_HEADER:
        raise MalformedDigest("Digest header is too long")
    offered: list[tuple[str, bytes]] = []
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if not sep or not name.strip():
            raise MalformedDigest(f"Digest: expected algorithm=value, got {part.strip()!r}")
        algorithm = name.strip().lower()
        if algorithm in _HASHES:
            try:
                digest = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedDigest(f"Digest: {algorithm} value is not base64") from exc
        else:
            digest = b""  # not checked, so not decoded
        offered.append((algorithm, digest))
    _check(offered, body, "Digest")


def verify_content_digest(value: str, body: bytes) -> None:
    """Check a ``Content-Digest`` header (RFC 9530) against ``body``.

    Raises :class:`MalformedDigest` for syntax errors and :class:`DigestMismatch`
    when the body does not match or no supported algorithm is offered.
    """
    if len(value) > _MAX_HEADER:
        raise MalformedDigest("Content-Digest header is too long")
    try:
        parsed = parse_dictionary(value)
    except SFError as exc:
        raise MalformedDigest(f"Content-Digest is not a structured dictionary: {exc}") from exc
    offered: list[tuple[str, bytes]] = []
    for algorithm, member in parsed.items():
        digest, _params = split_member(member)
        if algorithm in _HASHES and not isinstance(digest, bytes):
            raise MalformedDigest(f"Content-Digest: {algorithm} is not a byte sequence")
        offered.append((algorithm, digest if isinstance(digest, bytes) else b""))
    _check(offered, body, "Content-Digest")
