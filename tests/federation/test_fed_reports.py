"""Reports across instances: a Mastodon instance's ``Flag`` becomes a report here (its actor
the reporter) about each of our accounts it names, with those of the named posts that are
theirs, as Mastodon reads one; a ``Flag`` about nobody of ours is ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from factories import local_account, rendered_video
from fedhelpers import make_remote, post_inbox, process_inbox

from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.models import Clip, InboxItem, Report
from fedisora.services import audit, domain_blocks, posts

FIXTURES = Path(__file__).parents[1] / "fixtures" / "activitypub"


def _flag(**subst: str) -> dict[str, Any]:
    text = (FIXTURES / "mastodon_flag.json").read_text()
    for key, value in subst.items():
        text = text.replace(key, value)
    data: dict[str, Any] = json.loads(text)
    return data


async def test_a_mastodon_flag_becomes_a_report(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    other = await local_account("other")
    await posts.post_clip(ann, await rendered_video(ann), caption="mine")
    await posts.post_clip(other, await rendered_video(other), caption="not ann's")
    clip = await Clip.get(account_id=ann.pk)
    others = await Clip.get(account_id=other.pk)
    peer = await make_remote("actor", "mastodon.example", uri="https://mastodon.example/actor")
    stranger = await make_remote("someone", "mastodon.example")

    flag = _flag(TARGET_URI=ann.uri, OBJECT_URI=clip.uri)
    assert (await post_inbox(client, peer, flag)).status_code == 202
    # About a remote account only: not ours to judge.
    elsewhere = _flag(TARGET_URI=stranger.uri, OBJECT_URI="https://mastodon.example/s/1")
    elsewhere["id"] += "-2"
    assert (await post_inbox(client, peer, elsewhere)).status_code == 202
    # Naming someone else's clip with ann (as Mastodon reads a Flag): a report about ann
    # alone; the clip that is not hers is not attached to it.
    mixed = _flag(TARGET_URI=ann.uri, OBJECT_URI=others.uri)
    mixed["id"] += "-3"
    assert (await post_inbox(client, peer, mixed)).status_code == 202

    await process_inbox(settings)
    items = await InboxItem.all().order_by("id")
    assert [i.state for i in items] == ["processed", "ignored", "processed"], [
        i.last_error for i in items
    ]
    assert "no account of this instance" in items[1].last_error
    report, second = await Report.all().order_by("id")
    assert report.account_id == peer.account.pk and report.target_account_id == ann.pk
    assert report.status_ids == [clip.pk] and report.uri == flag["id"]
    assert report.comment == "Spam: the same clip posted again and again"
    assert report.action_taken_at is None and report.forwarded is False
    assert second.target_account_id == ann.pk and second.status_ids == []

    # The same Flag delivered again (a new activity id is what the inbox dedupes; the report
    # checks its own) adds nothing.
    assert (await post_inbox(client, peer, {**flag, "id": flag["id"]})).status_code in (202, 200)
    await process_inbox(settings)
    assert await Report.all().count() == 2


async def test_flags_from_a_domain_blocked_with_reject_reports_are_ignored(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    peer = await make_remote("actor", "mastodon.example", uri="https://mastodon.example/actor")
    await domain_blocks.create_block(
        audit.CLI, "mastodon.example", settings, severity="noop", reject_reports=True
    )
    flag = _flag(TARGET_URI=ann.uri, OBJECT_URI=ann.uri)
    assert (await post_inbox(client, peer, flag)).status_code == 202
    await process_inbox(settings)
    (item,) = await InboxItem.all()
    assert item.state == "ignored" and "reports from mastodon.example are rejected" in (
        item.last_error
    )
    assert await Report.all().count() == 0
