"""HTTP request signatures: RFC 9421 and draft-cavage, behind one front.

Pure functions of a :class:`Request` value, keys and the current time; no I/O.
Verifying an incoming request is three steps, so that the key fetch (I/O) can
happen in between, and only for requests that can still succeed::

    parsed = parse_signature(request)          # MalformedSignature -> 400
    precheck(parsed, request, now=now)         # coverage, time, digest -> 401
    key = await fetch_key(parsed.key_id)       # the caller's I/O
    verified = verify_prechecked(parsed, request, key)

(:func:`verify_parsed` runs the precheck again itself, for callers that hold a parsed
signature from elsewhere.) :func:`verify_request` does all of it when the key lookup is synchronous.
Every failure is a :class:`~activitypub.errors.SignatureError` whose
``http_status`` is the answer to give. A request with ``Signature-Input`` is
read as RFC 9421; otherwise a ``Signature`` (or ``Authorization: Signature``)
header is read as draft-cavage.

Signing returns the headers to add, so an ``httpx.Auth`` can be a few lines::

    headers = sign_request(Request(r.method, str(r.url), r.headers.multi_items(),
                                   r.content), key_id, key, now=time.time())
    r.headers.update(headers)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

from activitypub.errors import UnknownKey
from activitypub.keys import PrivateKey, PublicKey
from activitypub.signatures import cavage, rfc9421
from activitypub.signatures._window import CLOCK_SKEW, DEFAULT_VALIDITY, MAX_VALIDITY
from activitypub.signatures.cavage import CavageSignature
from activitypub.signatures.request import Headers, Request
from activitypub.signatures.rfc9421 import MessageSignature

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_VALIDITY",
    "MAX_VALIDITY",
    "CavageSignature",
    "Headers",
    "KeyLookup",
    "MessageSignature",
    "ParsedSignature",
    "Request",
    "Scheme",
    "VerifiedSignature",
    "parse_signature",
    "precheck",
    "sign_request",
    "verify_parsed",
    "verify_prechecked",
    "verify_request",
]

Scheme: TypeAlias = Literal["rfc9421", "cavage"]
ParsedSignature: TypeAlias = MessageSignature | CavageSignature
KeyLookup: TypeAlias = Callable[[str], PublicKey | None]


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that verified."""

    key_id: str
    scheme: Scheme
    #: The algorithm actually used, in RFC 9421 terms: ``rsa-v1_5-sha256``,
    #: ``ed25519`` or ``rsa-pss-sha512`` (a cavage ``hs2019`` is resolved by key type).
    algorithm: str


def parse_signature(request: Request) -> ParsedSignature:
    """Parse the request's signature, without any key.

    Raises :class:`~activitypub.errors.SignatureMissing` or
    :class:`~activitypub.errors.MalformedSignature`.
    """
    if request.header("signature-input") is not None:
        return rfc9421.parse(request)
    return cavage.parse(request)


def precheck(parsed: ParsedSignature, request: Request, *, now: datetime | float) -> None:
    """Every check that needs no key: algorithm, coverage, time window, body digest."""
    if isinstance(parsed, MessageSignature):
        rfc9421.check(parsed, request, now=now)
    else:
        cavage.check(parsed, request, now=now)


def verify_parsed(
    parsed: ParsedSignature, request: Request, public_key: PublicKey, *, now: datetime | float
) -> VerifiedSignature:
    """Run :func:`precheck` and the cryptographic check with the signer's key."""
    precheck(parsed, request, now=now)
    return verify_prechecked(parsed, request, public_key)


def verify_prechecked(
    parsed: ParsedSignature, request: Request, public_key: PublicKey
) -> VerifiedSignature:
    """The cryptographic check alone, for a signature that passed :func:`precheck` on this
    very request (the checks are not repeated)."""
    if isinstance(parsed, MessageSignature):
        algorithm = rfc9421.verify_signature(parsed, request, public_key)
    else:
        algorithm = cavage.verify_signature(parsed, request, public_key)
    return VerifiedSignature(parsed.key_id, parsed.scheme, algorithm)


def verify_request(
    request: Request, key: PublicKey | KeyLookup, *, now: datetime | float
) -> VerifiedSignature:
    """Parse, check and verify in one go.

    ``key`` is the signer's public key, or a function from key id to key (or
    None, which raises :class:`~activitypub.errors.UnknownKey`). The lookup is
    only called once everything that needs no key has passed.
    """
    parsed = parse_signature(request)
    precheck(parsed, request, now=now)
    if callable(key):
        found = key(parsed.key_id)
        if found is None:
            raise UnknownKey(f"no key for {parsed.key_id!r}")
        key = found
    return verify_prechecked(parsed, request, key)


def sign_request(
    request: Request,
    key_id: str,
    private_key: PrivateKey,
    *,
    now: datetime | float,
    scheme: Scheme = "rfc9421",
) -> dict[str, str]:
    """Sign ``request`` with the chosen scheme; return the headers to set on it.

    The defaults are what Mastodon requires (see :func:`rfc9421.sign` and
    :func:`cavage.sign` for the knobs). Send RFC 9421 first and fall back to
    cavage on a 401 ("double-knock").
    """
    if scheme == "rfc9421":
        return rfc9421.sign(request, key_id, private_key, now=now)
    if scheme == "cavage":
        return cavage.sign(request, key_id, private_key, now=now)
    raise ValueError(f"unknown signature scheme {scheme!r}")
