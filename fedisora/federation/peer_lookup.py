"""A lookup that finds nothing here asks the peers whose clips' fingerprints it holds.

Fingerprints of public clips federate with the clip (:mod:`fedisora.services.fingerprints`),
so a copy of a clip made elsewhere is usually named here. When it is not (the clip was
never received here, or only its first seconds were), :func:`ask_peers` sends the copy's
fingerprint, not the copy, to the lookup endpoint of the instances those fingerprints came
from: at most :data:`PEERS_ASKED` of them (those that sent the most fingerprints first), at
once, each within :data:`PEER_TIMEOUT` seconds, through the one peer client (the SSRF guard,
the instance's domain blocks). The peer compares it with what it knows, without asking its own
peers in turn (its answer is local: no loops, no fan-out). Answers are merged, best first,
each match marked ``via`` the instance that answered; a peer that is down, slow or answers
nonsense is left out (logged), never an error for the one who asked.

Only the fingerprint goes out (about 50 KB of PDQ hashes of the copy's first 12 seconds): the
file stays here, and a peer cannot read a watermark from hashes (its own clips' marks are
read with its own key), so a peer names its clips by their fingerprints.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any
from urllib.parse import urlsplit

from tortoise.functions import Count

from fedisora.config import Settings
from fedisora.federation.keycache import TimedCache
from fedisora.models import Account, Clip, Fingerprint

__all__ = ["PEERS_ASKED", "PEER_TIMEOUT", "ask_peers", "peer_bases"]

log = logging.getLogger("fedisora.fingerprints")

PEERS_ASKED = 4
"""Instances asked at most, for one lookup that found nothing here."""
PEER_TIMEOUT = 5.0
"""Seconds each peer has to answer (all are asked at once)."""
_PROVENANCE = {"trusted", "verified", "valid", "unverified", "invalid", "unknown"}


PEERS_TTL = 600.0
"""Seconds the list of peers to ask is kept (per process): finding it counts the remote
fingerprints by domain, which reads them all."""
_peers: TimedCache[tuple[str, int], list[tuple[str, str]]] = TimedCache(PEERS_TTL, 8)


async def peer_bases(settings: Settings, limit: int = PEERS_ASKED) -> list[tuple[str, str]]:
    """(domain, base URL) of the instances this one holds the most fingerprints from, at most
    *limit*; the base (scheme and host) is that of one of their actors' ids. Kept
    :data:`PEERS_TTL` seconds."""
    key = (settings.database_url, limit)
    cached = _peers.get(key)
    if cached is None:
        cached = await _peer_bases(limit)
        _peers.put(key, cached, seconds=None if cached else 30.0)  # none yet: look soon
    return cached


async def _peer_bases(limit: int) -> list[tuple[str, str]]:
    rows = (
        await Fingerprint.filter(origin="remote", state="done", clip__account__domain__isnull=False)
        .annotate(n=Count("id"))
        .group_by("clip__account__domain")
        .order_by("-n", "clip__account__domain")
        .limit(limit)
        .values_list("clip__account__domain", "n")
    )
    found = []
    for domain, _n in rows:
        actor = await Account.filter(domain=domain).order_by("id").first().only("uri")
        if actor is None:
            continue
        parts = urlsplit(actor.uri)
        if parts.scheme in ("http", "https") and parts.netloc:
            found.append((str(domain), f"{parts.scheme}://{parts.netloc}"))
    return found


def _text(value: Any, limit: int = 2048) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _url(value: Any) -> str | None:
    text = _text(value)
    if text is None or urlsplit(text).scheme not in ("http", "https"):
        return None
    return text


async def _parse(domain: str, body: bytes) -> list[Any]:
    """The peer's matches as ours (marked ``via`` *domain*); malformed entries are dropped."""
    from fedisora.services.fingerprints import Match

    data = json.loads(body)
    items = data.get("matches") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("no list of matches")
    matches = []
    for item in items[:20]:
        if not isinstance(item, dict):
            continue
        uri, url = _url(item.get("uri")), _url(item.get("url"))
        instance, author = _text(item.get("instance"), 255), _text(item.get("author"), 320)
        score = item.get("score")
        if (
            uri is None
            or instance is None
            or author is None
            or isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            continue
        provenance = item.get("provenance")
        known = await Clip.get_or_none(uri=uri, deleted_at=None).only("id")
        matches.append(
            Match(
                url=url or uri,
                uri=uri,
                status_id=str(known.pk) if known is not None else None,
                instance=instance,
                author=author,
                provenance=provenance if provenance in _PROVENANCE else "unknown",
                score=round(min(1.0, max(0.0, float(score))), 4),
                via=domain,
            )
        )
    return matches


async def _ask(client: Any, domain: str, base: str, body: bytes, seconds: float) -> list[Any]:
    from fedisora.api.provenance import LOOKUP_PATH
    from fedisora.federation.http import FetchError

    url = f"{base}{LOOKUP_PATH}"
    try:
        async with asyncio.timeout(seconds):
            response, answer = await client.request(
                "POST",
                url,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                content=body,
            )
        if response.status_code != 200:
            raise ValueError(f"answered {response.status_code}")
        return await _parse(domain, answer)
    except (TimeoutError, FetchError, ValueError) as exc:
        log.info("lookup: %s did not answer usefully: %s", domain, exc)
        return []


async def ask_peers(
    query: Any,
    settings: Settings,
    *,
    limit: int = 10,
    peers: int = PEERS_ASKED,
    seconds: float = PEER_TIMEOUT,
) -> list[Any]:
    """The matches the peers name for *query* (a :class:`render.fingerprint.QueryPrint`),
    best first, at most *limit*; empty when none is asked or none knows it."""
    from fedisora.federation.context import get_federation
    from render.fingerprint import query_to_json

    bases = [(d, b) for d, b in await peer_bases(settings, peers) if d != settings.domain]
    if not bases:
        return []
    body = json.dumps({"fingerprint": query_to_json(query)}).encode()
    client = get_federation(settings).client
    answers = await asyncio.gather(*(_ask(client, d, b, body, seconds) for d, b in bases))
    merged: dict[str, Any] = {}
    for match in (m for answer in answers for m in answer):
        if match.uri not in merged or match.score > merged[match.uri].score:
            merged[match.uri] = match
    return sorted(merged.values(), key=lambda m: (-m.score, m.via or ""))[:limit]
