"""Verifying signed requests against remote actors' keys (with one refetch for rotation).

Keys are kept in the process's :class:`~fedisora.federation.context.Federation` (a
:class:`~fedisora.federation.keycache.KeyCache`) for a minute after a database lookup, so a
busy peer's POSTs do not each cost a query. A key that fails to verify is refetched
(rotation) and replaces the cached one. An actor suspended or deleted meanwhile may get a
request past this check for at most that long; processing reads the account again and
ignores it then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from starlette.requests import Request as HttpRequest

from activitypub import integrity, ld_signatures, objects
from activitypub.errors import (
    InvalidProof,
    ProofError,
    SignatureInvalid,
    UnknownKey,
    UnsupportedSignature,
)
from activitypub.signatures import Request, parse_signature, precheck, verify_prechecked
from activitypub.signatures.request import Headers
from fedisora.federation.actors import ActorError, key_for
from fedisora.federation.context import Federation
from fedisora.models import Account

__all__ = [
    "UNKNOWN_KEY",
    "signed_request",
    "verify_ld_signature_of",
    "verify_proof_of",
    "verify_signer",
]

log = logging.getLogger("fedisora.federation")

UNKNOWN_KEY = "the signing key could not be fetched, or is not usable"
"""The one text of every :class:`UnknownKey` raised here, whatever the fetch met."""


def signed_request(
    fed: Federation, request: HttpRequest, body: bytes, headers: Headers | None = None
) -> Request:
    """The request as the sender signed it: our public URL, the raw header lines, the body.

    The URL is our public base URL followed by the path and query exactly as Starlette's
    ``request.url`` gives them (made here from the ASGI scope: building the whole URL object
    cost more than the rest of this function). *headers*: the request's, if already read."""
    scope = request.scope
    url = fed.settings.base_url + scope["path"].replace("?", "%3F").replace("#", "%23").replace(
        "\\", "%5C"
    )
    query = scope.get("query_string", b"")
    if query:
        url += "?" + query.decode()
    if headers is None:
        headers = Headers.from_wire(scope["headers"])
    return Request(request.method, url, headers, body)


async def verify_signer(fed: Federation, request: Request) -> Account:
    """The account whose key signed *request*.

    Raises a :class:`~activitypub.errors.SignatureError` (``http_status`` 400 or 401) whose
    text tells the sender about its request only: how a key fetch failed is logged, not
    raised (the text of an :class:`UnknownKey` is :data:`UNKNOWN_KEY`). Checks that need no
    key run before any fetch; a signature that fails with the cached key is
    tried once more with a refetched key (the peer may have rotated it).
    """
    now = time.time()
    parsed = parse_signature(request)
    precheck(parsed, request, now=now)
    found = fed.keys.get(parsed.key_id)
    if found is None:
        try:
            found = await key_for(fed, parsed.key_id)
        except ActorError as exc:
            # What the fetch met (a DNS answer, a refused address, a peer's error) is ours
            # to log, never the sender's to read: the error's text is the answer's body.
            log.info("cannot get key %s: %s", parsed.key_id, exc)
            raise UnknownKey(UNKNOWN_KEY) from exc
        if found is None:
            log.info("no usable key %s", parsed.key_id)
            raise UnknownKey(UNKNOWN_KEY)
        fed.keys.put(parsed.key_id, found)
    account, key = found
    try:
        verify_prechecked(parsed, request, key)
        return account
    except (SignatureInvalid, UnsupportedSignature) as exc:
        if type(exc) not in (SignatureInvalid, UnsupportedSignature):
            raise
        first_error = exc
    try:
        refreshed = await key_for(fed, parsed.key_id, refresh=True)
    except ActorError as exc:
        raise first_error from exc
    if refreshed is None:
        raise first_error
    fed.keys.put(parsed.key_id, refreshed)
    account, key = refreshed
    verify_prechecked(parsed, request, key)
    log.info("key of %s was rotated; verified with the refetched key", account.uri)
    return account


async def verify_proof_of(fed: Federation, payload: dict[str, Any], actor_id: str) -> Account:
    """The actor *actor_id*, when *payload* carries a valid FEP-8b32 proof (a
    ``DataIntegrityProof``, ``eddsa-jcs-2022``) made with one of its keys.

    The proof's ``verificationMethod`` must be a key of the actor's own document (its FEP-521a
    ``assertionMethod`` Multikey, as :func:`~fedisora.federation.actors.key_for` reads
    it), fetched when not cached; a proof that fails with the cached key is tried once more
    with the actor fetched again (a rotated key). Raises :class:`ProofError` with the reason
    (a key of someone else, no such key, an unknown cryptosuite, a tampered activity, a
    ``created`` far in the future...)."""
    proof = payload.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str) or not method:
        raise InvalidProof("the proof names no verificationMethod")
    if objects.id_of(method.split("#", 1)[0]) != actor_id:
        raise InvalidProof(f"the proof's key {method[:200]} is not the actor's ({actor_id})")
    last: ProofError | None = None
    for refresh in (False, True):
        try:
            found = await key_for(fed, method, refresh=refresh)
        except ActorError as exc:
            log.info("cannot get proof key %s: %s", method, exc)
            raise InvalidProof("the proof's key could not be fetched") from exc
        if found is None:
            if last is not None:
                raise last
            raise InvalidProof(f"the actor lists no key {method[:200]}")
        account, key = found
        if account.uri != actor_id or not isinstance(key, ed25519.Ed25519PublicKey):
            raise InvalidProof(f"{method[:200]} is not an Ed25519 key of the actor")
        try:
            integrity.verify(payload, key)
        except ProofError as exc:
            last = exc
            continue
        return account
    assert last is not None
    raise last


async def verify_ld_signature_of(
    fed: Federation, payload: dict[str, Any], actor_id: str
) -> tuple[Account, dict[str, Any]]:
    """The actor *actor_id* and the part of *payload* it signed, when *payload* carries a
    valid ``RsaSignature2017`` Linked Data signature by one of its keys (Mastodon's, on the
    activities it forwards: :mod:`activitypub.ld_signatures`).

    The signature's ``creator`` must be a key of the actor's own document (its RSA
    ``publicKey``), fetched when not cached; a signature that fails with the cached key is
    tried once more with the actor fetched again (a rotated key). The canonicalisation runs
    in a worker thread. The payload returned lacks the members no JSON-LD context defines (no
    signature covers them). Raises :class:`ProofError` with the reason (an unknown signature
    type, a key of someone else, a modified activity, a context not bundled here...)."""
    parsed = ld_signatures.parse(payload)
    creator = parsed.creator
    if objects.id_of(creator.split("#", 1)[0]) != actor_id:
        raise InvalidProof(f"the signature's key {creator[:200]} is not the actor's ({actor_id})")
    last: ProofError | None = None
    for refresh in (False, True):
        try:
            found = await key_for(fed, creator, refresh=refresh)
        except ActorError as exc:
            log.info("cannot get signature key %s: %s", creator, exc)
            raise InvalidProof("the signature's key could not be fetched") from exc
        if found is None:
            if last is not None:
                raise last
            raise InvalidProof(f"the actor lists no key {creator[:200]}")
        account, key = found
        if account.uri != actor_id or not isinstance(key, rsa.RSAPublicKey):
            raise InvalidProof(f"{creator[:200]} is not an RSA key of the actor")
        try:
            signed = await asyncio.to_thread(ld_signatures.verify, payload, key)
        except ProofError as exc:
            last = exc
            continue
        return account, signed
    assert last is not None
    raise last
