"""render.watermark: the invisible id survives our H.264 encode; the visible mark shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from render.encode import encode_mp4
from render.spec import RenderSpec, plan
from render.watermark import (
    apply_visible_mark,
    block_bit_accuracy,
    embed_id,
    read_id,
)

IDENT = 0xDEADBEEF
KEY = b"instance secret"
LUMA = np.array([0.299, 0.587, 0.114])


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def grainy(make_frames: Callable[..., np.ndarray]) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0, 6, (33, 192, 112, 3))
    return np.clip(make_frames(33, 192, 112) + noise, 0, 255).astype(np.uint8)


def luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) @ LUMA - b.astype(float) @ LUMA) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.mark.parametrize("content", ["gradient", "grainy", "tiny-model"])
def test_id_survives_h264_crf20(
    content: str, make_frames: Callable[..., np.ndarray], tiny: Any, tmp_path: Path
) -> None:
    if content == "gradient":
        frames = make_frames(33, 192, 112)
    elif content == "grainy":
        frames = grainy(make_frames)
    else:
        spec = RenderSpec(prompt="waves on a pebble beach", seed=9, seconds=2)
        frames = tiny.generate(plan(spec, tiny.family, 10), spec)
    marked = embed_id(frames, IDENT, key=KEY)
    assert luma_psnr(marked, frames) > 42
    assert block_bit_accuracy(marked, IDENT, key=KEY) == 1.0  # lossless: every block

    encode_mp4(marked, tmp_path / "m.mp4", fps=16, crf=20)
    decoded = decode(tmp_path / "m.mp4")
    raw = block_bit_accuracy(decoded, IDENT, key=KEY)
    reading = read_id(decoded, key=KEY)
    print(f"{content}: block accuracy {raw:.3f}, confidence {reading.confidence:.2f}")
    assert raw > 0.88  # the module doc's CRF 20 figures, with a little slack
    assert reading.id == IDENT
    assert reading.weakest_bit > 0.5
    assert reading.likely_marked


def test_unmarked_or_wrong_key_reads_as_unmarked(make_frames: Callable[..., np.ndarray]) -> None:
    frames = grainy(make_frames)
    assert not read_id(frames, key=KEY).likely_marked
    marked = embed_id(frames, IDENT, key=KEY)
    wrong = read_id(marked, key=b"another instance")
    assert wrong.id != IDENT and not wrong.likely_marked


def test_every_id_round_trips_losslessly(make_frames: Callable[..., np.ndarray]) -> None:
    frames = make_frames(2, 64, 64)
    for ident in (0, 1, 2**31, 2**32 - 1, 0x5A5A1234):
        assert read_id(embed_id(frames, ident, key=KEY), key=KEY).id == ident


@pytest.mark.parametrize("bad", [-1, 2**32, 1.0, True])
def test_embed_refuses_ids_outside_32_bits(bad: Any) -> None:
    with pytest.raises(ValueError, match="id must be"):
        embed_id(np.zeros((1, 16, 16, 3), np.uint8), bad)


def test_tiny_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        embed_id(np.zeros((1, 4, 64, 3), np.uint8), 1)


def test_visible_mark_names_instance_and_creator_and_moves(
    make_frames: Callable[..., np.ndarray],
) -> None:
    frames = np.full((17, 192, 112, 3), 90, np.uint8)
    marked = apply_visible_mark(frames, instance="video.example", creator="ana")
    changed = np.any(marked != frames, axis=-1)  # (T, H, W)
    for i in (0, 8, 16):
        share = changed[i].mean()
        assert 0.005 < share < 0.2, share  # text, not a wash over the frame
    # It is at the top-left first, the bottom-right mid-clip, and back.
    ys = [np.nonzero(changed[i])[0].mean() for i in (0, 8, 16)]
    xs = [np.nonzero(changed[i])[1].mean() for i in (0, 8, 16)]
    assert ys[1] > ys[0] + 20 and xs[1] >= xs[0] and abs(ys[2] - ys[0]) < 2
    # Both light (text) and dark (outline) pixels: readable on any background.
    assert marked[0].max() > 120 and marked[0].min() < 60
    # A longer name covers more pixels than a short one.
    longer = apply_visible_mark(frames[:1], instance="video.example", creator="anastasia_long")
    assert np.any(longer != frames[:1], axis=-1).sum() > changed[0].sum()
