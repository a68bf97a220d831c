"""Inbox limits and retention through real signed POSTs to the inbox: an actor, or a host,
cannot hold more than its caps (429, retried by peers), held payloads are freed by retention,
and a redelivered activity is recognised as long as its row is kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from chores import Clock, engine_for, run_chore
from factories import local_account
from fedhelpers import DOMAIN, RemoteActor, make_remote

from fedisora.config import Settings, load_settings
from fedisora.federation import inbox_limits
from fedisora.federation.context import Federation
from fedisora.federation.inbox_limits import Caps, InboxLimits, limits_for
from fedisora.federation.routes import MAX_INBOX_BYTES
from fedisora.models import InboxItem, WorkTally
from fedisora.work import Engine
from fedisora.work.housekeeping import ensure_chores

INBOX = f"https://{DOMAIN}/inbox"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_REGISTRATIONS": "closed",
            "FEDISORA_INBOX_ACTOR_MAX_ITEMS": "3",
            "FEDISORA_INBOX_HOST_MAX_ITEMS": "5",
            "FEDISORA_INBOX_ACTOR_MAX_MB": "2",
            "FEDISORA_INBOX_HOST_MAX_MB": "64",
        }
    )


@pytest.fixture
def limits(federation: Federation, settings: Settings) -> InboxLimits:
    limits = limits_for(federation, settings)
    limits.recheck = 0.0  # count again at once (the default waits a second between counts)
    return limits


async def post(client: httpx.AsyncClient, actor: RemoteActor, activity: Any) -> httpx.Response:
    body, headers = actor.signed(INBOX, activity)
    return await client.post("/inbox", content=body, headers=headers)


def flag(actor: RemoteActor, n: int, padding: int = 0) -> dict[str, Any]:
    """An activity type this instance does not handle (Listen): ignored when processed."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{actor.uri}#flags/{n}",
        "type": "Listen",
        "actor": actor.uri,
        "object": f"https://{DOMAIN}/users/ann",
        "content": "x" * padding,
    }


async def process(engine: Engine) -> None:
    for row in await InboxItem.filter(state="received").order_by("id"):
        await engine.advance("inbox_items", row.pk)


async def test_an_actor_and_a_host_cannot_hold_more_than_their_caps(
    client: httpx.AsyncClient, settings: Settings, limits: InboxLimits
) -> None:
    await local_account("ann")
    rita, mallory = await make_remote("rita"), await make_remote("mallory")
    other = await make_remote("olga", domain="other.example")
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()

    assert [(await post(client, rita, flag(rita, n))).status_code for n in range(3)] == [202] * 3
    refused = await post(client, rita, flag(rita, 3))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(inbox_limits.RETRY_AFTER)
    assert "retry later" in refused.json()["error"]
    # The host's cap (5) is shared by its actors; another host has a budget of its own.
    assert [(await post(client, mallory, flag(mallory, n))).status_code for n in range(3)] == [
        202,
        202,
        429,
    ]
    assert (await post(client, other, flag(other, 0))).status_code == 202
    assert await InboxItem.all().count() == 6  # nothing stored for a refused POST

    # Processed (ignored) but still held: the payload is kept for a while yet.
    await process(engine)
    assert await InboxItem.filter(state="ignored").count() == 6
    assert (await post(client, rita, flag(rita, 3))).status_code == 429

    clock.passed = timedelta(minutes=11)  # RETAIN_INBOX_IGNORED_MINUTES (10)
    await run_chore(engine, "work_retention")
    assert await InboxItem.filter(size__gt=0).count() == 0
    assert (await post(client, rita, flag(rita, 3))).status_code == 202  # its budget is back


async def test_a_flood_of_large_ignored_activities_leaves_nothing_behind(
    client: httpx.AsyncClient, settings: Settings, limits: InboxLimits
) -> None:
    """The review's finding: 0.9 MB ``Flag``s from one actor were kept whole, forever."""
    await local_account("ann")
    rita = await make_remote("rita")
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    big = 900_000
    assert len(str(flag(rita, 0, big))) < MAX_INBOX_BYTES  # under the one-activity limit
    statuses = [(await post(client, rita, flag(rita, n, big))).status_code for n in range(6)]
    assert statuses == [202] * 2 + [429] * 4  # 2 MB per actor: two fit, a third does not
    await process(engine)
    held = await InboxItem.all().values_list("size", flat=True)
    assert len(held) == 2 and all(size > big for size in held)

    clock.passed = timedelta(minutes=11)
    await run_chore(engine, "work_retention")
    rows = await InboxItem.all()
    assert [(r.state, r.size, r.payload) for r in rows] == [("ignored", 0, {})] * 2
    assert (await post(client, rita, flag(rita, 9, big))).status_code == 202


async def test_a_redelivery_is_recognised_until_the_dedupe_window_ends(
    client: httpx.AsyncClient, settings: Settings, limits: InboxLimits
) -> None:
    await local_account("ann")
    rita = await make_remote("rita")
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    activity = flag(rita, 1)
    assert (await post(client, rita, activity)).status_code == 202
    await process(engine)

    clock.passed = timedelta(days=6)  # payload long dropped, the row kept
    await run_chore(engine, "work_retention")
    assert (await post(client, rita, activity)).status_code == 202
    [row] = await InboxItem.all()
    assert (row.state, row.size) == ("ignored", 0)  # not stored again, not processed again

    clock.passed = timedelta(days=7, minutes=1)  # INBOX_DEDUPE_DAYS (7)
    await run_chore(engine, "work_retention")
    assert not await InboxItem.exists()
    [tally] = await WorkTally.filter(table_name="inbox_items")
    assert (tally.state, tally.count) == ("ignored", 1)
    assert (await post(client, rita, activity)).status_code == 202  # new to us now
    assert await InboxItem.filter(state="received").count() == 1


async def test_the_database_is_asked_only_near_a_cap(db: str) -> None:
    limits = InboxLimits(Caps(100, 10**9, 10**6, 10**12))
    counted = 0
    original = limits._count

    async def count(host: str, entry: Any) -> None:
        nonlocal counted
        counted += 1
        await original(host, entry)

    limits._count = count  # type: ignore[method-assign]
    for _ in range(50):
        assert await limits.admit("remote.example", "https://remote.example/u/a", 10) is None
    assert counted == 0  # up to half the cap: an estimate, no query
    assert await limits.admit("remote.example", "https://remote.example/u/a", 10) is None
    assert counted == 1  # the 51st: near the cap, counted (the database holds none)
    assert await limits.admit("remote.example", "https://remote.example/u/a", 10) is None
    assert counted == 1  # the count found nothing held: estimated from there again
