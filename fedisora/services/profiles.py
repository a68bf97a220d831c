"""Editing one's own profile: names, bio, pictures and the account's flags.

The client API (``PATCH /api/v1/accounts/update_credentials``) and the settings page both
change a profile through :func:`update_profile`, so its limits and clean-up live here once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from fedisora import urls
from fedisora.config import Settings
from fedisora.errors import Invalid
from fedisora.models import Account
from fedisora.outages import disk_space
from fedisora.services import events
from fedisora.services import uploads as media  # the one decoder of uploaded images
from fedisora.services.text import clean_name

__all__ = ["MAX_DISPLAY_NAME", "MAX_NOTE", "ProfileChange", "update_profile"]

MAX_DISPLAY_NAME = 100
MAX_NOTE = 500
"""Characters of the bio (Mastodon's default)."""


@dataclass
class ProfileChange:
    """What to change; ``None`` (or no image) leaves a field as it is."""

    display_name: str | None = None
    note: str | None = None
    locked: bool | None = None
    discoverable: bool | None = None
    indexable: bool | None = None
    images: dict[str, bytes] = field(default_factory=dict)
    """``avatar`` and/or ``header``: the file's bytes (read with the upload cap already)."""


async def update_profile(account: Account, change: ProfileChange, settings: Settings) -> Account:
    """Apply *change* to the local *account* and tell its followers (``account.updated``).

    A picture that is not a readable JPEG, PNG or WebP image is refused before anything
    changes; pictures stored for a change that is then refused or not saved (a full disk,
    the database down) are removed again.
    """
    if change.display_name is not None and len(change.display_name) > MAX_DISPLAY_NAME:
        raise Invalid(f"display_name is longer than {MAX_DISPLAY_NAME} characters")
    if change.note is not None and len(change.note) > MAX_NOTE:
        raise Invalid(f"note is longer than {MAX_NOTE} characters")
    unknown = set(change.images) - {"avatar", "header"}
    if unknown:
        raise Invalid(f"no such profile picture: {sorted(unknown)[0]}")
    changed: list[str] = []
    stored: list[media.StoredUpload] = []
    saved = False
    try:
        for name, data in change.images.items():
            with disk_space():
                image = await asyncio.to_thread(media.store_image, data, settings)
            await media.keep(image, settings)
            stored.append(image)
            setattr(account, f"{name}_url", urls.current().media(stored[-1].values["file"]))
            changed.append(f"{name}_url")
        if change.display_name is not None:
            account.display_name = clean_name(change.display_name)
            changed.append("display_name")
        if change.note is not None:
            account.note = change.note
            changed.append("note")
        for flag in ("locked", "discoverable", "indexable"):
            value = getattr(change, flag)
            if value is not None:
                setattr(account, flag, value)
                changed.append(flag)
        if changed:
            async with events.transaction() as conn:
                await account.save(update_fields=[*changed, "updated_at"], using_db=conn)
                await events.emit(conn, "account.updated", account.pk)
                saved = True
    except BaseException:
        if not saved:
            for image in stored:
                with contextlib.suppress(Exception):  # (the store down too: orphan objects)
                    await media.discard(image, settings)
        raise
    return account
