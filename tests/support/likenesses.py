"""Test helpers for likeness consent: images, and a registered (and verified) likeness."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from fedisora.config import Settings
from fedisora.models import Account, Likeness
from fedisora.services import likeness as svc


def face_png(
    width: int = 200, height: int = 120, color: tuple[int, int, int] = (200, 90, 40)
) -> bytes:
    """A small PNG standing in for a face still (what matters here is that it decodes)."""
    buf = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    for x in range(width // 3, 2 * width // 3):
        image.putpixel((x, height // 2), (0, 0, 0))
    image.save(buf, format="PNG")
    return buf.getvalue()


async def verified_likeness(account: Account, settings: Settings, **policy: Any) -> Likeness:
    """Register *account*'s likeness through the service, verify it, set *policy*."""
    challenge = await svc.new_challenge(account)
    await svc.register(
        account,
        references=[face_png(), face_png(160, 160)],
        verification=face_png(300, 300),
        challenge=challenge.code,
        settings=settings,
    )
    await svc.verify(account.username, method="admin")
    if policy:
        await svc.update_policy(account, **policy)
    return await Likeness.get(account_id=account.pk)
