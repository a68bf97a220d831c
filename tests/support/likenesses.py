"""Test helpers for likeness consent: images, and a registered (and verified) likeness."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from fedisora.config import Settings
from fedisora.models import Account, Likeness
from fedisora.services import likeness as svc


def draw_face(
    image: Image.Image, centre: tuple[float, float], size: float, *, skin: Any = (225, 185, 155)
) -> None:
    """Draw a cartoon face (hair, eyes with brows, nose, mouth) on *image*, *size* pixels
    tall, centred on *centre*: drawn well enough that OpenCV's frontal-face cascade finds it
    (the tests check that it does), so that no photograph has to be shipped."""
    d = ImageDraw.Draw(image)
    cx, cy = centre
    s = size / 210  # the drawing below is about 210 units tall

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [cx + x0 * s, cy + y0 * s, cx + x1 * s, cy + y1 * s]

    d.ellipse(box(-78, -107, 78, 10), fill=(50, 35, 25))  # hair
    d.ellipse(box(-70, -95, 70, 95), fill=skin)
    for side in (-1, 1):
        ex = 28 * side
        d.ellipse(box(ex - 16, -48, ex + 16, -40), fill=(70, 45, 30))  # brow
        d.ellipse(box(ex - 15, -26, ex + 15, -10), fill=(245, 245, 245))
        d.ellipse(box(ex - 7, -25, ex + 7, -11), fill=(40, 30, 25))
        d.ellipse(box(ex - 18, -12, ex + 18, -4), fill=(200, 160, 135))
    d.polygon(
        [(cx, cy - 10 * s), (cx - 10 * s, cy + 25 * s), (cx + 10 * s, cy + 25 * s)],
        fill=(200, 155, 125),
    )
    d.ellipse(box(-12, 22, 12, 30), fill=(150, 100, 80))
    d.ellipse(box(-28, 42, 28, 56), fill=(150, 60, 60))
    d.line(
        [cx - 26 * s, cy + 49 * s, cx + 26 * s, cy + 49 * s],
        fill=(80, 30, 30),
        width=max(1, round(3 * s)),
    )


def face_image(
    width: int = 200,
    height: int = 120,
    color: tuple[int, int, int] = (40, 60, 90),
    *,
    centre: tuple[float, float] | None = None,
    size: float | None = None,
) -> Image.Image:
    """A *width* x *height* still of background *color* with one drawn face: centred and
    filling most of the shorter side unless *centre* and *size* say otherwise."""
    image = Image.new("RGB", (width, height), color)
    draw_face(
        image,
        centre or (width / 2, height / 2 + min(width, height) * 0.03),
        size or min(width, height) * 0.85,
    )
    return image.filter(ImageFilter.GaussianBlur(1))


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def face_png(
    width: int = 200, height: int = 120, color: tuple[int, int, int] = (40, 60, 90)
) -> bytes:
    """A PNG still of a (drawn) face that the reference-still face detector finds."""
    return png(face_image(width, height, color))


def faceless_png(
    width: int = 200, height: int = 120, color: tuple[int, int, int] = (200, 90, 40)
) -> bytes:
    """A PNG that decodes but shows no face (a flat colour with a line)."""
    image = Image.new("RGB", (width, height), color)
    for x in range(width // 3, 2 * width // 3):
        image.putpixel((x, height // 2), (0, 0, 0))
    return png(image)


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
