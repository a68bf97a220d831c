"""RFC 9421 HTTP Message Signatures, for requests.

Parsing and the signature base follow the RFC (section 2.5; ``@signature-params``
is the re-serialised ``Signature-Input`` member, section 3.2). Derived components:
``@method @target-uri @authority @scheme @request-target @path @query
@query-param``; fields with no parameters or with ``sf``, ``key`` or ``bs``.
Algorithms: ``rsa-v1_5-sha256``, ``ed25519`` and (for the RFC's own examples)
``rsa-pss-sha512``; without an ``alg`` parameter the key type decides.

What is *accepted* (:func:`check`) follows Mastodon 4.5, which verifies these by
default:

* ``keyid`` must be present (we could not find the key otherwise) and ``created``
  must be present;
* ``@method`` must be covered, and the target: ``@target-uri``, or ``@authority``
  with ``@path`` (or ``@request-target``) and, when the URL has a query, ``@query``;
* a POST, or any request with a body, must cover ``content-digest``, and a
  covered ``Content-Digest`` must match the body;
* the time window of :mod:`activitypub.signatures._window`.

With several signatures in the headers, the first label of ``Signature-Input``
that also has a ``Signature`` member is used, unless a label is asked for.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import unquote_to_bytes

import http_sf

from activitypub._sf import (
    BareItem,
    Dictionary,
    Item,
    Params,
    SFError,
    parse_dictionary,
    serialize_member,
    split_member,
)
from activitypub.digest import content_digest_header, verify_content_digest
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
from activitypub.signatures.request import Request, Target, target, wire_bytes

__all__ = [
    "ALGORITHMS",
    "Component",
    "MessageSignature",
    "check",
    "parse",
    "sign",
    "signature_base",
    "verify",
    "verify_signature",
]

ALGORITHMS = _algorithms.ALGORITHMS

# Structured fields whose type RFC 9421 `;sf` needs but http_sf's table lacks.
_DICTIONARY_FIELDS = frozenset(
    {
        "signature-input",
        "signature",
        "content-digest",
        "repr-digest",
        "want-content-digest",
        "want-repr-digest",
    }
)
# application/x-www-form-urlencoded bytes left as they are by @query-param encoding.
_FORM_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")


@dataclass(frozen=True, slots=True)
class Component:
    """A covered component: a field name or ``@derived`` name, with parameters."""

    name: str
    params: tuple[tuple[str, BareItem], ...] = ()

    @property
    def identifier(self) -> str:
        """The serialised component identifier, as it starts a signature base line."""
        try:
            return _identifier(self.name, self.params)
        except TypeError:  # an unhashable parameter value: serialise it afresh
            return http_sf.ser((self.name, dict(self.params)))

    def _identity(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        # Parameter order does not change a component's identity (RFC 9421 section 2).
        if not self.params:
            return self.name, ()
        return self.name, tuple(sorted((key, repr(value)) for key, value in self.params))


@functools.lru_cache(maxsize=512)
def _identifier(name: str, params: tuple[tuple[str, Any], ...]) -> str:
    """Peers cover the same few components in every request ("@method", "content-digest"
    ...): their serialisation (character checks included) is done once, not per request."""
    return http_sf.ser((name, dict(params)))


@dataclass(frozen=True, slots=True)
class MessageSignature:
    """One parsed signature from ``Signature-Input`` and ``Signature``."""

    scheme: ClassVar[Literal["rfc9421"]] = "rfc9421"

    label: str
    key_id: str
    components: tuple[Component, ...]
    signature: bytes
    #: The ``@signature-params`` value: the member re-serialised canonically.
    signature_params: str
    created: int | None = None
    expires: int | None = None
    #: The ``alg`` parameter, if sent.
    algorithm: str | None = None
    nonce: str | None = None
    tag: str | None = None

    def covers(self, name: str) -> bool:
        """True if the component ``name`` is covered without parameters."""
        return any(c.name == name and not c.params for c in self.components)


def _dictionary(request: Request, name: str) -> Dictionary:
    value = request.header(name)
    if value is None:
        raise MalformedSignature(f"{name} header missing")
    try:
        return parse_dictionary(value)
    except SFError as exc:
        raise MalformedSignature(f"{name} is not a structured dictionary: {exc}") from exc


def _int_param(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if type(value) is not int:  # not isinstance: a Boolean is not an Integer here
        raise MalformedSignature(f"signature parameter {name} must be an integer")
    return value


def _str_param(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if type(value) is not str:  # not isinstance: a Token is not a String here
        raise MalformedSignature(f"signature parameter {name} must be a string")
    return value


def parse(request: Request, *, label: str | None = None) -> MessageSignature:
    """Read one signature from ``Signature-Input``/``Signature``.

    Raises :class:`SignatureMissing` without ``Signature-Input`` and
    :class:`MalformedSignature` for anything that does not parse.
    """
    input_value = request.header("signature-input")
    if input_value is None:
        raise SignatureMissing("no Signature-Input header")
    inputs = _input_dictionary(input_value)
    signatures = _dictionary(request, "signature")
    if label is None:
        label = next((name for name in inputs if name in signatures), None)
        if label is None:
            raise MalformedSignature("no label is in both Signature-Input and Signature")
    elif label not in inputs or label not in signatures:
        raise MalformedSignature(f"no signature labelled {label!r}")
    raw, _ = split_member(signatures[label])
    if not isinstance(raw, bytes) or not raw:
        raise MalformedSignature(f"Signature {label} is not a non-empty byte sequence")
    read = _read_input(input_value, label)
    # (Not dataclasses.replace: its field introspection cost more than the rest of parse.)
    return MessageSignature(
        read.label,
        read.key_id,
        read.components,
        raw,
        read.signature_params,
        read.created,
        read.expires,
        read.algorithm,
        read.nonce,
        read.tag,
    )


# A peer's Signature-Input differs only in its created time, so under load the same value
# arrives many times a second: its reading (parse, checks, canonical re-serialisation) is
# remembered. Both functions are pure and return values nobody changes; errors are not cached.


@functools.lru_cache(maxsize=1024)
def _input_dictionary(value: str) -> Dictionary:
    try:
        return parse_dictionary(value)
    except SFError as exc:
        raise MalformedSignature(f"signature-input is not a structured dictionary: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def _read_input(value: str, label: str) -> MessageSignature:
    """The signature labelled *label* in Signature-Input *value*, with an empty signature."""
    member = _input_dictionary(value)[label]
    items, params = split_member(member)
    if not isinstance(items, list):
        raise MalformedSignature(f"Signature-Input {label} is not an inner list")
    components: list[Component] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for item in items:
        name, item_params = split_member(item)
        if type(name) is not str or not name or name != name.lower():
            raise MalformedSignature("component identifiers must be lower-case strings")
        component = Component(name, tuple(item_params.items()))
        if component._identity() in seen:
            raise MalformedSignature(f"component {name!r} is covered twice")
        seen.add(component._identity())
        components.append(component)
    key_id = _str_param(params, "keyid")
    if not key_id:
        raise MalformedSignature("the keyid parameter is required")
    try:
        signature_params = serialize_member(member)
    except Exception as exc:  # values http_sf parsed but cannot write back
        raise MalformedSignature(f"cannot serialise Signature-Input {label}: {exc}") from exc
    return MessageSignature(
        label=label,
        key_id=key_id,
        components=tuple(components),
        signature=b"",
        signature_params=signature_params,
        created=_int_param(params, "created"),
        expires=_int_param(params, "expires"),
        algorithm=_str_param(params, "alg"),
        nonce=_str_param(params, "nonce"),
        tag=_str_param(params, "tag"),
    )


def _form_encode(text: str) -> str:
    return "".join(
        chr(byte) if byte in _FORM_SAFE else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def _form_decode(text: str) -> str:
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "replace")


def _query_param(query: str | None, name: str) -> str:
    """RFC 9421 section 2.2.8: the re-encoded value of the one parameter ``name``."""
    values = []
    for pair in (query or "").split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if _form_encode(_form_decode(key)) == name:
            values.append(_form_encode(_form_decode(value)))
    if not values:
        raise SignatureInvalid(f"covered query parameter {name!r} is absent")
    if len(values) > 1:
        raise SignatureInvalid(f"query parameter {name!r} occurs more than once")
    return values[0]


# The derived components without parameters (RFC 9421 section 2.2), each read off the request
# or its split URL.
_DERIVED: dict[str, Callable[[Request, Target], str]] = {
    "@method": lambda request, url: request.method,
    "@target-uri": lambda request, url: url.uri,
    "@authority": lambda request, url: url.authority,
    "@scheme": lambda request, url: url.scheme,
    "@request-target": lambda request, url: url.path_and_query,
    "@path": lambda request, url: url.path,
    "@query": lambda request, url: "?" + (url.query or ""),
}


def _derived(component: Component, request: Request, url: Target) -> str:
    params = dict(component.params)
    name = component.name
    if name == "@query-param":
        if set(params) - {"name"}:
            raise UnsupportedSignature("only the name parameter is supported on @query-param")
        param = params.get("name")
        if type(param) is not str:
            raise MalformedSignature("@query-param needs a string name parameter")
        return _query_param(url.query, param)
    if params:
        raise UnsupportedSignature(f"parameters on {name} are not supported")
    if name == "@signature-params":
        raise MalformedSignature("@signature-params cannot be a covered component")
    value = _DERIVED.get(name)
    if value is None:
        raise UnsupportedSignature(f"unsupported derived component {name}")
    return value(request, url)


def _field(component: Component, request: Request, url: Target) -> str:
    name = component.name
    lines = request.headers.get_all(name)
    if not lines and name == "host":
        lines = [url.authority]
    if not lines:
        raise SignatureInvalid(f"covered field {name!r} is absent")
    lines = [line.strip(" \t") for line in lines]
    params = dict(component.params)
    if not params:
        return ", ".join(lines)
    if set(params) == {"bs"} and params["bs"] is True:
        return ", ".join(
            ":" + base64.b64encode(wire_bytes(line)).decode("ascii") + ":" for line in lines
        )
    if "key" in params and set(params) <= {"key", "sf"} and params.get("sf", True) is True:
        key = params["key"]
        if type(key) is not str:
            raise MalformedSignature(f"the key parameter on {name!r} must be a string")
        try:
            members = parse_dictionary(", ".join(lines))
        except SFError as exc:
            raise MalformedSignature(f"field {name!r} is not a dictionary: {exc}") from exc
        if key not in members:
            raise SignatureInvalid(f"covered member {key!r} of {name!r} is absent")
        return serialize_member(members[key])
    if set(params) == {"sf"} and params["sf"] is True:
        kind = "dictionary" if name in _DICTIONARY_FIELDS else None
        try:
            parsed = http_sf.parse(", ".join(lines).encode("ascii"), name=name, tltype=kind)
            return http_sf.ser(parsed)
        except KeyError:
            raise UnsupportedSignature(f"unknown structured type of field {name!r}") from None
        except Exception as exc:  # a third-party parser on hostile input
            raise MalformedSignature(f"field {name!r} is not a structured field: {exc}") from exc
    raise UnsupportedSignature(f"unsupported parameters on field {name!r}")


def signature_base(sig: MessageSignature, request: Request) -> str:
    """The RFC 9421 signature base (section 2.5) of ``sig`` over ``request``."""
    url = target(request)
    lines = []
    for component in sig.components:
        if component.name.startswith("@"):
            value = _derived(component, request, url)
        else:
            value = _field(component, request, url)
        if "\n" in value or "\r" in value:
            raise MalformedSignature(f"component {component.name!r} contains a newline")
        lines.append(f"{component.identifier}: {value}")
    lines.append(f'"@signature-params": {sig.signature_params}')
    return "\n".join(lines)


def check(sig: MessageSignature, request: Request, *, now: datetime | float) -> None:
    """Everything but the cryptography: parameters, coverage, time window, digest.

    Cheap, and needs no key: run it before fetching the signer's key.
    """
    if sig.created is None:
        raise WeakSignature("the created parameter is required")
    if sig.algorithm is not None and sig.algorithm not in ALGORITHMS:
        raise UnsupportedSignature(f"unsupported algorithm {sig.algorithm!r}")
    check_time_window(sig.created, sig.expires, timestamp(now))
    covered = {c.name for c in sig.components if not c.params}  # what sig.covers() asks
    if "@method" not in covered:
        raise WeakSignature("the signature must cover @method")
    url = target(request)
    query_ok = url.query is None or "@query" in covered
    if not (
        "@target-uri" in covered
        or ("@authority" in covered and "@request-target" in covered)
        or ("@authority" in covered and "@path" in covered and query_ok)
    ):
        raise WeakSignature("the signature must cover @target-uri (or @authority and @path)")
    if (request.method.upper() == "POST" or request.body) and "content-digest" not in covered:
        raise WeakSignature("a POST signature must cover content-digest")
    if "content-digest" in covered:
        value = request.header("content-digest")
        if value is None:
            raise SignatureInvalid("covered field 'content-digest' is absent")
        verify_content_digest(value, request.body)


def verify_signature(
    sig: MessageSignature, request: Request, key: PublicKey, *, algorithm: str | None = None
) -> str:
    """Check the cryptographic signature only; return the algorithm used.

    ``algorithm`` is the algorithm the key is bound to, when known out of band
    (RFC 9421 section 3.2 lets key material fix it); otherwise the ``alg``
    parameter or, failing that, the key type decides. Raises
    :class:`SignatureInvalid` (or a subclass).
    """
    if algorithm is not None and sig.algorithm is not None and algorithm != sig.algorithm:
        raise UnsupportedSignature(f"alg {sig.algorithm!r} does not fit this key ({algorithm})")
    algorithm = algorithm or sig.algorithm or _algorithms.default_algorithm(key)
    base = wire_bytes(signature_base(sig, request))
    if not _algorithms.verify(algorithm, key, sig.signature, base):
        raise SignatureInvalid("signature does not match")
    return algorithm


def verify(
    sig: MessageSignature, request: Request, key: PublicKey, *, now: datetime | float
) -> str:
    """:func:`check` then :func:`verify_signature`; returns the algorithm used."""
    check(sig, request, now=now)
    return verify_signature(sig, request, key)


def _digest_ok(request: Request) -> bool:
    value = request.header("content-digest")
    if value is None:
        return False
    try:
        verify_content_digest(value, request.body)
    except SignatureError:
        return False
    return True


def sign(
    request: Request,
    key_id: str,
    private_key: PrivateKey,
    *,
    now: datetime | float,
    components: Sequence[str | Component] | None = None,
    label: str = "sig1",
    algorithm: str | None = None,
    include_alg: bool = True,
    expires_in: int | None = None,
    nonce: str | None = None,
    tag: str | None = None,
) -> dict[str, str]:
    """Sign ``request``; return the headers to set on it (``Signature-Input``,
    ``Signature``, and ``Content-Digest`` when covered).

    By default covers ``@method @target-uri``, plus ``content-digest`` and
    ``content-type`` (when present) for a POST or a request with a body: what
    Mastodon 4.5 requires. ``algorithm`` defaults to the key's
    (``rsa-v1_5-sha256`` or ``ed25519``) and is written as ``alg`` unless
    ``include_alg`` is false. When ``content-digest`` is covered, an existing
    ``Content-Digest`` that matches the body is kept, otherwise a SHA-256 one is set.
    """
    algorithm = algorithm or _algorithms.default_algorithm(private_key)
    if components is None:
        chosen = [Component("@method"), Component("@target-uri")]
        if request.method.upper() == "POST" or request.body:
            chosen.append(Component("content-digest"))
            if "content-type" in request.headers:
                chosen.append(Component("content-type"))
    else:
        chosen = [c if isinstance(c, Component) else Component(c) for c in components]
    added: dict[str, str] = {}
    if any(c.name == "content-digest" for c in chosen) and not _digest_ok(request):
        added["Content-Digest"] = content_digest_header(request.body)
    created = int(timestamp(now))
    # The parameter order of the RFC's examples: created, keyid, alg, expires, nonce, tag.
    params: dict[str, BareItem] = {"created": created, "keyid": key_id}
    if include_alg:
        params["alg"] = algorithm
    if expires_in is not None:
        params["expires"] = created + expires_in
    if nonce is not None:
        params["nonce"] = nonce
    if tag is not None:
        params["tag"] = tag
    items: list[Item] = [(c.name, dict(c.params)) for c in chosen]
    inner = (items, params)
    signature_params = serialize_member(inner)
    sig = MessageSignature(
        label=label,
        key_id=key_id,
        components=tuple(chosen),
        signature=b"",
        signature_params=signature_params,
        created=created,
        expires=created + expires_in if expires_in is not None else None,
        algorithm=algorithm if include_alg else None,
        nonce=nonce,
        tag=tag,
    )
    try:
        base = signature_base(sig, request.with_headers(added))
        raw = _algorithms.sign(algorithm, private_key, wire_bytes(base))
    except SignatureError as exc:  # a component or algorithm the caller asked for is wrong
        raise ValueError(str(exc)) from exc
    added["Signature-Input"] = http_sf.ser({label: inner})
    added["Signature"] = http_sf.ser({label: (raw, {})})
    return added
