"""Strict JSON-LD checks of the documents fedisora serves and sends, with pyld.

Peers such as Fedify read every document as JSON-LD: a term that no context defines is
lost to them. ActivityStreams' own context sets ``"@vocab": "_:"``, so such a term expands
to a blank-node IRI (``_:size``); without a vocabulary it is dropped. :func:`problems` says
which terms of a document do either (and which types are undefined), and raises on a JSON-LD
error such as a protected-term redefinition.

The contexts come from ``tests/fixtures/jsonld`` (see its README for where each file comes
from); :func:`bundled_loader` refuses any other URL, so nothing is ever fetched.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pyld import jsonld

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jsonld"

#: The context URLs fedisora's documents name, and the bundled copy of each.
BUNDLED: dict[str, str] = {
    "https://www.w3.org/ns/activitystreams": "activitystreams.jsonld",
    "https://w3id.org/security/v1": "security-v1.jsonld",
    "https://w3id.org/security/multikey/v1": "multikey-v1.jsonld",
    "https://w3id.org/security/data-integrity/v1": "data-integrity-v1.jsonld",
    "https://w3id.org/security/data-integrity/v2": "data-integrity-v2.jsonld",
}


class NotBundled(Exception):
    """A document named a context URL that is not bundled (and is never fetched)."""


@cache
def _context(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def bundled_loader(url: str, options: Any = None) -> dict[str, Any]:
    """pyld's document loader over the bundled contexts only: any other URL is refused."""
    name = BUNDLED.get(url)
    if name is None:
        raise NotBundled(f"{url} is not a bundled context (nothing is fetched)")
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(_context(name)),
    }


def problems(document: Any) -> list[str]:
    """What a JSON-LD reader loses of *document*: each term that is dropped or expands to a
    blank node, and each ``type`` that does, with where it is in *document*. Raises pyld's
    ``JsonLdError`` for a document that is not valid JSON-LD (a protected term redefined, an
    invalid context, a context URL not bundled)."""
    dropped: list[str | None] = []
    expanded = jsonld.expand(
        copy.deepcopy(document),
        {"documentLoader": bundled_loader},
        on_property_dropped=dropped.append,
    )
    found: list[str] = []
    blank_terms: set[str] = set()
    blank_types: set[str] = set()
    for key, types in _expanded_nodes(expanded):
        if key.startswith("_:"):
            blank_terms.add(key[2:])
        blank_types.update(t[2:] for t in types if t.startswith("_:"))
    for term in sorted(blank_terms):
        where = ", ".join(_paths_of_key(document, term)) or "?"
        found.append(f"term {term!r} expands to the blank node _:{term} (at {where})")
    for kind in sorted(blank_types):
        where = ", ".join(_paths_of_type(document, kind)) or "?"
        found.append(f"type {kind!r} expands to the blank node _:{kind} (at {where})")
    for iri in dropped:
        if iri is None:
            found.append("a term defined as null is dropped")
            continue
        where = ", ".join(_paths_of_key(document, iri)) or "?"
        found.append(f"term {iri!r} is dropped: it is no IRI (at {where})")
    return found


def _expanded_nodes(value: Any) -> Iterator[tuple[str, list[str]]]:
    """Every (key, @type values) of the expanded form, at any depth."""
    if isinstance(value, list):
        for item in value:
            yield from _expanded_nodes(item)
    elif isinstance(value, dict):
        types = value.get("@type", [])
        types = [t for t in (types if isinstance(types, list) else [types]) if isinstance(t, str)]
        if "@value" in value:  # a typed literal: its @type is a datatype IRI
            yield from (("@value", [t]) for t in types)
            return
        for key, item in value.items():
            yield key, types
            yield from _expanded_nodes(item)
            types = []


def _paths_of_key(value: Any, key: str, path: str = "$") -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "@context":
                continue
            here = f"{path}.{k}"
            if k == key:
                out.append(here)
            out.extend(_paths_of_key(v, key, here))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths_of_key(v, key, f"{path}[{i}]"))
    return out


def _paths_of_type(value: Any, kind: str, path: str = "$") -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        types = value.get("type")
        if kind == types or (isinstance(types, list) and kind in types):
            out.append(f"{path}.type")
        for k, v in value.items():
            if k != "@context":
                out.extend(_paths_of_type(v, kind, f"{path}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths_of_type(v, kind, f"{path}[{i}]"))
    return out


def assert_valid(name: str, document: Any) -> None:
    """Fail, naming *name* and every lost term, unless *document* is strict JSON-LD."""
    try:
        found = problems(document)
    except jsonld.JsonLdError as exc:
        raise AssertionError(f"{name}: not valid JSON-LD: {_error_text(exc)}") from exc
    assert not found, f"{name}:\n  " + "\n  ".join(found)


def failures(documents: Mapping[str, Any]) -> list[str]:
    """:func:`assert_valid`'s message for each of the named *documents* that fails it (all of
    them, so that one run names every problem)."""
    found = []
    for name, document in documents.items():
        try:
            assert_valid(name, document)
        except AssertionError as exc:
            found.append(str(exc))
    return found


def _error_text(exc: BaseException | None) -> str:
    """The reasons of a pyld error (it wraps causes) with their codes, and the term whose
    definition failed (pyld says it nowhere but in the frame that raised)."""
    parts = []
    while exc is not None:
        code = getattr(exc, "code", None)
        text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        term = _failed_term(exc)
        parts.append(text + (f" [{code}]" if code else "") + (f": {term!r}" if term else ""))
        exc = exc.__cause__
    return " <- ".join(parts)


def _failed_term(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    term = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_create_term_definition":
            term = tb.tb_frame.f_locals.get("term")
        tb = tb.tb_next
    return term if isinstance(term, str) else None
