"""The one exception hierarchy of the ``activitypub`` package.

Every error raised on purpose by this package derives from :class:`ActivityPubError`.
Signature errors carry the HTTP status an inbox or an authorised-fetch endpoint
should answer with in :attr:`SignatureError.http_status`, so the 400-versus-401
decision lives here and nowhere else::

    ActivityPubError
    +-- KeyFormatError                 (also a ValueError)
    +-- SignatureError                 http_status 401 unless noted
        +-- SignatureMissing           no signature at all
        +-- MalformedSignature         400: we cannot parse what was sent
        |   +-- MalformedDigest        400: Digest / Content-Digest syntax
        +-- SignatureInvalid           401: parsed, but not acceptable
            +-- UnknownKey             the key id resolved to no key
            +-- UnsupportedSignature   algorithm, component or key type we do not do
            +-- WeakSignature          does not cover what we require
            +-- SignatureExpired       outside the accepted time window
            +-- DigestMismatch         the body does not match its digest
    +-- ProofError                     an object integrity proof (FEP-8b32) is refused
    |   +-- MalformedProof             the proof or the document cannot be read
    |   +-- InvalidProof               readable, but does not authenticate the document
    +-- ConsentError                   a likeness consent object is refused

"Malformed" means the request itself is broken (400, the sender should not retry
as is). Everything under :class:`SignatureInvalid` means the request is readable
but does not authenticate (401); a sender that double-knocks (RFC 9421 first,
draft-cavage on 401) can then fall back.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ActivityPubError",
    "ConsentError",
    "DigestMismatch",
    "InvalidProof",
    "KeyFormatError",
    "MalformedDigest",
    "MalformedProof",
    "MalformedSignature",
    "ProofError",
    "SignatureError",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureMissing",
    "UnknownKey",
    "UnsupportedSignature",
    "WeakSignature",
]


class ActivityPubError(Exception):
    """Base class of every error this package raises on purpose."""


class KeyFormatError(ActivityPubError, ValueError):
    """A key (PEM, Multikey) could not be decoded, or is of a type we do not support."""


class SignatureError(ActivityPubError):
    """A request signature could not be accepted."""

    #: The HTTP status a server should answer with.
    http_status: ClassVar[int] = 401


class SignatureMissing(SignatureError):
    """The request carries no signature (no ``Signature``/``Signature-Input`` header)."""


class MalformedSignature(SignatureError):
    """The signature headers, or values the scheme has to parse (``Date``,
    ``created``, ``expires``, ``Digest``), are syntactically invalid."""

    http_status: ClassVar[int] = 400


class MalformedDigest(MalformedSignature):
    """A ``Digest`` or ``Content-Digest`` header cannot be parsed."""


class SignatureInvalid(SignatureError):
    """The signature was parsed but does not authenticate the request."""


class UnknownKey(SignatureInvalid):
    """The key lookup found no key for the signature's key id."""


class UnsupportedSignature(SignatureInvalid):
    """The signature uses an algorithm, a component or a key type we do not support."""


class WeakSignature(SignatureInvalid):
    """The signature does not cover what we require (e.g. ``digest`` on a POST)."""


class SignatureExpired(SignatureInvalid):
    """The signature is outside its validity window: expired, or dated in the
    future by more than the allowed clock skew."""


class DigestMismatch(SignatureInvalid):
    """The body does not match its digest header, or the header offers no
    algorithm we can check."""


class ProofError(ActivityPubError, ValueError):
    """An object integrity proof (FEP-8b32 ``DataIntegrityProof``) was refused.

    :attr:`reason` says why in words a log or an admin can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedProof(ProofError):
    """The proof is missing or cannot be read (wrong shapes, a bad multibase, a date that is
    no date), or the document cannot be canonicalised."""


class InvalidProof(ProofError):
    """The proof was read but does not authenticate the document: another type, cryptosuite
    or purpose, a signature that does not verify (tampered fields, another key), a
    ``created`` in the future or an ``expires`` in the past, an ``@context`` mismatch."""


class ConsentError(ActivityPubError, ValueError):
    """A likeness consent object (grant or revocation) was refused: a malformed shape, a
    proof that does not verify, another owner or grantee, a scope that does not cover the
    use, an expired grant. :attr:`reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
