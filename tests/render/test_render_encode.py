"""render.encode: H.264 MP4 writing, poster, blurhash, and probe."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from render.encode import atomic_path, blurhash_of, encode_mp4, probe
from render.errors import EncodeError, ProbeError

Frames = Callable[[int, int, int], np.ndarray]


def decode_rgb(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_encode_writes_a_faithful_faststart_mp4(
    tmp_path: Path, make_frames: Frames, box_kinds: Callable[[Path], list[bytes]]
) -> None:
    frames = make_frames(17, 112, 64)
    out = encode_mp4(frames, tmp_path / "a.mp4", fps=16)

    assert (out.width, out.height, out.fps, out.frames) == (64, 112, 16, 17)
    assert out.duration == pytest.approx(17 / 16)
    assert out.size == out.path.stat().st_size > 0
    assert out.sha256 == hashlib.sha256(out.path.read_bytes()).hexdigest()
    kinds = box_kinds(out.path)
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # +faststart

    info = probe(out.path)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height, info.frames) == (64, 112, 17)
    assert info.fps == pytest.approx(16)
    assert info.duration == pytest.approx(17 / 16)
    assert info.size == out.size

    decoded = decode_rgb(out.path).astype(np.float64)
    mse = np.mean((decoded - frames.astype(np.float64)) ** 2)
    psnr = 10 * np.log10(255**2 / mse)
    assert psnr > 30, psnr  # CRF 20 on smooth content: colours and order preserved


def test_poster_and_blurhash(tmp_path: Path, make_frames: Frames) -> None:
    frames = make_frames(9, 112, 64)
    middle = encode_mp4(frames, tmp_path / "m.mp4", fps=16)
    first = encode_mp4(
        frames, tmp_path / "f.mp4", fps=16, poster_frame="first", poster=tmp_path / "poster.jpg"
    )
    assert middle.poster_path == tmp_path / "m.jpg"
    assert first.poster_path == tmp_path / "poster.jpg"
    with Image.open(middle.poster_path) as img:
        assert (img.format, img.size) == ("JPEG", (64, 112))
        poster = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(poster - frames[4]).mean() < 6  # the middle frame
    assert np.abs(poster - frames[0]).mean() > np.abs(poster - frames[4]).mean()
    # 4x4 components: size flag, max AC, DC (4 chars), 15 AC pairs.
    assert len(middle.blurhash) == 6 + 2 * 15 and middle.blurhash[0] == "U"
    import blurhash

    preview = np.asarray(blurhash.decode(middle.blurhash, 16, 28), dtype=float)
    assert np.abs(preview.mean(axis=(0, 1))[:3] - poster.mean(axis=(0, 1))).max() < 20


def test_blurhash_follows_the_picture() -> None:
    red = blurhash_of(Image.new("RGB", (90, 160), (230, 20, 20)))
    blue = blurhash_of(Image.new("RGB", (90, 160), (20, 20, 230)))
    assert red != blue
    assert red == blurhash_of(Image.new("RGB", (900, 1600), (230, 20, 20)))  # size-independent


def test_odd_sizes_are_cropped_to_even(tmp_path: Path, make_frames: Frames) -> None:
    out = encode_mp4(make_frames(5, 33, 47), tmp_path / "odd.mp4", fps=8)
    assert (out.width, out.height) == (46, 32)
    assert (probe(out.path).width, probe(out.path).height) == (46, 32)


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [
        (np.zeros((5, 16, 16, 3), np.float32), 16, "uint8"),
        (np.zeros((16, 16, 3), np.uint8), 16, "shaped"),
        (np.zeros((5, 16, 16, 4), np.uint8), 16, "shaped"),
        (np.zeros((0, 16, 16, 3), np.uint8), 16, "at least one frame"),
        ([[0]], 16, "numpy array"),
        (np.zeros((5, 16, 16, 3), np.uint8), 0, "fps"),
        (np.zeros((5, 16, 16, 3), np.uint8), 12.5, "fps"),
    ],
)
def test_encode_refuses_bad_input(
    tmp_path: Path, frames: object, fps: object, message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        encode_mp4(frames, tmp_path / "x.mp4", fps=fps)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_leaves_nothing(tmp_path: Path, make_frames: Frames) -> None:
    with pytest.raises(EncodeError, match="could not write"):
        encode_mp4(make_frames(5, 16, 16), tmp_path / "x.mp4", fps=16, preset="no-such-preset")
    assert list(tmp_path.iterdir()) == []


def test_encode_replaces_an_existing_file_atomically(tmp_path: Path, make_frames: Frames) -> None:
    dst = tmp_path / "v.mp4"
    dst.write_bytes(b"old")
    encode_mp4(make_frames(5, 16, 16), dst, fps=16)
    assert probe(dst).frames == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.jpg", "v.mp4"]


def test_atomic_path_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    dst = tmp_path / "keep.txt"
    dst.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dst) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert dst.read_text() == "old"
    assert list(tmp_path.iterdir()) == [dst]


def test_probe_refuses_what_is_not_a_whole_mp4(tmp_path: Path, gradient_clip: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("definitely not a video " * 20)
    png = tmp_path / "still.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(png)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.mp4"
    data = gradient_clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])

    for path, message in [
        (text, "not a readable video"),
        (png, "not MP4"),
        (empty, "not a readable video"),
        (tmp_path / "missing.mp4", "not a readable video"),
        (cut, "corrupt"),
    ]:
        with pytest.raises(ProbeError, match=message):
            probe(path)
    # Without decoding, the cut file's header still reads: decode is what catches it.
    assert probe(cut, decode=False).frames == 17
