"""The admin overview shows the space each class of stored data takes, and counts that stay
whole after retention deleted rows."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
from chores import Clock, engine_for, run_chore
from factories import local_account, rendered_video
from webhelpers import logged_in

from fedisora.config import Settings
from fedisora.models import Delivery, InboxItem, MediaFile, MediaKind, utcnow
from fedisora.services import posts
from fedisora.work.housekeeping import ensure_chores


def cells(page: str) -> list[list[str]]:
    """The page's table rows, as lists of cell texts."""
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row, flags=re.S)
        ]
        for row in rows
    ]


async def test_the_overview_shows_space_and_whole_counts(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    boss = await local_account("boss", admin=True)
    now = utcnow()
    for n, state in enumerate(["received", "ignored", "processed", "processed"]):
        await InboxItem.create(
            activity_id=f"https://peer.example/a/{n}",
            actor_uri="https://peer.example/users/p",
            host="peer.example",
            payload={"type": "Like", "pad": "x" * 1500},
            size=1500,
            state=state,
            state_changed_at=now,
            created_at=now,
        )
    for n, state in enumerate(["delivered", "delivered", "pending"]):
        await Delivery.create(
            sender=boss,
            inbox_url="https://peer.example/inbox",
            host="peer.example",
            activity_id=f"https://fedisora.test/a/{n}",
            payload={"type": "Like"},
            state=state,
            state_changed_at=now,
            created_at=now,
        )
    posted = await rendered_video(boss)
    await MediaFile.filter(pk=posted.pk).update(size=3_000_000)
    await posts.post_clip(boss, await MediaFile.get(pk=posted.pk))
    await MediaFile.create(
        account=boss, kind=MediaKind.IMAGE, file="u/1.png", content_type="image/png", size=2500
    )
    # Retention deletes the delivered deliveries and drops the ignored payload.
    await ensure_chores()
    clock = Clock()
    clock.passed = timedelta(hours=25)
    await run_chore(engine_for(settings, clock), "work_retention")
    assert await Delivery.all().count() == 1

    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin")).text
    rows = cells(page)
    # inbox items: rows, deleted, payload held (1.5 kB each, dropped for the ignored one)
    assert ["ignored", "1", "0", "0 B"] in rows
    assert ["processed", "2", "0", "0 B"] in rows  # 25 hours: past their hour too
    assert ["received", "1", "0", "1.5 kB"] in rows
    # deliveries: deleted rows still counted, per state and per host
    assert ["delivered", "0", "2"] in rows and ["pending", "1", "0"] in rows
    assert ["peer.example", "delivered", "2"] in rows
    # storage: every work table with its size on disk, inbox payload held
    [inbox] = [r for r in rows if r and r[0] == "inbox items" and len(r) == 3]
    assert inbox[1].endswith("B") and inbox[2] == "1.5 kB"
    assert any(r and r[0] == "housekeeping chores" for r in rows)
    assert ["video", "1 · 3.0 MB", "0 · 0 B", "0 · 0 B"] in rows
    assert ["image", "0 · 0 B", "1 · 2.5 kB", "0 · 0 B"] in rows


async def test_the_overview_counts_people_not_the_instance_actor(
    web: httpx.ASGITransport,
) -> None:
    from fedisora.services.accounts import create_instance_actor

    await create_instance_actor()
    await local_account("root", admin=True)
    await local_account("alice")
    async with logged_in(web, "root") as admin:
        page = await admin.get("/admin")
    assert ">2 local accounts</a>" in page.text
