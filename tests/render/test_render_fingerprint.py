"""Perceptual fingerprints (render.fingerprint): PDQ hashes sampled in time, the index keys, and
the temporal alignment that names a transformed copy and refuses an unrelated clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from benchlookup import encode, synthetic_clip, transform_file

from render.errors import ProbeError
from render.fingerprint import (
    CHUNKS,
    MATCH_SCORE,
    RATE,
    VARIANTS,
    align,
    chunk_keys,
    fingerprint_file,
    hash_frames,
    hashes_from_hex,
    hashes_to_hex,
    indexed_hashes,
    query_file,
    query_key_hashes,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fingerprint")
    made = {}
    for name, seed in (("one", 11), ("other", 12)):
        frames, fps = synthetic_clip(seed)
        made[name] = encode(frames, out / f"{name}.mp4", fps)
    return made


def test_a_mirrored_frame_needs_its_own_hash() -> None:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    frame = np.asarray(np.kron(small, np.ones((24, 24, 1), dtype=np.uint8)))
    plain, mirrored, qualities = hash_frames([frame])
    flipped, _, _ = hash_frames([np.ascontiguousarray(frame[:, ::-1])])
    assert np.array_equal(mirrored[0], flipped[0])
    far = int(np.unpackbits(plain[0] ^ flipped[0]).sum())
    assert far > 2 * 51, far  # as far as unrelated frames: plain hashes miss a mirror image
    assert qualities[0] >= 50


def test_clip_fingerprint_samples_at_the_fixed_rate(clips: dict[str, Path]) -> None:
    import av

    with av.open(str(clips["one"])) as c:
        stream = c.streams.video[0]
        seconds = float(stream.frames / stream.average_rate)
    printed = fingerprint_file(clips["one"])
    assert printed.hashes.shape[1:] == (VARIANTS, 32)
    assert abs(len(printed.hashes) - seconds * RATE) <= 1
    assert printed.watermark_id is None  # not asked for (no key)
    again = hashes_from_hex(hashes_to_hex(printed.hashes))
    assert np.array_equal(again, printed.hashes)
    with pytest.raises(ValueError):
        hashes_from_hex("ab" * 33)


def test_chunk_keys_find_any_hash_within_seven_bits() -> None:
    rng = np.random.default_rng(5)
    stored = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    keys = set(chunk_keys(stored))
    assert len(keys) == CHUNKS == 8 and sorted(k >> 32 for k in keys) == list(range(CHUNKS))
    # Each key is its chunk's 32 bits, big-endian, under its position.
    assert int.from_bytes(bytes(stored[0, 4:8]), "big") in {k & 0xFFFFFFFF for k in keys}
    for trial in range(200):  # pigeonhole: 7 flipped bits leave one 32-bit chunk intact
        bits = np.unpackbits(stored[0])
        bits[rng.choice(256, 7, replace=False)] ^= 1
        near = np.packbits(bits)[None, :]
        assert keys & set(chunk_keys(near)), trial
    bits = np.unpackbits(stored[0])
    bits[::32] ^= 1  # one bit in every chunk: no key left in common
    assert not keys & set(chunk_keys(np.packbits(bits)[None, :]))


@pytest.mark.parametrize("name", ["reencode", "resize", "crop", "trim", "mirror", "caption"])
def test_a_transformed_copy_aligns_with_its_clip_only(
    clips: dict[str, Path], tmp_path: Path, name: str
) -> None:
    one = fingerprint_file(clips["one"]).hashes
    other = fingerprint_file(clips["other"]).hashes
    copy = transform_file(clips["one"], tmp_path / f"{name}.mp4", name, seed=4)
    query = query_file(copy)
    found = align(query, one)
    assert found.score >= MATCH_SCORE, (name, found)
    assert found.mirrored == (name == "mirror")
    if name == "trim":
        assert found.offset > 0  # the copy starts later in the clip
    assert align(query, other).score < MATCH_SCORE
    # The index finds it: the copy's key frames share chunks with the clip's indexed hashes.
    assert set(chunk_keys(query_key_hashes(query))) & set(chunk_keys(indexed_hashes(one)))


def test_what_is_not_a_video_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(ProbeError):
        query_file(junk)
    text = tmp_path / "notes.txt"
    text.write_text("not a video at all")
    with pytest.raises(ProbeError):
        fingerprint_file(text)
