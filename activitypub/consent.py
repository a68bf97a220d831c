"""Likeness consent objects: signed grants and revocations. Pure: no I/O.

A **grant** (``LikenessAuthorization``) says that the owner (``attributedTo``) lets one
account (``interactingObject``, the grantee) put the owner's likeness in clips, either in
drafts only (``scope: "drafts"``) or in published clips too (``scope: "publish"``), under
the owner's restrictions (``restrictionsDigest``, the SHA-256 multibase of their text),
until ``expires`` if it is set, and, with ``maxUses: 1``, for one use only (one render job
and the one clip it publishes: the owner approves every use). A **revocation**
(``LikenessRevocation``) takes back one grant (``object`` = the grant's id) or every grant
of the owner's likeness issued up to its ``published`` (``object`` = the owner's actor
id), and says whether clips already published must be taken down (``takeDown``).

Both carry an FEP-8b32 proof (:mod:`activitypub.integrity`, ``eddsa-jcs-2022``) made with
the owner's Ed25519 key, so any server can check them without trusting who delivered them.
The shapes, flows and rules are written up in ``docs/fep-likeness-consent.md``.

Time and keys are arguments; looking up the owner's key (their actor's ``assertionMethod``,
see :func:`activitypub.integrity.assertion_method_key`) and remembering revocation ids seen
(replays) are the caller's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub import integrity
from activitypub._base58 import b58decode
from activitypub.errors import ConsentError, ProofError
from activitypub.objects import (
    AS_CONTEXT,
    CONSENT_TERMS,
    MAX_ID_LENGTH,
    digest_multibase,
    has_unstorable,
    same_origin,
)

__all__ = [
    "CONSENT_CONTEXT",
    "GRANT_TYPE",
    "MAX_CONSENT_CHARS",
    "MAX_USES",
    "REVOCATION_TYPE",
    "SCOPES",
    "ConsentError",
    "Grant",
    "Revocation",
    "Scope",
    "build_grant",
    "build_revocation",
    "parse_grant",
    "parse_revocation",
    "restrictions_digest",
    "revokes",
    "sign_grant",
    "sign_revocation",
    "verify_grant",
    "verify_revocation",
]

GRANT_TYPE = "LikenessAuthorization"
REVOCATION_TYPE = "LikenessRevocation"
Scope = Literal["drafts", "publish"]
SCOPES: tuple[Scope, ...] = ("drafts", "publish")
#: The ``@context`` of consent objects: ActivityStreams, Data Integrity (``proof``), and
#: the consent terms (``fedisora:`` types and fields, ``gts:interactingObject``).
CONSENT_CONTEXT: list[Any] = [AS_CONTEXT, integrity.DATA_INTEGRITY_CONTEXT, CONSENT_TERMS]
#: The most characters a consent object may hold in all its strings (keys included): a
#: grant is a few hundred; anything near this is not one.
MAX_CONSENT_CHARS = 16_384
#: The largest ``maxUses`` read (a grant for more uses than this is no limit worth counting).
MAX_USES = 1_000_000
_MAX_NODES = 256
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Grant:
    """A likeness grant, as read (and, from :func:`verify_grant`, verified)."""

    id: str
    owner: str
    grantee: str
    scope: Scope
    restrictions_digest: str
    published: datetime
    expires: datetime | None = None
    proof: integrity.Proof | None = None
    """The verified proof (None from :func:`parse_grant`, which checks shapes only)."""
    max_uses: int | None = None
    """``maxUses``: how many clips may present this grant (None: no limit; fedisora issues
    1, for an owner who approves every single use)."""

    @property
    def single_use(self) -> bool:
        return self.max_uses == 1

    @property
    def allows_publish(self) -> bool:
        return self.scope == "publish"

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now


@dataclass(frozen=True)
class Revocation:
    """A revocation, as read. Its :attr:`id` is stable and signed: a receiver that has
    seen it already (a replay) can tell, and acts on it once."""

    id: str
    owner: str
    object: str
    """The revoked grant's id, or the owner's actor id for every grant up to :attr:`published`."""
    published: datetime
    take_down: bool = False
    proof: integrity.Proof | None = None

    @property
    def whole_likeness(self) -> bool:
        return self.object == self.owner


def restrictions_digest(text: str) -> str:
    """``restrictionsDigest``: base58-btc multibase of the sha2-256 multihash of the UTF-8
    restrictions text (as FEP-1311 ``digestMultibase``); the empty text has one too."""
    return digest_multibase(hashlib.sha256(text.encode("utf-8")).hexdigest())


# --- building ----------------------------------------------------------------------------------


def build_grant(
    *,
    grant_id: str,
    owner: str,
    grantee: str,
    scope: Scope,
    restrictions_digest: str,
    published: datetime,
    expires: datetime | None = None,
    max_uses: int | None = None,
) -> dict[str, Any]:
    """An unsigned ``LikenessAuthorization`` (checked as :func:`parse_grant` would);
    *max_uses* 1 makes it a single-use grant (``maxUses``)."""
    doc: dict[str, Any] = {
        "@context": CONSENT_CONTEXT,
        "id": grant_id,
        "type": GRANT_TYPE,
        "attributedTo": owner,
        "interactingObject": grantee,
        "scope": scope,
        "restrictionsDigest": restrictions_digest,
        "published": integrity.format_datetime(published),
    }
    if expires is not None:
        doc["expires"] = integrity.format_datetime(expires)
    if max_uses is not None:
        doc["maxUses"] = max_uses
    parse_grant(doc)
    return doc


def build_revocation(
    *,
    revocation_id: str,
    owner: str,
    revoked: str,
    published: datetime,
    take_down: bool = False,
) -> dict[str, Any]:
    """An unsigned ``LikenessRevocation`` of the grant *revoked*, or of every grant when
    *revoked* is *owner*. *revocation_id* must be new for each revocation (it is what
    receivers remember to recognise replays)."""
    doc: dict[str, Any] = {
        "@context": CONSENT_CONTEXT,
        "id": revocation_id,
        "type": REVOCATION_TYPE,
        "attributedTo": owner,
        "object": revoked,
        "published": integrity.format_datetime(published),
        "takeDown": take_down,
    }
    parse_revocation(doc)
    return doc


def _key_of_owner(owner: str, key_id: str) -> None:
    if key_id.split("#", 1)[0] != owner or "#" not in key_id:
        raise ConsentError(f"the key {key_id} is not in the owner's actor document ({owner})")


def sign_grant(
    grant: Mapping[str, Any],
    key: ed25519.Ed25519PrivateKey,
    *,
    key_id: str,
    created: datetime,
) -> dict[str, Any]:
    """*grant* with the owner's proof; *key_id* is the owner's Ed25519 Multikey id
    (``{owner}#ed25519-key``), which must be a fragment of the owner's actor id."""
    parsed = parse_grant(grant)
    _key_of_owner(parsed.owner, key_id)
    return integrity.sign(grant, key, key_id, created=created)


def sign_revocation(
    revocation: Mapping[str, Any],
    key: ed25519.Ed25519PrivateKey,
    *,
    key_id: str,
    created: datetime,
) -> dict[str, Any]:
    """*revocation* with the owner's proof (see :func:`sign_grant`)."""
    parsed = parse_revocation(revocation)
    _key_of_owner(parsed.owner, key_id)
    return integrity.sign(revocation, key, key_id, created=created)


# --- reading -------------------------------------------------------------------------------


def _check_size(doc: Any) -> None:
    chars = 0
    nodes = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise ConsentError("the consent object is too large or nested too deeply")
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, Mapping):
            chars += sum(len(key) if isinstance(key, str) else 0 for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        if chars > MAX_CONSENT_CHARS:
            raise ConsentError(f"the consent object is over {MAX_CONSENT_CHARS} characters")


def _uri(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if isinstance(value, Mapping):  # an embedded object: its id
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise ConsentError(f"{name} is missing or not an id")
    if len(value) > MAX_ID_LENGTH:
        raise ConsentError(f"{name} is too long")
    if not value.startswith(("https://", "http://")) or any(c in value for c in " \x00"):
        raise ConsentError(f"{name} is not an http(s) URI")
    return value


def _date(doc: Mapping[str, Any], name: str) -> datetime:
    try:
        return integrity.parse_datetime(doc.get(name), name)
    except ProofError as exc:
        raise ConsentError(exc.reason) from exc


def _check_common(doc: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise ConsentError("the consent object is not a JSON object")
    _check_size(doc)
    if has_unstorable(doc):
        raise ConsentError("the consent object holds a NUL or a lone surrogate")
    if "@context" not in doc:
        raise ConsentError("the consent object has no @context")
    kinds = doc.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if kind not in kinds:
        raise ConsentError(f"the object is not a {kind} (type {doc.get('type')!r})")
    return doc


def parse_grant(doc: Any) -> Grant:
    """Read a ``LikenessAuthorization``'s shape (no proof check: see :func:`verify_grant`).

    Raises :class:`ConsentError` on a missing or mistyped field, an unknown scope, a
    ``restrictionsDigest`` that is no sha2-256 multihash, an id not on the owner's server,
    an ``expires`` before ``published``, or an object over :data:`MAX_CONSENT_CHARS`."""
    doc = _check_common(doc, GRANT_TYPE)
    grant_id = _uri(doc, "id")
    owner = _uri(doc, "attributedTo")
    grantee = _uri(doc, "interactingObject")
    if not same_origin(grant_id, owner):
        raise ConsentError("the grant's id is not on the owner's server")
    scope = doc.get("scope")
    if scope not in SCOPES:
        raise ConsentError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    digest = doc.get("restrictionsDigest")
    if not isinstance(digest, str) or not _is_sha256_multibase(digest):
        raise ConsentError("restrictionsDigest must be a sha2-256 multibase digest")
    published = _date(doc, "published")
    expires = _date(doc, "expires") if doc.get("expires") is not None else None
    if expires is not None and expires <= published:
        raise ConsentError("the grant expires before it was published")
    max_uses = doc.get("maxUses")
    if max_uses is not None and (
        not isinstance(max_uses, int) or isinstance(max_uses, bool) or not 1 <= max_uses <= MAX_USES
    ):
        raise ConsentError(f"maxUses must be a whole number from 1 to {MAX_USES}")
    return Grant(
        id=grant_id,
        owner=owner,
        grantee=grantee,
        scope="publish" if scope == "publish" else "drafts",
        restrictions_digest=digest,
        published=published,
        expires=expires,
        max_uses=max_uses,
    )


def parse_revocation(doc: Any) -> Revocation:
    """Read a ``LikenessRevocation``'s shape (no proof check: see :func:`verify_revocation`)."""
    doc = _check_common(doc, REVOCATION_TYPE)
    revocation_id = _uri(doc, "id")
    owner = _uri(doc, "attributedTo")
    revoked = _uri(doc, "object")
    if not same_origin(revocation_id, owner):
        raise ConsentError("the revocation's id is not on the owner's server")
    if not same_origin(revoked, owner):
        raise ConsentError("the revoked grant is not on the owner's server")
    take_down = doc.get("takeDown", False)
    if not isinstance(take_down, bool):
        raise ConsentError("takeDown must be true or false")
    return Revocation(
        id=revocation_id,
        owner=owner,
        object=revoked,
        published=_date(doc, "published"),
        take_down=take_down,
    )


def _is_sha256_multibase(value: str) -> bool:
    if not value.startswith("z") or len(value) > 60:
        return False
    try:
        raw = b58decode(value[1:])
    except ValueError:
        return False
    return len(raw) == 34 and raw.startswith(b"\x12\x20")


# --- verifying -----------------------------------------------------------------------------


def _verify_proof(
    doc: Mapping[str, Any],
    owner_key: ed25519.Ed25519PublicKey,
    *,
    owner: str,
    key_id: str | None,
    now: datetime,
    max_skew: timedelta,
) -> integrity.Proof:
    try:
        proof = integrity.verify(doc, owner_key, now=now, max_skew=max_skew)
    except ProofError as exc:
        raise ConsentError(f"bad proof: {exc.reason}") from exc
    method = proof.verification_method
    if key_id is not None:
        if method != key_id:
            raise ConsentError(f"the proof names the key {method}, not the owner's {key_id}")
    else:
        _key_of_owner(owner, method)
    return proof


def verify_grant(
    doc: Any,
    owner_key: ed25519.Ed25519PublicKey,
    *,
    owner: str,
    grantee: str,
    needs_publish: bool,
    now: datetime,
    max_skew: timedelta = integrity.DEFAULT_MAX_SKEW,
    key_id: str | None = None,
) -> Grant:
    """Check that *doc* is a grant by *owner* to *grantee* that covers the use now.

    *owner_key* is the owner's Ed25519 key. The proof's ``verificationMethod`` must be
    *key_id* when given (the caller took the key from the owner's actor document under
    that id, see :func:`activitypub.integrity.assertion_method_key`), else a fragment of
    the owner's actor id (``{owner}#...``). *needs_publish* asks for ``scope: publish``.
    Raises :class:`ConsentError` with the reason; whether the grant was revoked is the
    caller's to check (revocations are stored, see :func:`revokes`)."""
    grant = parse_grant(doc)
    if grant.owner != owner:
        raise ConsentError(f"the grant is attributed to {grant.owner}, not {owner}")
    proof = _verify_proof(doc, owner_key, owner=owner, key_id=key_id, now=now, max_skew=max_skew)
    if grant.grantee != grantee:
        raise ConsentError(f"the grant is for {grant.grantee}, not {grantee}")
    if needs_publish and not grant.allows_publish:
        raise ConsentError("the grant allows drafts only, not publishing")
    if grant.published - now > max_skew:
        raise ConsentError("the grant is published in the future")
    if grant.expires is not None and grant.expires <= now:
        raise ConsentError(f"the grant expired at {integrity.format_datetime(grant.expires)}")
    return dataclasses.replace(grant, proof=proof)


def verify_revocation(
    doc: Any,
    owner_key: ed25519.Ed25519PublicKey,
    *,
    owner: str,
    now: datetime,
    max_skew: timedelta = integrity.DEFAULT_MAX_SKEW,
    key_id: str | None = None,
) -> Revocation:
    """Check that *doc* is a revocation signed by *owner* (keys as in :func:`verify_grant`).

    A forged one raises :class:`ConsentError`. A replay verifies again, unchanged: the
    caller acts once per :attr:`Revocation.id`."""
    revocation = parse_revocation(doc)
    if revocation.owner != owner:
        raise ConsentError(f"the revocation is by {revocation.owner}, not {owner}")
    proof = _verify_proof(doc, owner_key, owner=owner, key_id=key_id, now=now, max_skew=max_skew)
    if revocation.published - now > max_skew:
        raise ConsentError("the revocation is published in the future")
    return dataclasses.replace(revocation, proof=proof)


def revokes(revocation: Revocation, grant: Grant) -> bool:
    """Whether *revocation* takes back *grant*: the same owner, and either the grant's id,
    or the whole likeness for a grant published no later than the revocation (so that an
    old revocation of everything, replayed, does not touch grants made since)."""
    if revocation.owner != grant.owner:
        return False
    if revocation.object == grant.id:
        return True
    return revocation.whole_likeness and grant.published <= revocation.published
