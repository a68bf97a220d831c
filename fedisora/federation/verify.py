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
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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

T = TypeVar("T")

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

    async def check(key: Any) -> None:
        integrity.verify(payload, key)

    account, _ = await _by_actor_key(
        fed, method, actor_id, what="the proof", key_type=ed25519.Ed25519PublicKey, check=check
    )
    return account


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
    creator = ld_signatures.parse(payload).creator

    async def check(key: Any) -> dict[str, Any]:
        return await asyncio.to_thread(ld_signatures.verify, payload, key)

    return await _by_actor_key(
        fed, creator, actor_id, what="the signature", key_type=rsa.RSAPublicKey, check=check
    )


async def _by_actor_key(
    fed: Federation,
    key_id: str,
    actor_id: str,
    *,
    what: str,
    key_type: type,
    check: Callable[[Any], Awaitable[T]],
) -> tuple[Account, T]:
    """(the actor, what *check* made of its key) for *key_id*, a key of *actor_id*'s own
    document of *key_type*: fetched when not cached, and when *check* fails with the cached
    key, fetched once more (a rotated key). *what* names the proof in the reasons."""
    if objects.id_of(key_id.split("#", 1)[0]) != actor_id:
        raise InvalidProof(f"{what}'s key {key_id[:200]} is not the actor's ({actor_id})")
    kind = "an Ed25519" if key_type is ed25519.Ed25519PublicKey else "an RSA"
    last: ProofError | None = None
    for refresh in (False, True):
        try:
            found = await key_for(fed, key_id, refresh=refresh)
        except ActorError as exc:
            log.info("cannot get %s key %s: %s", what.removeprefix("the "), key_id, exc)
            raise InvalidProof(f"{what}'s key could not be fetched") from exc
        if found is None:
            if last is not None:
                raise last
            raise InvalidProof(f"the actor lists no key {key_id[:200]}")
        account, key = found
        if account.uri != actor_id or not isinstance(key, key_type):
            raise InvalidProof(f"{key_id[:200]} is not {kind} key of the actor")
        try:
            return account, await check(key)
        except ProofError as exc:
            last = exc
    assert last is not None
    raise last
