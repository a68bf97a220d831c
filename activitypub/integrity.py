"""Object integrity proofs (FEP-8b32): W3C Data Integrity, cryptosuite ``eddsa-jcs-2022``.

A signed object carries a ``proof``::

    "proof": {
      "type": "DataIntegrityProof",
      "cryptosuite": "eddsa-jcs-2022",
      "created": "2026-12-06T17:00:00Z",
      "verificationMethod": "https://example.org/users/alice#ed25519-key",
      "proofPurpose": "assertionMethod",
      "@context": <the document's @context>,
      "proofValue": "z..."
    }

The steps (W3C "Data Integrity EdDSA Cryptosuites v1.0", section 3.3):

1. the proof configuration is the proof without ``proofValue``; when the document has an
   ``@context`` the configuration carries the same one;
2. hashData = SHA-256(JCS(proof configuration)) || SHA-256(JCS(document without ``proof``)),
   JCS being the JSON Canonicalization Scheme of RFC 8785 (from the ``rfc8785`` package);
3. the signature is Ed25519 over those 64 bytes;
4. ``proofValue`` is its multibase base58-btc encoding (a ``z`` prefix).

Verification re-runs 1-2 on the received proof (every member but ``proofValue`` is signed,
including ones we do not read) and checks the signature with the key the caller looked up
for ``verificationMethod``. Nothing here fetches a key: see :func:`assertion_method_key` to
take one out of an actor document the caller already has.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub._base58 import b58decode, b58encode
from activitypub.errors import InvalidProof, KeyFormatError, MalformedProof, ProofError
from activitypub.keys import public_key_from_multibase

__all__ = [
    "CRYPTOSUITE",
    "DATA_INTEGRITY_CONTEXT",
    "DEFAULT_MAX_SKEW",
    "PROOF_TYPE",
    "InvalidProof",
    "MalformedProof",
    "Proof",
    "ProofError",
    "assertion_method_key",
    "check_bounds",
    "format_datetime",
    "parse_datetime",
    "sign",
    "sign_activity",
    "verify",
]

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
#: The JSON-LD context that defines ``proof`` and ``DataIntegrityProof`` (FEP-8b32).
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v2"
#: How far in the future a proof's ``created`` may be (the signer's clock runs ahead).
DEFAULT_MAX_SKEW = timedelta(minutes=5)

# An Ed25519 signature is 64 bytes: 86 to 88 base58 digits. Anything much longer is not one,
# and the base58 decoder is quadratic, so it is refused before decoding.
_MAX_PROOF_VALUE = 100
_MAX_FIELD = 2048
# Bounds on the document walked before canonicalising: JCS recurses, and a received object
# is bounded by the inbox's body cap already; these stop a deep or wide one early.
_MAX_DEPTH = 32
_MAX_NODES = 10_000


@dataclass(frozen=True)
class Proof:
    """A verified proof, as read."""

    verification_method: str
    purpose: str
    created: datetime
    expires: datetime | None
    value: str
    type: str = PROOF_TYPE
    cryptosuite: str = CRYPTOSUITE


def format_datetime(value: datetime) -> str:
    """An aware datetime as an XSD dateTime in UTC to the second: ``2026-12-06T17:00:00Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a proof date must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: Any, name: str) -> datetime:
    """An XSD dateTime with a timezone (``Z`` or an offset), as an aware datetime.

    Raises :class:`MalformedProof` naming *name* otherwise."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise MalformedProof(f"{name} must be a date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedProof(f"{name} is not an XSD dateTime: {value!r}") from exc
    if parsed.tzinfo is None or "T" not in value:
        raise MalformedProof(f"{name} must be a date and time with a timezone")
    return parsed


def check_bounds(document: Any, *, refused_keys: frozenset[str] = frozenset()) -> None:
    """Refuse (:class:`MalformedProof`) a *document* nested deeper or holding more values than
    any proof here reads (checked before any hashing or canonicalisation: an unbounded one
    would exhaust the stack or the time), or using one of *refused_keys* anywhere."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if depth > _MAX_DEPTH or nodes > _MAX_NODES:
            raise MalformedProof("the document is nested too deeply or is too large")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in refused_keys:
                    raise MalformedProof(f"the document uses {key}, which is not accepted here")
                stack.append((item, depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def _jcs_hash(value: Any) -> bytes:
    try:
        canonical = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise MalformedProof(f"cannot canonicalise the document (JCS): {exc}") from exc
    return hashlib.sha256(canonical).digest()


def _hash_data(document: Mapping[str, Any], config: Mapping[str, Any]) -> bytes:
    unsecured = {key: value for key, value in document.items() if key != "proof"}
    return _jcs_hash(config) + _jcs_hash(unsecured)


def sign(
    document: Mapping[str, Any],
    key: ed25519.Ed25519PrivateKey,
    verification_method: str,
    *,
    created: datetime,
    purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """A copy of *document* with an ``eddsa-jcs-2022`` ``DataIntegrityProof`` by *key*.

    *verification_method* is the id of the public key (an actor's ``assertionMethod``
    Multikey id). The document must not carry a proof already (proof sets and chains are
    not made here)."""
    if "proof" in document:
        raise ValueError("the document already carries a proof")
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError("eddsa-jcs-2022 signs with an Ed25519 key")
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_datetime(created),
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }
    if "@context" in document:
        config["@context"] = copy.deepcopy(document["@context"])
    signature = key.sign(_hash_data(document, config))
    signed = copy.deepcopy(dict(document))
    signed["proof"] = {**config, "proofValue": "z" + b58encode(signature)}
    return signed


def _str_member(proof: Mapping[str, Any], name: str) -> str:
    value = proof.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedProof(f"proof.{name} is missing or not a string")
    if len(value) > _MAX_FIELD:
        raise MalformedProof(f"proof.{name} is too long")
    return value


def _context_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def verify(
    document: Any,
    key: ed25519.Ed25519PublicKey,
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    purpose: str = "assertionMethod",
) -> Proof:
    """Check the ``eddsa-jcs-2022`` proof of *document* with *key*; return it as read.

    *now* (default: the current time) is compared with the proof's ``created`` (at most
    *max_skew* ahead) and ``expires`` (if any). Raises :class:`MalformedProof` when the
    proof or the document cannot be read, :class:`InvalidProof` when it does not hold.
    Whether ``verificationMethod`` is a key of the object's author is the caller's check
    (it chose *key*)."""
    if not isinstance(document, Mapping):
        raise MalformedProof("the document is not a JSON object")
    check_bounds(document)
    proof = document.get("proof")
    if proof is None:
        raise MalformedProof("the document carries no proof")
    if isinstance(proof, list):
        raise MalformedProof("proof sets are not supported: exactly one proof is expected")
    if not isinstance(proof, Mapping):
        raise MalformedProof("proof is not a JSON object")
    kind = proof.get("type")
    if kind != PROOF_TYPE:
        raise InvalidProof(f"proof type {kind!r} is not {PROOF_TYPE}")
    suite = proof.get("cryptosuite")
    if suite != CRYPTOSUITE:
        raise InvalidProof(f"unknown cryptosuite {suite!r} (only {CRYPTOSUITE} is supported)")
    proof_purpose = _str_member(proof, "proofPurpose")
    if proof_purpose != purpose:
        raise InvalidProof(f"proof purpose {proof_purpose!r} is not {purpose!r}")
    method = _str_member(proof, "verificationMethod")
    created = parse_datetime(proof.get("created"), "proof.created")
    expires = parse_datetime(proof["expires"], "proof.expires") if "expires" in proof else None
    value = _str_member(proof, "proofValue")
    if not value.startswith("z"):
        raise MalformedProof("proofValue must be multibase base58-btc (a 'z' prefix)")
    if len(value) > _MAX_PROOF_VALUE:
        raise MalformedProof("proofValue is too long for an Ed25519 signature")
    try:
        signature = b58decode(value[1:])
    except ValueError as exc:
        raise MalformedProof(f"proofValue is not base58-btc: {exc}") from exc
    if len(signature) != 64:
        raise MalformedProof(f"an Ed25519 signature has 64 bytes, not {len(signature)}")
    if "@context" in proof:
        # The document's context must begin with the proof's (vc-data-integrity, "Verify
        # Proof"): a proof made under one vocabulary does not vouch for another reading.
        signed_context = _context_list(proof["@context"])
        context = _context_list(document.get("@context"))
        if "@context" not in document or context[: len(signed_context)] != signed_context:
            raise InvalidProof("the document's @context differs from the proof's")
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise InvalidProof("eddsa-jcs-2022 needs an Ed25519 key")
    config = {name: item for name, item in proof.items() if name != "proofValue"}
    if not any(_holds(key, signature, candidate, config) for candidate in _signed_forms(document)):
        raise InvalidProof("the signature does not verify (tampered, or another key)")
    now = datetime.now(UTC) if now is None else now
    if created - now > max_skew:
        raise InvalidProof(f"the proof was created in the future ({proof['created']})")
    if expires is not None and expires <= now:
        raise InvalidProof(f"the proof expired at {proof['expires']}")
    return Proof(
        verification_method=method,
        purpose=proof_purpose,
        created=created,
        expires=expires,
        value=value,
    )


def _signed_forms(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The forms of *document* its proof may have been made on: as it is, and, when it carries
    a Linked Data Signature (``signature``, Mastodon's ``RsaSignature2017``), without it.

    Fedify signs an activity with its FEP-8b32 proof first and then adds an LD signature over
    the proven document, so the proof holds only without that ``signature``; Fedify's own
    inbox detaches it before checking proofs. Leaving out a member the proof does not cover
    gives it no say: nothing here reads an LD signature."""
    ld_signature = document.get("signature")
    if isinstance(ld_signature, Mapping) and "signatureValue" in ld_signature:
        return [document, {name: item for name, item in document.items() if name != "signature"}]
    return [document]


def _holds(
    key: ed25519.Ed25519PublicKey,
    signature: bytes,
    document: Mapping[str, Any],
    config: Mapping[str, Any],
) -> bool:
    try:
        key.verify(signature, _hash_data(document, config))
    except InvalidSignature:
        return False
    return True


def assertion_method_key(actor: Any, verification_method: str) -> ed25519.Ed25519PublicKey:
    """The Ed25519 key *verification_method* names in *actor*'s ``assertionMethod``.

    The method must be embedded there as a FEP-521a ``Multikey`` whose ``controller`` is
    the actor and whose ``publicKeyMultibase`` is an ed25519-pub key; a reference to a key
    elsewhere, an RSA key or no such entry raises :class:`InvalidProof` (an actor without
    an Ed25519 key cannot vouch for an object)."""
    if not isinstance(actor, Mapping) or not isinstance(actor.get("id"), str):
        raise MalformedProof("the actor document is not a JSON object with an id")
    methods = actor.get("assertionMethod")
    for method in methods if isinstance(methods, list) else [methods]:
        if not isinstance(method, Mapping) or method.get("id") != verification_method:
            continue
        if method.get("type") != "Multikey":
            raise InvalidProof(f"{verification_method} is not a Multikey")
        if method.get("controller") != actor["id"]:
            raise InvalidProof(f"{verification_method} is not controlled by {actor['id']}")
        encoded = method.get("publicKeyMultibase")
        if not isinstance(encoded, str):
            raise InvalidProof(f"{verification_method} has no publicKeyMultibase")
        try:
            key = public_key_from_multibase(encoded)
        except KeyFormatError as exc:
            raise InvalidProof(f"{verification_method}: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise InvalidProof(f"{verification_method} is not an Ed25519 key")
        return key
    raise InvalidProof(f"{actor['id']} lists no Ed25519 assertionMethod {verification_method}")


def sign_activity(
    activity: Mapping[str, Any],
    key: ed25519.Ed25519PrivateKey,
    verification_method: str,
    *,
    created: datetime,
) -> dict[str, Any]:
    """*activity* as it is sent with its actor's FEP-8b32 proof: the Data Integrity context
    put right after the first entry of its ``@context`` (ActivityStreams), so that a JSON-LD
    reader (Fedify) finds ``proof`` defined, then signed by :func:`sign`. An activity that
    carries a proof already (one forwarded as received) is returned unchanged."""
    if "proof" in activity:
        return dict(activity)
    document = dict(activity)
    context = document.get("@context")
    entries = list(context) if isinstance(context, list) else [context] if context else []
    if DATA_INTEGRITY_CONTEXT not in entries:
        entries.insert(1 if entries else 0, DATA_INTEGRITY_CONTEXT)
    document = {"@context": entries, **{k: v for k, v in document.items() if k != "@context"}}
    return sign(document, key, verification_method, created=created)
