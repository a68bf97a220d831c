"""draft-cavage-http-signatures-12, as the fediverse uses it.

Parsing, the signing string and the cryptography follow the draft; what is
*accepted* follows Mastodon (``app/lib/signed_request.rb``), since that is what
every peer is written against:

* ``algorithm`` is ``rsa-sha256`` or ``hs2019`` (the default when absent).
  ``hs2019`` means RSASSA-PKCS1-v1_5 SHA-256 with an RSA key (as Mastodon and
  GoToSocial do, not the draft's RSA-PSS) and Ed25519 with an Ed25519 key.
* ``headers`` defaults to ``(created)`` for hs2019 and ``date`` otherwise.
  ``(created)``/``(expires)`` are refused with ``rsa-sha256`` (the draft says so).
* The signature must cover ``date`` or ``(created)``, and ``(request-target)``
  or ``digest``; a GET (or HEAD) must cover ``host``; a POST, or any request with
  a body, must cover ``digest``, and a covered ``Digest`` must match the body.
* Time window: see :mod:`activitypub.signatures._window`. The creation time is
  ``(created)`` when covered, else the ``Date`` header; ``(expires)`` counts when
  covered. Unlike Mastodon, ``created``/``expires`` parameters that the signature
  does not cover are ignored (an unsigned value would let anyone stretch the window).
* If the signature does not verify and the URL has a query string, it is checked
  again with ``(request-target)`` built from the path alone: older Mastodon
  versions signed it that way.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from activitypub.digest import digest_header, verify_digest_header
from activitypub.errors import (
    MalformedSignature,
    SignatureError,
    SignatureInvalid,
    SignatureMissing,
    UnsupportedSignature,
    WeakSignature,
)
from activitypub.keys import PrivateKey, PublicKey
from activitypub.signatures import _algorithms
from activitypub.signatures._window import check_time_window, timestamp
from activitypub.signatures.request import Request, target, wire_bytes

__all__ = [
    "ALGORITHMS",
    "CavageSignature",
    "check",
    "parse",
    "parse_signature_header",
    "sign",
    "signing_string",
    "verify",
    "verify_signature",
]

ALGORITHMS = ("rsa-sha256", "hs2019")
_MAX_HEADER = 8192
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
# Unix time, optionally with a fraction (the draft allows one); capped in length.
_NUMERIC = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")


@dataclass(frozen=True, slots=True)
class CavageSignature:
    """A parsed draft-cavage ``Signature`` header."""

    scheme: ClassVar[Literal["cavage"]] = "cavage"

    key_id: str
    #: As declared, lower-cased; ``hs2019`` when the header names none.
    algorithm: str
    #: The covered header names, lower-cased, in signing order.
    headers: tuple[str, ...]
    signature: bytes
    #: The raw ``created`` / ``expires`` parameter values, if sent.
    created: str | None = None
    expires: str | None = None


def parse_signature_header(value: str) -> dict[str, str]:
    """Parse ``name="value", name=value, ...`` into a dict keyed by lower-cased name.

    Values are quoted strings (backslash escapes honoured, commas allowed inside)
    or bare tokens (``created=1402170695``). Whitespace around ``=`` and ``,`` and
    empty list elements are tolerated; duplicate names are not.
    """
    if len(value) > _MAX_HEADER:
        raise MalformedSignature("Signature header is too long")
    params: dict[str, str] = {}
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and value[i] in _NAME_CHARS:
            i += 1
        name = value[start:i]
        if not name:
            raise MalformedSignature(f"expected a parameter name at offset {start}")
        while i < n and value[i] in " \t":
            i += 1
        if i >= n or value[i] != "=":
            raise MalformedSignature(f"expected '=' after {name!r}")
        i += 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise MalformedSignature(f"unterminated quoted value for {name!r}")
                char = value[i]
                if char == "\\":
                    if i + 1 >= n:
                        raise MalformedSignature(f"unterminated quoted value for {name!r}")
                    chars.append(value[i + 1])
                    i += 2
                elif char == '"':
                    i += 1
                    break
                else:
                    chars.append(char)
                    i += 1
            param = "".join(chars)
        else:
            start = i
            while i < n and value[i] not in ', \t"':
                i += 1
            param = value[start:i]
            if not param:
                raise MalformedSignature(f"empty value for {name!r}")
        key = name.lower()
        if key in params:
            raise MalformedSignature(f"duplicate parameter {name!r}")
        params[key] = param
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] != ",":
            raise MalformedSignature(f"expected ',' at offset {i}")
    if not params:
        raise MalformedSignature("empty Signature header")
    return params


def _b64decode(value: str) -> bytes:
    text = "".join(value.split())
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedSignature("signature is not base64") from exc
    if not decoded:
        raise MalformedSignature("signature is empty")
    return decoded


def parse(request: Request) -> CavageSignature:
    """Read the ``Signature`` header (or ``Authorization: Signature ...``).

    Raises :class:`SignatureMissing` if there is neither, and
    :class:`MalformedSignature` if it cannot be read.
    """
    value = request.header("signature")
    if value is None:
        authorization = request.header("authorization")
        if authorization is None or authorization[:10].lower() != "signature ":
            raise SignatureMissing("no Signature header")
        value = authorization[10:]
    params = parse_signature_header(value)
    key_id = params.get("keyid")
    if not key_id:
        raise MalformedSignature("Signature has no keyId")
    encoded = params.get("signature")
    if not encoded:
        raise MalformedSignature("Signature has no signature")
    algorithm = params.get("algorithm", "hs2019").lower()
    if "headers" in params:
        headers = tuple(params["headers"].lower().split())
        if not headers:
            raise MalformedSignature("Signature has an empty headers list")
    else:
        headers = ("(created)",) if algorithm == "hs2019" else ("date",)
    created, expires = params.get("created"), params.get("expires")
    for name, raw in (("created", created), ("expires", expires)):
        if raw is not None and not _NUMERIC.fullmatch(raw):
            raise MalformedSignature(f"{name} is not a Unix time")
        if f"({name})" in headers:
            if raw is None:
                raise MalformedSignature(f"({name}) is covered but {name} is missing")
            if algorithm.startswith(("rsa", "hmac", "ecdsa")):
                raise MalformedSignature(f"({name}) cannot be used with {algorithm}")
    return CavageSignature(key_id, algorithm, headers, _b64decode(encoded), created, expires)


def signing_string(sig: CavageSignature, request: Request, *, include_query: bool = True) -> str:
    """The draft's signing string: one ``name: value`` line per covered header.

    ``host`` falls back to the URL's authority when the request has no Host header
    (an HTTP/2 request, or one built by hand). A covered header that is absent
    raises :class:`SignatureInvalid`.
    """
    url = target(request)
    lines: list[str] = []
    for name in sig.headers:
        if name == "(request-target)":
            path = url.path_and_query if include_query else url.path
            lines.append(f"(request-target): {request.method.lower()} {path}")
        elif name == "(created)":
            lines.append(f"(created): {sig.created}")
        elif name == "(expires)":
            lines.append(f"(expires): {sig.expires}")
        elif name.startswith("("):
            raise UnsupportedSignature(f"unknown pseudo-header {name}")
        else:
            value = request.header(name)
            if value is None and name == "host":
                value = url.authority
            if value is None:
                raise SignatureInvalid(f"covered header {name!r} is absent")
            if "\n" in value or "\r" in value:
                raise MalformedSignature(f"header {name!r} contains a newline")
            lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _creation_time(sig: CavageSignature, request: Request) -> float | None:
    if "(created)" in sig.headers and sig.created is not None:
        return float(sig.created)
    if "date" not in sig.headers:
        return None
    value = request.header("date")
    if value is None:
        raise SignatureInvalid("covered header 'date' is absent")
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise MalformedSignature(f"cannot parse Date header {value!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def check(sig: CavageSignature, request: Request, *, now: datetime | float) -> None:
    """Everything but the cryptography: algorithm, coverage, time window, digest.

    Cheap, and needs no key: run it before fetching the signer's key.
    """
    if sig.algorithm not in ALGORITHMS:
        raise UnsupportedSignature(f"unsupported algorithm {sig.algorithm!r}")
    covered = set(sig.headers)
    method = request.method.upper()
    if "date" not in covered and "(created)" not in covered:
        raise WeakSignature("the signature must cover date or (created)")
    if "(request-target)" not in covered and "digest" not in covered:
        raise WeakSignature("the signature must cover (request-target) or digest")
    if method in ("GET", "HEAD") and "host" not in covered:
        raise WeakSignature("a GET signature must cover host")
    if (method == "POST" or request.body) and "digest" not in covered:
        raise WeakSignature("a POST signature must cover digest")
    expires = float(sig.expires) if "(expires)" in covered and sig.expires is not None else None
    check_time_window(_creation_time(sig, request), expires, timestamp(now))
    if "digest" in covered:
        value = request.header("digest")
        if value is None:
            raise SignatureInvalid("covered header 'digest' is absent")
        verify_digest_header(value, request.body)


def _crypto_algorithm(algorithm: str, key: PublicKey | PrivateKey) -> str:
    if algorithm == "rsa-sha256":
        return "rsa-v1_5-sha256"
    if algorithm == "hs2019":
        return _algorithms.default_algorithm(key)
    raise UnsupportedSignature(f"unsupported algorithm {algorithm!r}")


def verify_signature(sig: CavageSignature, request: Request, key: PublicKey) -> str:
    """Check the cryptographic signature only; return the algorithm used
    (``rsa-v1_5-sha256`` or ``ed25519``). Raises :class:`SignatureInvalid`."""
    algorithm = _crypto_algorithm(sig.algorithm, key)
    if _algorithms.verify(algorithm, key, sig.signature, wire_bytes(signing_string(sig, request))):
        return algorithm
    if "(request-target)" in sig.headers and target(request).query is not None:
        legacy = signing_string(sig, request, include_query=False)
        if _algorithms.verify(algorithm, key, sig.signature, wire_bytes(legacy)):
            return algorithm
    raise SignatureInvalid("signature does not match")


def verify(sig: CavageSignature, request: Request, key: PublicKey, *, now: datetime | float) -> str:
    """:func:`check` then :func:`verify_signature`; returns the algorithm used."""
    check(sig, request, now=now)
    return verify_signature(sig, request, key)


def _digest_ok(request: Request) -> bool:
    value = request.header("digest")
    if value is None:
        return False
    try:
        verify_digest_header(value, request.body)
    except SignatureError:
        return False
    return True


def sign(
    request: Request,
    key_id: str,
    private_key: PrivateKey,
    *,
    now: datetime | float,
    headers: list[str] | tuple[str, ...] | None = None,
    algorithm: str | None = None,
    expires_in: int | None = None,
) -> dict[str, str]:
    """Sign ``request``; return the headers to set on it (``Signature``, and
    ``Host``, ``Date``, ``Digest`` as needed).

    By default covers ``(request-target) host date``, plus ``digest`` and
    ``content-type`` (when present) for a POST or a request with a body: what
    Mastodon sends. ``algorithm`` defaults to ``rsa-sha256`` for RSA keys (the
    most widely understood) and ``hs2019`` for Ed25519. When ``digest`` is covered,
    an existing ``Digest`` that matches the body is kept, otherwise a SHA-256 one
    is set; ``Host`` and ``Date`` are added only when covered and missing.
    ``(expires)`` needs ``expires_in`` (seconds).
    """
    if algorithm is None:
        algorithm = "rsa-sha256" if isinstance(private_key, rsa.RSAPrivateKey) else "hs2019"
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    if any(char in key_id for char in '"\\\r\n') or not key_id:
        raise ValueError("keyId must be non-empty and free of quotes, backslashes and newlines")
    seconds = timestamp(now)
    has_body = request.method.upper() == "POST" or bool(request.body)
    if headers is None:
        covered = ["(request-target)", "host", "date"]
        if has_body:
            covered.append("digest")
            if "content-type" in request.headers:
                covered.append("content-type")
    else:
        covered = [name.lower() for name in headers]
    added: dict[str, str] = {}
    if "host" in covered and "host" not in request.headers:
        added["Host"] = target(request).authority
    if "date" in covered and "date" not in request.headers:
        added["Date"] = email.utils.formatdate(seconds, usegmt=True)
    if "digest" in covered and not _digest_ok(request):
        added["Digest"] = digest_header(request.body)
    created = str(int(seconds)) if "(created)" in covered else None
    expires = None
    if "(expires)" in covered:
        if expires_in is None:
            raise ValueError("(expires) is covered: pass expires_in")
        expires = str(int(seconds) + expires_in)
    if algorithm == "rsa-sha256" and (created or expires):
        raise ValueError("(created) and (expires) cannot be used with rsa-sha256; use hs2019")
    sig = CavageSignature(key_id, algorithm, tuple(covered), b"", created, expires)
    try:
        base = signing_string(sig, request.with_headers(added))
        crypto = _crypto_algorithm(algorithm, private_key)
        raw = _algorithms.sign(crypto, private_key, wire_bytes(base))
    except SignatureError as exc:  # a header or algorithm the caller asked for is wrong
        raise ValueError(str(exc)) from exc
    parts = [
        f'keyId="{key_id}"',
        f'algorithm="{algorithm}"',
        f'headers="{" ".join(covered)}"',
        f'signature="{base64.b64encode(raw).decode("ascii")}"',
    ]
    if created is not None:
        parts.append(f"created={created}")
    if expires is not None:
        parts.append(f"expires={expires}")
    added["Signature"] = ",".join(parts)
    return added
