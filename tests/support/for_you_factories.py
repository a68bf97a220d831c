"""Rows For You's tests need: clips with tags and provenance, made quickly with the ORM."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from fedisora.models import (
    Account,
    Clip,
    ClipTag,
    MediaFile,
    MediaKind,
    Tag,
    Visibility,
    utcnow,
)
from fedisora.services.remixes import recount_remixes

_n = itertools.count(1)


async def clip(
    author: Account,
    *,
    tags: tuple[str, ...] = (),
    provenance: str | None = None,
    visibility: Visibility = Visibility.PUBLIC,
    created_at: datetime | None = None,
    **values: Any,
) -> Clip:
    """A clip by *author* (remote authors get a remote clip whose media's provenance is
    *provenance*, fetched and checked; local ones a trusted local video)."""
    n = next(_n)
    local = author.domain is None
    if local:
        prov: dict[str, Any] = {"state": "trusted", "local": True}
        media = await MediaFile.create(
            account=author, kind=MediaKind.VIDEO, file=f"clips/{n}.mp4", content_type="video/mp4"
        )
    else:
        prov = {
            "state": provenance or "verified",
            "local": False,
            "checked_at": utcnow().isoformat(),
            "file_size": 1000,
        }
        media = await MediaFile.create(
            account=author,
            kind=MediaKind.VIDEO,
            remote_url=f"https://{author.domain}/v/{n}.mp4",
            content_type="video/mp4",
        )
    media.provenance = prov
    await media.save()
    base = f"https://{author.domain or 'fedisora.test'}/users/{author.username}/clips/{n}"
    made = await Clip.create(
        account=author,
        uri=base,
        caption=values.pop("caption", f"clip {n}"),
        local=local,
        visibility=visibility,
        media=media,
        created_at=created_at or utcnow(),
        **values,
    )
    if made.remix_of_id is not None:  # (as posting a remix does)
        async with in_transaction() as conn:
            await recount_remixes(made.remix_of_id, conn)
    for name in tags:
        tag, _ = await Tag.get_or_create(name=name)
        await ClipTag.create(tag=tag, clip=made)
    author.clips_count += 1
    await Account.filter(pk=author.pk).update(clips_count=author.clips_count)
    return made


async def author(username: str, domain: str | None = None, **values: Any) -> Account:
    """A bare account row (no login, no keys): enough to author clips."""
    host = domain or "fedisora.test"
    return await Account.create(
        username=username, domain=domain, uri=f"https://{host}/users/{username}", **values
    )
