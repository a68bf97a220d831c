"""Remote actors: fetching, caching as :class:`~fedisora.models.Account` rows, key lookup.

Fetches are signed GETs by the instance actor (peers with authorized fetch require them).
A cached key is refetched when a signature fails to verify with it (key rotation), at most
once per :data:`REFETCH_INTERVAL` per actor, so forged requests cannot make us hammer a peer.

Every stored document, fetched or received in an ``Update``, also sets or lifts the actor's
suspension by its own server (Mastodon's ``suspended``, kept in ``origin_suspended_at``);
a suspension by this instance's moderators (``suspended_at``) is theirs alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from activitypub import objects
from activitypub.errors import KeyFormatError
from activitypub.keys import PublicKey, load_public_key_pem, public_key_from_multibase
from fedisora.federation.context import Federation
from fedisora.federation.http import FetchError
from fedisora.models import Account, ActorType, utcnow
from fedisora.services.entity_versions import bump_mentioning
from fedisora.services.text import clean_name

__all__ = [
    "REFETCH_INTERVAL",
    "ActorError",
    "domain_of",
    "fetch_actor",
    "key_for",
    "refetch_unsuspended",
    "resolve_acct",
    "store_actor",
]

log = logging.getLogger("fedisora.federation")

REFETCH_INTERVAL = timedelta(seconds=60)
CACHE_TTL = timedelta(days=1)


class ActorError(Exception):
    """A remote actor could not be fetched or is not acceptable."""


def domain_of(uri: str) -> str:
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def _local_domain(fed: Federation) -> str:
    return fed.settings.domain


async def store_actor(doc: dict[str, Any], fetched_from: str) -> Account:
    """Create or update the Account for an actor document fetched from *fetched_from*."""
    try:
        parsed = objects.parse_actor(doc)
    except objects.InvalidObject as exc:
        raise ActorError(f"{fetched_from}: {exc}") from exc
    if not objects.same_origin(parsed.id, fetched_from):
        raise ActorError(f"{fetched_from} served an actor of another origin ({parsed.id})")
    for url in (parsed.inbox, parsed.shared_inbox, parsed.public_key_id):
        if url and not objects.same_origin(url, parsed.id):
            raise ActorError(f"actor {parsed.id} points at another origin: {url}")
    if clean_name(parsed.username) != parsed.username:
        # An invisible or reordering character in a name others must tell apart ("admin"
        # and "ad\u200bmin"): refused, as Mastodon refuses usernames outside its pattern.
        raise ActorError(f"{parsed.id}: its preferredUsername holds invisible characters")
    domain = domain_of(parsed.id)
    values: dict[str, Any] = {
        "username": parsed.username,
        "domain": domain,
        "actor_type": ActorType(parsed.type),
        "display_name": clean_name(parsed.name),
        "note": objects.html_to_text(parsed.summary_html)[:5000],
        "url": parsed.url,
        "inbox_uri": parsed.inbox,
        "shared_inbox_uri": parsed.shared_inbox,
        "outbox_uri": parsed.outbox,
        "followers_uri": parsed.followers,
        "following_uri": parsed.following,
        "featured_uri": parsed.featured,
        "avatar_url": parsed.icon_url,
        "header_url": parsed.image_url,
        "public_key_id": parsed.public_key_id,
        "public_key_pem": parsed.public_key_pem,
        "ed25519_public_multibase": parsed.ed25519_multibase,
        "locked": parsed.manually_approves_followers,
        "discoverable": parsed.discoverable,
        "indexable": parsed.indexable,
        "also_known_as": list(parsed.also_known_as),
        "fetched_at": utcnow(),
    }
    if parsed.moved_to is None:
        values["moved_to_id"] = None  # a move undone (Mastodon clears it the same way)
    account = await Account.get_or_none(uri=parsed.id)
    if account is None:
        account = await Account.get_or_none(username=parsed.username, domain=domain)
    if account is not None:
        if account.local:
            raise ActorError(f"{parsed.id} claims to be a local account")
        _origin_suspension(account, parsed, values)
        shown = (account.username, account.domain, account.url, account.uri)
        async with in_transaction() as conn:
            await Account.filter(pk=account.pk).using_db(conn).update(uri=parsed.id, **values)
            if shown != (parsed.username, domain, parsed.url, parsed.id):
                # Mentions of it show these: the cached entities of what mentions it go.
                await bump_mentioning(account.pk, conn)
        return await Account.get(pk=account.pk)
    values["origin_suspended_at"] = utcnow() if parsed.suspended else None
    try:
        return await Account.create(uri=parsed.id, **values)
    except IntegrityError:  # a concurrent fetch stored it first
        return await Account.get(uri=parsed.id)


#: What a suspended actor's document blanks (Mastodon's): the stored profile is kept instead.
_PROFILE = (
    "display_name",
    "note",
    "avatar_url",
    "header_url",
    "locked",
    "discoverable",
    "indexable",
)


def _origin_suspension(
    account: Account, parsed: objects.ParsedActor, values: dict[str, Any]
) -> None:
    """Follow the actor's own ``suspended`` flag (Mastodon's ``toot:suspended``) in
    ``origin_suspended_at``, whether it came in an ``Update`` or a fetch. A local moderator's
    ``suspended_at`` is never touched: the origin lifting its suspension lifts only its own."""
    if parsed.suspended:
        for name in _PROFILE:
            values.pop(name, None)
        values["origin_suspended_at"] = account.origin_suspended_at or utcnow()
        if account.origin_suspended_at is None:
            log.info("%s is suspended by its server", parsed.id)
    else:
        values["origin_suspended_at"] = None
        if account.origin_suspended_at is not None:
            log.info("%s is no longer suspended by its server", parsed.id)


async def fetch_actor(fed: Federation, uri: str, *, refresh: bool = False) -> Account:
    """The Account for actor *uri*: from the cache, or fetched (signed) and stored."""
    uri = uri.split("#", 1)[0]
    if objects.id_of(uri) is None:  # over-long, or holding a NUL: no row can have it
        raise ActorError(f"{uri[:100]}... cannot be an actor's id")
    account = await Account.get_or_none(uri=uri)
    if account is not None:
        if account.local:
            return account
        fresh = account.fetched_at is not None and utcnow() - account.fetched_at < CACHE_TTL
        if fresh and not refresh:
            return account
    if domain_of(uri) == _local_domain(fed):
        raise ActorError(f"no local actor {uri}")
    try:
        final, doc = await fed.client.get_json(uri, auth=await fed.instance_auth())
    except FetchError as exc:
        if account is not None and not refresh:
            return account  # a stale cache beats nothing when the peer is down
        raise ActorError(f"cannot fetch actor {uri}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ActorError(f"{uri} is not a JSON object")
    return await store_actor(doc, final)


async def refetch_unsuspended(fed: Federation, account: Account) -> Account | None:
    """The remote *account*, just unsuspended here, fetched again from its server (which may
    have changed it while the suspension refused its activities); None when that fails now,
    which is logged: it stays marked for a refetch on its next use."""
    try:
        return await fetch_actor(fed, account.uri, refresh=True)
    except ActorError as exc:
        log.info("could not refetch %s after unsuspending it: %s", account.uri, exc)
        return None


async def _fetch_key_owner(fed: Federation, key_id: str) -> Account:
    base = key_id.split("#", 1)[0]
    try:
        final, doc = await fed.client.get_json(base, auth=await fed.instance_auth())
    except FetchError as exc:
        raise ActorError(f"cannot fetch key {key_id}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ActorError(f"{key_id} is not a JSON object")
    if doc.get("type") in ("Person", "Service", "Group", "Application", "Organization"):
        return await store_actor(doc, final)
    owner = doc.get("owner") or doc.get("controller")  # a standalone key document (GoToSocial)
    if not isinstance(owner, str) or not objects.same_origin(owner, key_id):
        raise ActorError(f"key {key_id} has no owner of its origin")
    return await fetch_actor(fed, owner, refresh=True)


def _key_of(account: Account, key_id: str) -> PublicKey | None:
    """The actor's key named *key_id*: its RSA ``publicKey``, or its FEP-521a Ed25519
    Multikey (any other fragment of the actor's own URI: RFC 9421 signers may use it)."""
    base, _, fragment = key_id.partition("#")
    try:
        if account.public_key_id == key_id or (
            account.public_key_id is None and account.uri == key_id
        ):
            return load_public_key_pem(account.public_key_pem) if account.public_key_pem else None
        if fragment and base == account.uri and account.ed25519_public_multibase:
            return public_key_from_multibase(account.ed25519_public_multibase)
    except KeyFormatError:
        log.warning("actor %s publishes an unusable key", account.uri)
    return None


async def key_for(
    fed: Federation, key_id: str, *, refresh: bool = False
) -> tuple[Account, PublicKey] | None:
    """The owner and public key for *key_id*, or None if there is none.

    With *refresh*, the owner is refetched (unless it was fetched moments ago): called
    after a signature failed to verify with the cached key.
    """
    account = await Account.get_or_none(public_key_id=key_id)
    if account is None:
        account = await Account.get_or_none(uri=key_id.split("#", 1)[0])
    if account is not None and account.local:
        refresh = False
    if account is not None and refresh:
        recently = (
            account.fetched_at is not None and utcnow() - account.fetched_at < REFETCH_INTERVAL
        )
        if recently:
            return None
        account = await fetch_actor(fed, account.uri, refresh=True)
    elif account is None:
        if domain_of(key_id) == _local_domain(fed):
            return None
        account = await _fetch_key_owner(fed, key_id)
    key = _key_of(account, key_id)
    return None if key is None else (account, key)


async def resolve_acct(fed: Federation, acct: str) -> Account:
    """``user@domain`` -> Account, through WebFinger (local accounts without a fetch)."""
    acct = acct.removeprefix("acct:").lstrip("@")
    username, _, domain = acct.partition("@")
    if not username:
        raise ActorError(f"{acct!r} is not user@domain")
    domain = domain.lower()
    if not domain or domain == _local_domain(fed):
        account = await Account.get_or_none(username__iexact=username, domain=None)
        if account is None:
            raise ActorError(f"no local account {username!r}")
        return account
    existing = await Account.get_or_none(username__iexact=username, domain=domain)
    if existing is not None and existing.fetched_at is not None:
        if utcnow() - existing.fetched_at < CACHE_TTL:
            return existing
    scheme = "http" if fed.settings.insecure_http else "https"
    url = f"{scheme}://{domain}/.well-known/webfinger?resource=acct:{username}@{domain}"
    try:
        _, jrd = await fed.client.get_json(url, accept="application/jrd+json, application/json")
    except FetchError as exc:
        raise ActorError(f"WebFinger for {acct} failed: {exc}") from exc
    links = jrd.get("links") if isinstance(jrd, dict) else None
    for link in links if isinstance(links, list) else []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("href"), str)
            and str(link.get("type", "")).startswith(
                ("application/activity+json", "application/ld+json")
            )
        ):
            return await fetch_actor(fed, link["href"], refresh=True)
    raise ActorError(f"WebFinger for {acct} has no ActivityPub actor link")
