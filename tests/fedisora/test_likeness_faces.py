"""Reference stills are cropped around the face OpenCV's Haar cascade finds (issue 14,
point 1): a still without a face is refused at registration, naming it; the faces here are
drawn by the test (tests/support/likenesses.py) and the detector really finds them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from factories import local_account
from likenesses import face_image, face_png, faceless_png, png
from PIL import Image

from fedisora.config import Settings, load_settings
from fedisora.models import Likeness, LikenessChallenge
from fedisora.services import likeness as svc


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": str(tmp_path / "data")}
    )


def test_the_detector_finds_drawn_faces_and_nothing_in_faceless_images() -> None:
    for size in ((64, 64), (200, 120), (300, 300), (1200, 900), (900, 1600)):
        box = svc.find_face(face_image(*size))
        assert box is not None, size
        x, y, w, h = box
        assert 0 <= x and 0 <= y and x + w <= size[0] and y + h <= size[1]
        assert w >= 0.5 * min(size)  # the face drawn fills most of the shorter side
    noise = Image.effect_noise((300, 300), 80).convert("RGB")
    with Image.open(io.BytesIO(faceless_png())) as flat:
        assert svc.find_face(flat.convert("RGB")) is None
    assert svc.find_face(noise) is None
    assert svc.find_face(Image.new("RGB", (256, 256), (128, 128, 128))) is None


def test_the_crop_follows_the_face_not_the_centre() -> None:
    # A wide still with the face in the upper right corner: a centre crop would cut it off.
    still = face_image(1200, 700, centre=(1000, 200), size=300)
    normal = svc.normalise_reference(png(still), "reference image 1")
    assert normal.size == (svc.REFERENCE_SIDE, svc.REFERENCE_SIDE) and normal.mode == "RGB"
    box = svc.find_face(normal)
    assert box is not None
    x, y, w, h = box
    # Found again in the crop: about in the middle and large (the margin around it).
    assert abs(x + w / 2 - 256) < 60 and abs(y + h / 2 - 256) < 80
    assert 0.45 * 512 <= w <= 0.85 * 512
    # The centre crop (kept for stills another instance normalised already) misses it.
    centred = svc.normalise_reference(png(still), "still 0", face=False)
    assert svc.find_face(centred) is None
    # Two faces: the larger one is kept.
    both = face_image(1000, 500, centre=(250, 250), size=180)
    from likenesses import draw_face

    draw_face(both, (750, 250), 400)
    box = svc.find_face(svc.normalise_reference(png(both)))
    assert box is not None and box[2] > 0.45 * 512


async def test_a_still_without_a_face_is_refused_by_its_number(db: str, settings: Settings) -> None:
    alice = await local_account("alice")
    challenge = await svc.new_challenge(alice)
    with pytest.raises(svc.LikenessInputError, match="no face found in reference image 2"):
        await svc.register(
            alice,
            references=[face_png(), faceless_png(), face_png(160, 160)],
            verification=face_png(300, 300),
            challenge=challenge.code,
            settings=settings,
        )
    assert await Likeness.all().count() == 0
    assert (await LikenessChallenge.get(pk=challenge.pk)).consumed_at is None
    base = svc.private_dir(settings)
    assert not base.exists() or not any(p.is_file() for p in base.rglob("*"))
    # The same with faces everywhere registers, each still cropped around its face.
    likeness = await svc.register(
        alice,
        references=[face_png(), face_png(640, 480, (10, 120, 40))],
        verification=face_png(300, 300),
        challenge=challenge.code,
        settings=settings,
    )
    for path in svc.reference_paths(likeness, settings):
        with Image.open(path) as still:
            assert still.size == (svc.REFERENCE_SIDE, svc.REFERENCE_SIDE)
            assert svc.find_face(still.convert("RGB")) is not None
