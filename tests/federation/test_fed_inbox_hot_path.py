"""The inbox's hot path: the routing shortcut, the key cache and what they may and may not skip."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from factories import local_account
from fedhelpers import DOMAIN, make_remote
from test_fed_inbox import follow_activity, post, process_all

from activitypub import keys
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.keycache import KeyCache, TimedCache
from fedisora.models import Account, InboxItem, utcnow


def test_timed_cache_expires_and_evicts_the_oldest() -> None:
    clock = [100.0]
    cache: TimedCache[str, int] = TimedCache(seconds=10, size=2, clock=lambda: clock[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert (cache.get("a"), cache.get("b")) == (1, 2)
    cache.put("c", 3)  # full: "a" (the oldest) goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    cache.put("d", 4, seconds=60)  # a lifetime of its own
    clock[0] += 10.5
    assert cache.get("c") is None and cache.get("d") == 4
    assert len(cache) == 1  # expired entries are dropped on read


async def test_key_cache_forgets_an_owner(db: str) -> None:
    rita, rob = await make_remote("rita"), await make_remote("rob")
    key = keys.generate_rsa_key().public_key()
    cache = KeyCache()
    cache.put(f"{rita.uri}#main-key", (rita.account, key))
    cache.put(f"{rita.uri}#ed25519", (rita.account, key))
    cache.put(f"{rob.uri}#main-key", (rob.account, key))
    cache.forget(rita.uri)
    assert cache.get(f"{rita.uri}#main-key") is None and cache.get(f"{rita.uri}#ed25519") is None
    assert cache.get(f"{rob.uri}#main-key") is not None


async def test_a_cached_key_spares_the_lookup_and_processing_still_checks_the_actor(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    assert (await post(client, rita, follow_activity(rita, ann, 1))).status_code == 202
    assert federation.keys.get(f"{rita.uri}#main-key") is not None

    # Suspended here by an admin while the key is cached: the door may still take a POST for
    # up to the cache's lifetime, but it is never acted on.
    await Account.filter(pk=rita.account.pk).update(suspended_at=utcnow())
    assert (await post(client, rita, follow_activity(rita, ann, 2))).status_code == 202
    items = {i.activity_id: i for i in await process_all(settings)}
    late = items[follow_activity(rita, ann, 2)["id"]]
    assert late.state == "ignored" and "suspended" in late.last_error

    # Once the cache has the suspension, the door takes the POST (202, so that the peer does
    # not retry) and drops it.
    federation.keys.forget(rita.uri)
    assert (await post(client, rita, follow_activity(rita, ann, 3))).status_code == 202
    assert not await InboxItem.filter(activity_id=follow_activity(rita, ann, 3)["id"]).exists()

    # Unsuspended while the cache still has the suspension: the door reads the row again
    # before it drops anything, so nothing is lost.
    await Account.filter(pk=rita.account.pk).update(suspended_at=None)
    assert (await post(client, rita, follow_activity(rita, ann, 4))).status_code == 202
    items = {i.activity_id: i for i in await process_all(settings)}
    assert items[follow_activity(rita, ann, 4)["id"]].state == "processed"


async def test_the_shortcut_takes_only_inbox_posts(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    await local_account("ann")
    rita = await make_remote()
    base = f"https://{DOMAIN}"
    # Not POST: the router answers (the collections route, which has no "inbox").
    got = await client.get("/users/ann/inbox")
    assert (got.status_code, got.json()) == (404, {"error": "not found"})
    # Paths that only look like inboxes are routed normally (and found nowhere).
    for path in ("/users/ann/inbox/x", "/users/ann/extra/inbox", "/inboxes"):
        body, headers = rita.signed(base + path, {"id": f"{rita.uri}#x", "type": "Like"})
        assert (await client.post(path, content=body, headers=headers)).status_code in (404, 405)
    # A local account created after its inbox was refused is reachable at once.
    body, headers = rita.signed(base + "/users/newbie/inbox", {"id": f"{rita.uri}#y"})
    assert (
        await client.post("/users/newbie/inbox", content=body, headers=headers)
    ).status_code == 404
    newbie = await local_account("newbie")
    r = await post(client, rita, follow_activity(rita, newbie, 9), url=f"{base}/users/newbie/inbox")
    assert r.status_code == 202
    assert await InboxItem.filter(activity_id=follow_activity(rita, newbie, 9)["id"]).exists()


async def test_a_body_sent_in_chunks_is_read_whole_and_capped(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    """The inbox reads the ASGI channel itself: a chunked body (no Content-Length) arrives in
    several messages, is put together before the signature check, and is refused with 413
    once it grows past the limit, whatever it declared."""
    from fedisora.federation.routes import MAX_INBOX_BYTES

    ann = await local_account("ann")
    rita = await make_remote()
    activity = follow_activity(rita, ann)
    body, headers = rita.signed(f"https://{DOMAIN}/inbox", activity)
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}

    async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    r = await client.post("/inbox", content=pieces(body, 7), headers=headers)
    assert r.status_code == 202, r.text
    assert await InboxItem.filter(activity_id=activity["id"]).count() == 1

    huge = b"x" * (MAX_INBOX_BYTES + 10)
    r = await client.post("/inbox", content=pieces(huge, 64 * 1024), headers=headers)
    assert r.status_code == 413
    assert "error" in r.json()
