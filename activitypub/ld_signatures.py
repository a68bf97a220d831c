"""Linked Data signatures (``RsaSignature2017``), as Mastodon signs and verifies them.

Mastodon signs public activities with the author's RSA key and, when an activity arrives
signed (HTTP) by someone other than its actor -- a reply forwarded by the thread's server, a
relay -- accepts it as the actor's when this signature holds
(``app/lib/activitypub/linked_data_signature.rb``)::

    "signature": {
      "type": "RsaSignature2017",
      "creator": "https://example.org/users/alice#main-key",
      "created": "2026-12-07T12:00:00Z",
      "signatureValue": "<base64>"
    }

The steps:

1. the options are the signature without ``type``, ``id`` and ``signatureValue``, with
   ``"@context": "https://w3id.org/identity/v1"``;
2. the document is the activity without ``signature``;
3. to be signed = hex(SHA-256(URDNA2015(options))) followed by hex(SHA-256(URDNA2015(document))),
   URDNA2015 being the RDF dataset canonicalisation (with pyld) written as N-Quads; the 128
   hex digits are signed as ASCII;
4. RSASSA-PKCS1-v1_5 with SHA-256 over those bytes; ``signatureValue`` is its base64.

Contexts are read from :mod:`activitypub.contexts` (bundled with the package); no URL is ever
fetched, so a document naming another context cannot be verified here.

What such a signature covers is the RDF graph, not the JSON: a member whose term no context
defines is not signed at all, and a document that redefines ``content`` in its own
``@context`` reads, as JSON, other than what was signed. :func:`verify` therefore also checks
that the document means the same when read with the standard terms (ActivityStreams, the
security vocabulary, fedisora's own; other extension terms as the document defines them, but
never as another name of a standard one), refuses ``@graph``, ``@included`` and ``@reverse``
(as Fedify does) and types no context defines, and returns the document without the members
that were not signed (Mastodon drops them by compacting).

Nothing here fetches a key: the caller looks up the ``creator`` key (which must be a key of
the activity's actor) and passes it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from activitypub import contexts, integrity
from activitypub.errors import InvalidProof, MalformedProof, ProofError
from activitypub.integrity import format_datetime
from activitypub.objects import AS_CONTEXT, FEDISORA_NS, OBJECT_TERMS, SECURITY_CONTEXT

__all__ = [
    "IDENTITY_CONTEXT",
    "SIGNATURE_TYPE",
    "LdSignature",
    "ProofError",
    "canonical_hash",
    "parse",
    "sign",
    "verify",
]

SIGNATURE_TYPE = "RsaSignature2017"
#: The context of the signature options (Mastodon's ``LinkedDataSignature::CONTEXT``).
IDENTITY_CONTEXT = "https://w3id.org/identity/v1"

# An RSA signature of a key up to 8192 bits is 1024 bytes: 1368 base64 characters.
_MAX_SIGNATURE_VALUE = 1400
_MAX_FIELD = 2048
# Bounds on the document before any JSON-LD work (a received one is capped by the inbox's
# body size too): canonicalisation recurses, and its cost grows with blank nodes. Depth and
# size are the proofs' own (integrity.check_bounds).
_MAX_BLANK_NODES = 500
# URDNA2015's n-degree hashing is exponential on crafted graphs (many alike blank nodes);
# an activity needs a handful of calls, a poisoned graph is refused past this many.
_MAX_N_DEGREE_CALLS = 2_000
_UNSAFE_KEYWORDS = frozenset({"@graph", "@included", "@reverse"})
_SIGNATURE_MEMBERS_NOT_SIGNED = ("type", "id", "signatureValue")

# pyld keeps resolved contexts in caches that are not thread-safe; callers may verify in
# worker threads.
_lock = threading.Lock()


@dataclass(frozen=True)
class LdSignature:
    """A signature as read from a document (not yet verified)."""

    creator: str
    value: bytes
    created: str | None
    type: str = SIGNATURE_TYPE


def parse(document: Mapping[str, Any]) -> LdSignature:
    """The ``signature`` of *document*, read without verifying it.

    Raises :class:`MalformedProof` when there is none or it is not an ``RsaSignature2017``
    with a ``creator`` and a base64 ``signatureValue``."""
    signature = document.get("signature")
    if not isinstance(signature, Mapping):
        raise MalformedProof("the activity's signature is not an object")
    kind = signature.get("type")
    if kind != SIGNATURE_TYPE:
        shown = kind[:100] if isinstance(kind, str) else repr(kind)[:100]
        raise MalformedProof(f"unsupported Linked Data signature type {shown!r}")
    creator = signature.get("creator")
    if not isinstance(creator, str) or not 0 < len(creator) <= _MAX_FIELD:
        raise MalformedProof("the signature names no creator key")
    value = signature.get("signatureValue")
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_SIGNATURE_VALUE:
        raise MalformedProof("the signature has no signatureValue")
    try:
        # Lenient as Ruby's Base64.decode64 (Mastodon): whitespace and line breaks are ignored.
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedProof("the signatureValue is not base64") from exc
    created = signature.get("created")
    if created is not None and (not isinstance(created, str) or len(created) > 64):
        raise MalformedProof("the signature's created is not a date-time string")
    return LdSignature(creator=creator, value=raw, created=created)


def _load_context(url: str, options: Any = None) -> dict[str, Any]:
    document = contexts.load(url)
    if document is None:
        raise MalformedProof(f"the context {url[:200]} is not known here (nothing is fetched)")
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": document,
    }


def _check_bounds(document: Any) -> None:
    integrity.check_bounds(document, refused_keys=_UNSAFE_KEYWORDS)


def _jsonld() -> Any:
    from pyld import jsonld  # imported on first use: it costs a third of a second

    return jsonld


def _canonical(document: Any) -> str:
    """URDNA2015 N-Quads of *document* (pyld, over the bundled contexts only)."""
    jsonld = _jsonld()
    from pyld.canon import URDNA2015

    class _Bounded(URDNA2015):  # type: ignore[misc]
        calls = 0

        def hash_n_degree_quads(self, id_: Any, issuer: Any) -> Any:
            self.calls += 1
            if self.calls > _MAX_N_DEGREE_CALLS:
                raise MalformedProof("the document's blank nodes are too costly to canonicalise")
            return super().hash_n_degree_quads(id_, issuer)

    dataset = _read(
        jsonld.to_rdf,
        copy.deepcopy(document),
        {"documentLoader": _load_context, "produceGeneralizedRdf": False},
    )
    blanks = {
        term["value"]
        for quads in dataset.values()
        for quad in quads
        for term in (quad["subject"], quad["object"], quad.get("graph") or {})
        if term.get("type") == "blank node"
    }
    if len(blanks) > _MAX_BLANK_NODES:
        raise MalformedProof("the document has too many blank nodes")
    result = _read(_Bounded().main, dataset, {"format": "application/n-quads"})
    assert isinstance(result, str)
    return result


def _read(step: Callable[..., Any], *args: Any) -> Any:
    """One of pyld's steps on a received document: whatever it raises on hostile input (its
    own errors, and a KeyError or ValueError from deep inside) is a :class:`MalformedProof`
    with the reason; ours (a context not bundled, a bound) pass through."""
    jsonld = _jsonld()
    try:
        return step(*args)
    except ProofError:
        raise
    except jsonld.JsonLdError as exc:
        raise MalformedProof(f"the document is not valid JSON-LD: {_cause(exc)}") from exc
    except RecursionError as exc:
        raise MalformedProof("the document is nested too deeply") from exc
    except Exception as exc:  # pyld on input it did not expect: refused, never a crash
        reason = str(exc)[:200] or type(exc).__name__
        raise MalformedProof(f"the document cannot be read as JSON-LD: {reason}") from exc


def _cause(exc: BaseException) -> str:
    """The innermost reason of a pyld error (it wraps causes), or ours when a context was
    not bundled."""
    reason = str(exc.args[0]) if exc.args else str(exc)
    while exc.__cause__ is not None or exc.__context__ is not None:
        nxt = exc.__cause__ or exc.__context__
        assert nxt is not None
        exc = nxt
        if isinstance(exc, ProofError):
            return exc.reason
        reason = str(exc.args[0]) if exc.args else str(exc)
    return reason[:300]


def canonical_hash(document: Any) -> str:
    """hex(SHA-256(URDNA2015 N-Quads of *document*)): one half of what is signed."""
    with _lock:
        return hashlib.sha256(_canonical(document).encode()).hexdigest()


def _options_of(signature: Mapping[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in signature.items() if k not in _SIGNATURE_MEMBERS_NOT_SIGNED}
    options["@context"] = IDENTITY_CONTEXT
    return options


def _unsigned_document(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "signature"}


def sign(
    document: Mapping[str, Any],
    key: rsa.RSAPrivateKey,
    creator: str,
    *,
    created: datetime,
) -> dict[str, Any]:
    """*document* with an ``RsaSignature2017`` ``signature`` by *key*, named *creator* (the
    key id, as in the actor's ``publicKey``). A signature it had is replaced."""
    unsigned = _unsigned_document(document)
    _check_bounds(unsigned)
    options: dict[str, Any] = {
        "type": SIGNATURE_TYPE,
        "creator": creator,
        "created": format_datetime(created),
    }
    with _lock:
        message = _hex(_canonical(_options_of(options))) + _hex(_canonical(unsigned))
    value = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        **unsigned,
        "signature": {**options, "signatureValue": base64.b64encode(value).decode()},
    }


def _hex(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify(document: Mapping[str, Any], key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The signed part of *document*, when its ``RsaSignature2017`` holds for *key*.

    The caller has checked that *key* is the one the signature's ``creator`` names and that
    it belongs to the activity's actor. What is returned is *document* less the members no
    context defines (not covered by the signature). Raises :class:`MalformedProof` or
    :class:`InvalidProof` with the reason: not an ``RsaSignature2017``, a modified document,
    a context that is not bundled, a term the document's own context redefines, ..."""
    parsed = parse(document)
    signature = document["signature"]
    unsigned = _unsigned_document(document)
    _check_bounds(unsigned)
    _check_bounds(signature)
    with _lock:
        canonical = _canonical(unsigned)
        message = _hex(_canonical(_options_of(signature))) + _hex(canonical)
        try:
            key.verify(parsed.value, message.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise InvalidProof(
                "the Linked Data signature does not match the activity (modified, or "
                "signed by another key)"
            ) from exc
        # What was signed is the graph. The JSON is read by name (``content``, ``to``...):
        # it must say the same when those names have their standard meaning.
        standard = _standard_reading(unsigned)
        if _canonical(standard) != canonical:
            raise InvalidProof(
                "the activity's @context gives a standard term another meaning: what it "
                "says is not what was signed"
            )
        unsigned_terms = _undefined_terms(standard)
    if not unsigned_terms:
        return dict(document)
    kept = _without_members(unsigned, unsigned_terms)
    assert isinstance(kept, dict)
    return {**kept, "signature": signature}


_STANDARD_NAMESPACES = ("https://www.w3.org/ns/activitystreams#", "https://w3id.org/security#")


@functools.cache
def _fixed_terms() -> tuple[frozenset[str], dict[str, Any]]:
    """The names whose meaning a document cannot change (those of ActivityStreams and
    security/v1, and fedisora's own), and the definitions of fedisora's own terms."""
    names: set[str] = set()
    for url in (AS_CONTEXT, SECURITY_CONTEXT):
        loaded = contexts.load(url)
        assert loaded is not None
        names.update(loaded["@context"])
    ours: dict[str, Any] = {"fedisora": FEDISORA_NS}
    for term, definition in OBJECT_TERMS.items():
        iri = definition.get("@id") if isinstance(definition, Mapping) else definition
        if isinstance(iri, str) and (iri.startswith(("fedisora:", FEDISORA_NS))):
            ours[term] = definition
    names.update(ours)
    return frozenset(names), ours


def _standard_reading(document: Mapping[str, Any]) -> dict[str, Any]:
    """*document* read with the standard terms' meanings: its nested contexts removed, its
    top-level one replaced by ActivityStreams, security/v1 and fedisora's own terms, followed
    by its own inline definitions of the other terms (Mastodon's ``toot:`` ones, say), less
    ``@vocab`` and ``@base``. Raises :class:`InvalidProof` for an inline term that names an
    ActivityStreams or security property under another name (``"quote": "as:inReplyTo"``)."""
    fixed, ours = _fixed_terms()
    own = document.get("@context")
    extra: dict[str, Any] = {}
    for item in own if isinstance(own, list) else [own]:
        if isinstance(item, Mapping):
            for term, definition in item.items():
                if term not in fixed and term not in ("@vocab", "@base"):
                    extra[term] = definition
    reference: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, copy.deepcopy(ours)]
    if extra:
        reference.append(extra)
        try:
            key = json.dumps(extra, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise MalformedProof("the document's @context is not JSON") from exc
        _check_aliases(key)
    body = _strip_contexts({k: v for k, v in document.items() if k != "@context"})
    assert isinstance(body, dict)
    return {"@context": reference, **body}


@functools.lru_cache(maxsize=256)
def _check_aliases(extra_json: str) -> None:
    """Raise for a term of *extra_json* (a document's own inline definitions, as JSON: a
    server sends the same ones every time, so the answer is kept) that names a standard
    property under another name."""
    jsonld = _jsonld()
    extra = json.loads(extra_json)
    reference: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, copy.deepcopy(_fixed_terms()[1]), extra]
    for term in extra:
        if term.startswith("@"):
            continue
        expanded = _read(
            jsonld.expand, {"@context": reference, term: []}, {"documentLoader": _load_context}
        )
        for iri in expanded[0] if expanded else ():
            for namespace in _STANDARD_NAMESPACES:
                local = iri.removeprefix(namespace)
                if local != iri and local and local != term:
                    raise InvalidProof(
                        f"the activity's @context makes {term[:100]!r} mean {iri[:200]}"
                    )


def _strip_contexts(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_contexts(v) for k, v in value.items() if k != "@context"}
    if isinstance(value, list):
        return [_strip_contexts(v) for v in value]
    return value


def _undefined_terms(document: dict[str, Any]) -> set[str]:
    """The member names of *document* that a JSON-LD reader drops or reads as blank nodes
    (not signed); raises :class:`InvalidProof` for a ``type`` no context defines (a blank
    node type: another undefined one would verify as well)."""
    jsonld = _jsonld()
    dropped: list[str | None] = []
    expanded = _read(
        functools.partial(jsonld.expand, on_property_dropped=dropped.append),
        copy.deepcopy(document),
        {"documentLoader": _load_context},
    )
    found = {name for name in dropped if name}
    _walk_expanded(expanded, found.add)
    return found


def _walk_expanded(value: Any, add: Callable[[str], None]) -> None:
    if isinstance(value, list):
        for item in value:
            _walk_expanded(item, add)
        return
    if not isinstance(value, dict):
        return
    if "@value" in value:
        return
    types = value.get("@type", [])
    for kind in types if isinstance(types, list) else [types]:
        if isinstance(kind, str) and kind.startswith("_:"):
            raise InvalidProof(f"the type {kind[2:][:100]!r} is defined by no context")
    for key, item in value.items():
        if key.startswith("_:"):
            add(key[2:])
        _walk_expanded(item, add)


def _without_members(value: Any, names: set[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: v if k == "@context" else _without_members(v, names)
            for k, v in value.items()
            if k not in names
        }
    if isinstance(value, list):
        return [_without_members(v, names) for v in value]
    return value
