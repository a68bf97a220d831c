"""render.watermark: the invisible id survives our encode, a 0.5x downscale, a 10 % crop and
CRF 28 (bench/watermark.py measures how often); unmarked clips read nothing; clips marked by
the older block scheme still read; the visible mark shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from benchscript import load_bench as _load_bench

from render.encode import encode_mp4
from render.spec import RenderSpec, plan
from render.watermark import (
    apply_visible_mark,
    block_bit_accuracy,
    embed_id,
    embed_id_legacy,
    read_id,
    read_id_legacy,
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


BENCH = Path(__file__).parents[2] / "bench" / "watermark.py"


def load_bench() -> ModuleType:
    """bench/watermark.py, loaded from its file (tests/support/benchscript.py)."""
    return _load_bench("watermark")


def render_tiny(tiny: Any, seed: int = 9) -> np.ndarray:
    spec = RenderSpec(prompt="waves on a pebble beach", seed=seed, seconds=2)
    frames: np.ndarray = tiny.generate(plan(spec, tiny.family, 10), spec)
    return frames


@pytest.mark.parametrize("content", ["gradient", "grainy", "tiny-model"])
def test_id_survives_h264_crf20(
    content: str, make_frames: Callable[..., np.ndarray], tiny: Any, tmp_path: Path
) -> None:
    if content == "gradient":
        frames = make_frames(33, 192, 112)
    elif content == "grainy":
        frames = grainy(make_frames)
    else:
        frames = render_tiny(tiny)
    marked = embed_id(frames, IDENT, key=KEY)
    assert luma_psnr(marked, frames) > 39.5  # 2.5 levels RMS: 40 dB less clipping

    encode_mp4(marked, tmp_path / "m.mp4", fps=16, crf=20)
    reading = read_id(decode(tmp_path / "m.mp4"), key=KEY)
    print(f"{content}: sync z {reading.sync_z:.1f}, weakest bit {reading.weakest_bit:.2f}")
    assert reading.id == IDENT and reading.scheme == "tile" and reading.likely_marked
    assert reading.sync_z > 8


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[np.ndarray, int]]]:
    """Two marked and one unmarked 832x480 clip (as bench/watermark.py makes them), encoded
    by our encoder, then put through each of the bench's transformations."""
    bench = load_bench()
    work = tmp_path_factory.mktemp("copies")
    out: dict[str, list[tuple[np.ndarray, int]]] = {name: [] for name in bench.TRANSFORMS}
    for seed, ident in ((3, 0x0BADC0DE), (11, 123456789), (5, -1)):
        frames = bench.natural_clip(seed)
        if ident >= 0:
            assert luma_psnr(embed_id(frames, ident, key=KEY), frames) > 39.5
            frames = embed_id(frames, ident, key=KEY)
        ours = bench.reencode(frames, 20, work)
        r = np.random.default_rng(seed)
        for name, transform in bench.TRANSFORMS.items():
            out[name].append((transform(ours, r, work), ident))
    return out


@pytest.mark.parametrize(
    "transformation",
    ["none (our CRF 20)", "0.5x, CRF 23", "crop 10 %, CRF 23", "CRF 28", "crop + 0.5x + CRF 28"],
)
def test_id_survives_downscale_crop_and_crf28(
    transformation: str, copies: dict[str, list[tuple[np.ndarray, int]]]
) -> None:
    read = 0
    marked = 0
    for frames, ident in copies[transformation]:
        reading = read_id(frames, key=KEY)
        if ident < 0:  # the unmarked clip, through the same transformation
            assert not reading.likely_marked and reading.scheme == ""
            assert reading.sync_z < 5.5
            continue
        marked += 1
        if reading.likely_marked:
            assert reading.scheme == "tile" and reading.id == ident  # never a wrong id
            read += 1
    # Every marked clip reads, except after all three at once: bench/watermark.py reads 49
    # of 50 clips there (render/watermark.py), and the copies are encoded anew for each run
    # (x264's output here is not always the same for the same frames), so one of the two
    # may land on the other side; none may read as another id.
    needed = marked - 1 if transformation == "crop + 0.5x + CRF 28" else marked
    assert read >= needed, f"{read} of {marked} marked clips read after {transformation}"


def test_unmarked_or_wrong_key_reads_as_unmarked(
    make_frames: Callable[..., np.ndarray], tiny: Any
) -> None:
    frames = grainy(make_frames)
    for unmarked in (frames, make_frames(33, 192, 112), render_tiny(tiny, seed=4)):
        reading = read_id(unmarked, key=KEY)
        assert not reading.likely_marked and reading.scheme == ""
    marked = embed_id(frames, IDENT, key=KEY)
    wrong = read_id(marked, key=b"another instance")
    assert not wrong.likely_marked and wrong.scheme == ""


def test_every_id_round_trips_losslessly(make_frames: Callable[..., np.ndarray]) -> None:
    frames = make_frames(2, 64, 64)
    for ident in (0, 1, 2**31, 2**32 - 1, 0x5A5A1234):
        reading = read_id(embed_id(frames, ident, key=KEY), key=KEY)
        assert reading.id == ident and reading.scheme == "tile"


def test_clips_marked_by_the_block_scheme_still_read(
    make_frames: Callable[..., np.ndarray], tmp_path: Path
) -> None:
    """The scheme before the tile one: its CRF 20 figures, and read_id falls back to it."""
    frames = grainy(make_frames)
    marked = embed_id_legacy(frames, IDENT, key=KEY)
    assert luma_psnr(marked, frames) > 42
    assert block_bit_accuracy(marked, IDENT, key=KEY) == 1.0  # lossless: every block
    encode_mp4(marked, tmp_path / "old.mp4", fps=16, crf=20)
    decoded = decode(tmp_path / "old.mp4")
    assert block_bit_accuracy(decoded, IDENT, key=KEY) > 0.88
    reading = read_id(decoded, key=KEY)
    assert reading.id == IDENT and reading.scheme == "block" and reading.likely_marked
    assert reading.confidence > 0.8
    assert not read_id_legacy(frames, key=KEY).likely_marked


def test_block_reader_does_not_read_noise_on_small_copies(tiny: Any) -> None:
    """Halved tiny renders have fewer blocks than the id has bits: every key reads a high
    vote margin there (0.75 measured), which is why the block reader compares decoy keys."""
    for seed in (1, 2):
        frames = render_tiny(tiny, seed=seed)
        half = np.ascontiguousarray(frames[:, ::2, ::2])
        reading = read_id_legacy(half, key=KEY)
        assert reading.confidence > 0.5  # what the vote alone would have called marked
        assert not reading.likely_marked and not read_id(half, key=KEY).likely_marked


@pytest.mark.parametrize("bad", [-1, 2**32, 1.0, True])
def test_embed_refuses_ids_outside_32_bits(bad: Any) -> None:
    for embed in (embed_id, embed_id_legacy):
        with pytest.raises(ValueError, match="id must be"):
            embed(np.zeros((1, 16, 16, 3), np.uint8), bad)


def test_tiny_frames_are_refused() -> None:
    for fn in (embed_id, embed_id_legacy):
        with pytest.raises(ValueError, match="too small"):
            fn(np.zeros((1, 4, 64, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="too small"):
        read_id(np.zeros((1, 4, 64, 3), np.uint8))


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
