"""The published opt-out list: its shape, its signature and the changes between two versions.
Pure: no I/O; time and keys are arguments.

An instance publishes the opt-outs its admins approved as one JSON document, signed by its
instance actor with an FEP-8b32 proof (W3C Data Integrity, ``eddsa-jcs-2022``, made by
:mod:`activitypub.integrity`: the JCS canonical bytes of the document without ``proof``,
hashed with the proof's configuration, signed with Ed25519)::

    {
      "type": "OptOutList",
      "version": 7,
      "issued_at": "2026-12-07T02:00:00Z",
      "issuer": "https://example.org/actor",
      "entries": [
        {"id": "https://example.org/optouts/12", "who": "Jane Doe",
         "kind": "public_figure", "terms": ["Jane Doe", "JD Star"]}
      ],
      "proof": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
                "verificationMethod": "https://example.org/actor#ed25519-key", ...}
    }

``version`` grows by one with each approval or removal; a subscriber ignores a version not
newer than the one it applied. Entries carry public fields only (never a contact or the
evidence). The proof's key must be a fragment of ``issuer`` (``{issuer}#...``): whoever
looks the key up takes it from that actor's ``assertionMethod``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub import integrity
from activitypub.errors import ProofError
from fedisora.policy.matcher import LISTS, TermError, check_term

__all__ = [
    "LIST_TYPE",
    "MAX_ENTRIES",
    "MAX_TERMS",
    "MAX_WHO_CHARS",
    "BadSignature",
    "Diff",
    "ListEntry",
    "ListError",
    "MalformedList",
    "PublishedList",
    "build_list",
    "diff",
    "parse_list",
    "sign_list",
    "verify_list",
]

LIST_TYPE = "OptOutList"
MAX_ENTRIES = 10_000
MAX_TERMS = 20
MAX_WHO_CHARS = 200
_MAX_ID = 1024


class ListError(Exception):
    """A list that cannot be used; the message says why."""


class MalformedList(ListError):
    """The document is not an opt-out list (a missing or mistyped member, over a bound)."""


class BadSignature(ListError):
    """The list's proof does not hold (tampered, another key, another issuer's key)."""


@dataclass(frozen=True)
class ListEntry:
    """One published opt-out: its id (a URI unique in the issuer's list), the rights
    holder, the policy list (``public_figure`` or ``protected_work``) and the terms."""

    id: str
    who: str
    kind: str
    terms: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "who": self.who, "kind": self.kind, "terms": list(self.terms)}

    @classmethod
    def read(cls, value: Any, where: str = "entry") -> ListEntry:
        """An entry from its JSON form; :class:`MalformedList` naming *where* otherwise."""
        if not isinstance(value, Mapping):
            raise MalformedList(f"{where} is not a JSON object")
        ident, who, kind, terms = (value.get(k) for k in ("id", "who", "kind", "terms"))
        if not isinstance(ident, str) or not 0 < len(ident) <= _MAX_ID:
            raise MalformedList(f"{where}.id must be a string of at most {_MAX_ID} characters")
        if not isinstance(who, str) or not who.strip() or len(who) > MAX_WHO_CHARS:
            raise MalformedList(f"{where}.who must be a name of at most {MAX_WHO_CHARS} characters")
        if kind not in LISTS:
            raise MalformedList(f"{where}.kind must be one of {', '.join(LISTS)}")
        if not isinstance(terms, list) or not 0 < len(terms) <= MAX_TERMS:
            raise MalformedList(f"{where}.terms must be a list of 1 to {MAX_TERMS} terms")
        tidy: list[str] = []
        for n, term in enumerate(terms):
            if not isinstance(term, str):
                raise MalformedList(f"{where}.terms[{n}] is not a string")
            try:
                tidy.append(check_term(term))
            except TermError as exc:
                raise MalformedList(f"{where}.terms[{n}]: {exc}") from None
        return cls(ident, " ".join(who.split()), str(kind), tuple(tidy))


@dataclass(frozen=True)
class PublishedList:
    """A list as read (and, from :func:`verify_list`, verified)."""

    version: int
    issued_at: datetime
    issuer: str
    entries: tuple[ListEntry, ...]


def build_list(
    *, version: int, issued_at: datetime, issuer: str, entries: Iterable[ListEntry]
) -> dict[str, Any]:
    """The unsigned list document."""
    return {
        "type": LIST_TYPE,
        "version": version,
        "issued_at": integrity.format_datetime(issued_at),
        "issuer": issuer,
        "entries": [e.public() for e in entries],
    }


def sign_list(
    document: Mapping[str, Any],
    key: ed25519.Ed25519PrivateKey,
    *,
    key_id: str,
    created: datetime,
) -> dict[str, Any]:
    """*document* (from :func:`build_list`) with the issuer's proof; *key_id* (the
    issuer's Ed25519 Multikey id) must be a fragment of the issuer's actor id."""
    parsed = parse_list(document)
    _key_of_issuer(parsed.issuer, key_id)
    return integrity.sign(document, key, key_id, created=created)


def _key_of_issuer(issuer: str, key_id: str) -> None:
    if "#" not in key_id or key_id.split("#", 1)[0] != issuer:
        raise BadSignature(f"the key {key_id} is not the issuer's ({issuer})")


def parse_list(document: Any) -> PublishedList:
    """The list *document* holds, unverified; :class:`MalformedList` when it is not one."""
    if not isinstance(document, Mapping):
        raise MalformedList("the list is not a JSON object")
    if document.get("type") != LIST_TYPE:
        raise MalformedList(f"the list's type is not {LIST_TYPE}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 2**63:
        raise MalformedList("version must be a whole number")
    try:
        issued_at = integrity.parse_datetime(document.get("issued_at"), "issued_at")
    except ProofError as exc:
        raise MalformedList(exc.reason) from None
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        raise MalformedList("issuer must be the issuing actor's id (a URL)")
    if len(issuer) > _MAX_ID:
        raise MalformedList("issuer is too long")
    raw = document.get("entries")
    if not isinstance(raw, list) or len(raw) > MAX_ENTRIES:
        raise MalformedList(f"entries must be a list of at most {MAX_ENTRIES}")
    entries = tuple(ListEntry.read(e, f"entries[{n}]") for n, e in enumerate(raw))
    if len({e.id for e in entries}) != len(entries):
        raise MalformedList("two entries have the same id")
    return PublishedList(version, issued_at, issuer, entries)


def verify_list(
    document: Any,
    key: ed25519.Ed25519PublicKey,
    *,
    issuer: str,
    now: datetime,
    max_skew: timedelta = integrity.DEFAULT_MAX_SKEW,
) -> PublishedList:
    """Check that *document* is a list issued by *issuer* and signed with *key* (the
    issuer's Ed25519 key, which the caller took from the issuer's actor document).

    :class:`MalformedList` for a document that is not a list, :class:`BadSignature` when
    the proof is missing or does not hold, names another key, or the list another issuer.
    """
    parsed = parse_list(document)
    if parsed.issuer != issuer:
        raise BadSignature(f"the list is issued by {parsed.issuer}, not {issuer}")
    try:
        proof = integrity.verify(document, key, now=now, max_skew=max_skew)
    except ProofError as exc:
        raise BadSignature(f"bad proof: {exc.reason}") from None
    _key_of_issuer(issuer, proof.verification_method)
    return parsed


@dataclass(frozen=True)
class Diff:
    """What a new version changes: entries added (or changed: a changed entry is removed and
    added again) and removed."""

    added: tuple[ListEntry, ...]
    removed: tuple[ListEntry, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def diff(old: Iterable[ListEntry], new: Iterable[ListEntry]) -> Diff:
    """The changes from the entries *old* (those applied) to *new* (a newer version's)."""
    before = {e.id: e for e in old}
    after = {e.id: e for e in new}
    added = tuple(e for i, e in after.items() if before.get(i) != e)
    removed = tuple(e for i, e in before.items() if after.get(i) != e)
    return Diff(added, removed)
