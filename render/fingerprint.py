"""Perceptual fingerprints of clips: PDQ hashes of frames sampled in time, and their alignment.

A clip's fingerprint is the PDQ hash (Meta's 256-bit perceptual image hash, ``pdqhash``) of
one frame every 1 / :data:`RATE` seconds (an eighth of a second), in time order, each frame
whole, without its edges and its top part (:data:`VARIANTS`), plus the invisible watermark's
id when it can be read (:mod:`render.watermark`). Matching follows Meta's TMK+PDQF in
spirit: per-frame PDQ features taken at a fixed rate (so a copy re-encoded at another frame
rate samples the same instants), and a temporal match, here a direct search over the offsets
of the query's hash sequence against the clip's (:func:`align`), which TMK approximates with
Fourier kernels for long videos; ours are seconds long, so the exact search costs
microseconds. An offset search tolerates trimming (the query is any stretch of the clip);
the median distance over the aligned frames tolerates a few frames spoiled by a caption or a
cut. A mirrored copy is matched by hashing the query's frames mirrored too. (PDQ's dihedral
variants, computed from one DCT by ``compute_dihedral``, are not used: on frames with sharp
edges its left-right variant was found 50 bits from the hash of the flipped frame, a third
of a match's margin.)

Scores: ``1 - median Hamming distance / 128`` over the best offset, so identical frames
score 1, unrelated ones about 0 (PDQ distances of unrelated frames centre on 128).
:data:`MATCH_SCORE` is the decision threshold (``bench/lookup.py`` measures recall and false
matches at it). Pure apart from decoding with PyAV: no database here. ``pdqhash`` and ``av``
are imported lazily (the render extra).

Measured by ``bench/lookup.py`` (2,000 indexed clips: 1,976 synthetic and 24 tiny-model
renders at 480x832; 66 queries per transformation; 32-bit index chunks, see
:data:`CHUNK_BITS`):

==============  ======  =================================================
transformation  recall  the tiny model's own 64x112 renders (apart, of 6)
==============  ======  =================================================
reencode        100 %   0
resize          100 %   0
crop            100 %   6
trim            100 %   6
mirror          100 %   6
strip           100 %   6
caption         100 %   1
==============  ======  =================================================

False matches: 0 in 200 lookups of unrelated clips, 2 in 401,200 comparisons (5.0e-6). The
index query at 1 M indexed clips: 1.11x its time at 10 k (5.01 -> 5.56 ms); the whole lookup
0.91x. Why the 64x112 renders are apart (and were all the misses at 0.5x before): they are a
grey field under the same visible mark, two renders a couple of grey levels apart, and at
64x112 a 0.5x resize or CRF 28 leaves their frames 60 to 80 bits from their clip's (about
as far as from another render's: no sampling, alignment or resolution normalisation tried
here separated them per frame; the alignment's median over a clip still ranks the source
first, 0.47 against 0.375 at most), which no 32-bit key survives, and their watermark's
chips are 1 px after the resize. Brought to the 480x832 of a real render, the same clips
align with their source at 0.8 after a 0.5x resize (others 0.48 at most) and their watermark
reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from render.errors import ProbeError

__all__ = [
    "CHUNKS",
    "CHUNK_BITS",
    "HASH_BYTES",
    "INDEX_EVERY",
    "MATCH_SCORE",
    "QUERY_PHASES",
    "RATE",
    "VARIANTS",
    "Alignment",
    "ClipPrint",
    "QueryPrint",
    "align",
    "chunk_keys",
    "fingerprint_file",
    "fingerprint_frames",
    "hash_frames",
    "hashes_from_hex",
    "hashes_to_hex",
    "indexed_hashes",
    "query_file",
    "query_from_json",
    "query_key_hashes",
    "query_to_json",
]

RATE = 8.0
"""Frames hashed per second of video, on both sides (a clip and a query): dense enough that
a copy trimmed at any instant has samples within 1/16 s of the clip's."""
HASH_BYTES = 32
CHUNK_BITS = 32
CHUNKS = 256 // CHUNK_BITS
"""Multi-index hashing: each 256-bit hash is cut into 8 chunks of 32 bits (see
:mod:`fedisora.services.fingerprints`). 32 bits, not 16: the rows a key holds by chance grow
with the indexed hashes over 2**bits; with 16 they made the index query 3.4x slower at 1 M
clips than at 10 k, with 32 there are about 0.01 such rows a key at 60 M indexed hashes (1 M
clips of 15 s), so a lookup reads about as many rows at any size."""
INDEX_EVERY = 2
"""Every second sampled hash (four per second) goes into the index; all are kept for
alignment. (A 32-bit chunk survives fewer flipped bits than a 16-bit one: denser indexed
samples and more query key frames, :data:`MAX_QUERY_KEYS_FRAMES`, make up for it.)"""
MAX_SAMPLES = 480
"""At most a minute of a clip is hashed (clips are at most a few tens of seconds)."""
MAX_QUERY_SAMPLES = 480
QUERY_PHASES = 2
"""A copy is sampled at twice :data:`RATE` and aligned at each phase (its even samples, its
odd ones): a copy trimmed at any instant then has samples within 1/32 s of the clip's, and
for a clip of 16 frames per second or fewer, on the very frames the clip's samples hashed.
That matters where consecutive frames differ much (fast motion; the tiny test model's noise)."""
MAX_QUERY_KEYS_FRAMES = 24
"""Query frames whose chunks are looked up in the index (spread over the query), each as it
is, mirrored, and their top parts."""
WATERMARK_FRAMES = 24
MATCH_SCORE = 0.35
"""A candidate whose best alignment scores at least this is a match (median distance of the
aligned frames at most 83 of 256 bits). Unrelated synthetic clips scored at most 0.2 in the
bench, transformed copies at least about 0.8; the tiny test model's renders (grey noise under
the same visible mark) score 0.45 to 0.6 against one another: see bench/lookup.py."""
_MIN_OVERLAP = 0.5  # of the shorter sequence: an offset must align at least this much of it

VARIANTS = 3
"""Hashes stored per sampled frame of a clip: the whole frame; its centre without
:data:`CROP_EDGE` of each edge (PDQ does not survive cropping: a copy cropped 5 % at each
edge is about 80 bits from the whole frame's hash, and near its centre's); and its top
:data:`UPPER` (a caption burned into the bottom of a copy leaves that part as it was: a
query's top part is compared with it)."""
CROP_EDGE = 0.05
UPPER = 0.75

Hashes = npt.NDArray[np.uint8]
"""Packed hashes, shape (n, 32) for a query, (n, VARIANTS, 32) for a clip."""

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


@dataclass(frozen=True)
class ClipPrint:
    """What is stored for a clip: its hashes at :data:`RATE` (each sample's
    :data:`VARIANTS`), and its watermark id if read."""

    hashes: Hashes
    rate: float = RATE
    watermark_id: int | None = None
    frames: int = 0
    """Frames decoded (the whole clip)."""


@dataclass(frozen=True)
class QueryPrint:
    """A copy being looked up: its hashes as they are and mirrored, and a watermark reading."""

    hashes: Hashes
    mirrored: Hashes
    watermark_id: int | None = None
    watermark_confidence: float = 0.0
    qualities: tuple[int, ...] = field(default=())
    upper: Hashes | None = None
    """The hashes of each sample's top :data:`UPPER`, as it is and mirrored."""
    upper_mirrored: Hashes | None = None


@dataclass(frozen=True)
class Alignment:
    score: float
    offset: int
    """Index in the clip's sequence of the query's first sample."""
    overlap: int
    mirrored: bool = False


def hashes_to_hex(hashes: Hashes) -> str:
    return bytes(np.ascontiguousarray(hashes, dtype=np.uint8)).hex()


def hashes_from_hex(text: str) -> Hashes:
    """Parse a clip's hashes (:func:`hashes_to_hex`); ``ValueError`` on anything else."""
    raw = bytes.fromhex(text)
    if len(raw) % (HASH_BYTES * VARIANTS):
        raise ValueError(f"a clip's fingerprint is whole groups of {VARIANTS} PDQ hashes")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, VARIANTS, HASH_BYTES).copy()


def _pack(bits: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def hash_frames(
    frames: Sequence[npt.NDArray[np.uint8]], *, mirror: bool = True
) -> tuple[Hashes, Hashes, list[int]]:
    """PDQ hashes of RGB frames as they are and (with *mirror*) mirrored left-right, and
    their qualities."""
    import pdqhash

    plain, mirrored, qualities = [], [], []
    for frame in frames:
        bits, quality = pdqhash.compute(np.ascontiguousarray(frame))
        plain.append(_pack(bits))
        if mirror:
            flipped, _ = pdqhash.compute(np.ascontiguousarray(frame[:, ::-1]))
            mirrored.append(_pack(flipped))
        qualities.append(int(quality))
    empty = np.zeros((0, HASH_BYTES), dtype=np.uint8)
    return (
        np.stack(plain) if plain else empty,
        np.stack(mirrored) if mirrored else empty,
        qualities,
    )


def _sample(path: Path, rate: float, limit: int) -> tuple[list[npt.NDArray[np.uint8]], int]:
    """Frames (RGB) shown at instants 0, 1/rate, 2/rate... of the video (the latest frame at
    or before each instant, so a video of fewer frames per second repeats frames), and the
    number of frames decoded. Raises :class:`ProbeError` when *path* is not a video PyAV can
    decode."""
    import av

    samples: list[npt.NDArray[np.uint8]] = []
    decoded = 0
    try:
        with av.open(str(path), "r") as container:
            if not container.streams.video:
                raise ProbeError("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start: float | None = None
            shown: Any = None  # the frame on screen, and its pixels once needed
            pixels: npt.NDArray[np.uint8] | None = None
            t = 0.0
            for frame in container.decode(stream):
                decoded += 1
                t = frame.time if frame.time is not None else decoded / 25.0
                if start is None:
                    start = t
                t -= start
                # Instants before this frame showed the previous one.
                while shown is not None and len(samples) / rate < t - 1e-6:
                    if pixels is None:
                        pixels = np.asarray(shown.to_ndarray(format="rgb24"), dtype=np.uint8)
                    samples.append(pixels)
                    if len(samples) >= limit:
                        return samples, decoded
                shown, pixels = frame, None
            while shown is not None and len(samples) / rate <= t + 1e-6:
                if pixels is None:
                    pixels = np.asarray(shown.to_ndarray(format="rgb24"), dtype=np.uint8)
                samples.append(pixels)
                if len(samples) >= limit:
                    break
    except ProbeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ProbeError(f"not a readable video: {exc}") from exc
    if not samples:
        raise ProbeError("the file holds no decodable video frame")
    return samples, decoded


def _watermark(samples: list[npt.NDArray[np.uint8]], key: bytes | None) -> tuple[int | None, float]:
    if key is None:
        return None, 0.0
    from render.watermark import read_id

    frames = samples[:WATERMARK_FRAMES]
    try:
        reading = read_id(np.stack(frames).astype(np.uint8), key=key)
    except ValueError:  # too small for one block
        return None, 0.0
    return (reading.id if reading.likely_marked else None), reading.confidence


def _centre(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    h, w = frame.shape[:2]
    dy, dx = round(h * CROP_EDGE), round(w * CROP_EDGE)
    return frame[dy : h - dy, dx : w - dx]


def _upper(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return frame[: max(1, round(frame.shape[0] * UPPER))]


def fingerprint_frames(samples: Sequence[npt.NDArray[np.uint8]]) -> Hashes:
    """A clip's hashes from its sampled frames: shape (n, :data:`VARIANTS`, 32)."""
    whole, _, _ = hash_frames(samples, mirror=False)
    centre, _, _ = hash_frames([_centre(f) for f in samples], mirror=False)
    upper, _, _ = hash_frames([_upper(f) for f in samples], mirror=False)
    return np.stack([whole, centre, upper], axis=1)


def fingerprint_file(path: Path | str, *, watermark_key: bytes | None = None) -> ClipPrint:
    """The fingerprint of a clip's video file (:class:`ProbeError` if it is not one)."""
    samples, decoded = _sample(Path(path), RATE, MAX_SAMPLES)
    mark, _ = _watermark(samples, watermark_key)
    return ClipPrint(hashes=fingerprint_frames(samples), watermark_id=mark, frames=decoded)


def query_file(path: Path | str, *, watermark_key: bytes | None = None) -> QueryPrint:
    """The fingerprint of a copy to look up (:class:`ProbeError` if it is not a video): its
    hashes at :data:`QUERY_PHASES` times :data:`RATE`."""
    samples, _ = _sample(Path(path), RATE * QUERY_PHASES, MAX_QUERY_SAMPLES * QUERY_PHASES)
    hashes, mirrored, qualities = hash_frames(samples)
    upper, upper_mirrored, _ = hash_frames([_upper(f) for f in samples])
    mark, confidence = _watermark(samples, watermark_key)
    return QueryPrint(hashes, mirrored, mark, confidence, tuple(qualities), upper, upper_mirrored)


def chunk_keys(hashes: Hashes) -> list[int]:
    """The multi-index keys of *hashes* (any shape ending in 32 bytes): chunk position << 32
    | the chunk's 32 bits (big-endian), for every chunk of every hash, without repeats."""
    hashes = hashes.reshape(-1, HASH_BYTES)
    if len(hashes) == 0:
        return []
    per = CHUNK_BITS // 8
    parts = hashes.reshape(len(hashes), CHUNKS, per).astype(np.int64)
    values = np.zeros(parts.shape[:2], dtype=np.int64)
    for byte in range(per):
        values = values << 8 | parts[:, :, byte]
    keys = (np.arange(CHUNKS, dtype=np.int64)[None, :] << CHUNK_BITS) | values
    return sorted({int(k) for k in keys.ravel()})


def indexed_hashes(hashes: Hashes) -> Hashes:
    """The hashes of a clip that go into the index: every variant, four samples a second."""
    return hashes[::INDEX_EVERY].reshape(-1, HASH_BYTES)


def query_key_hashes(query: QueryPrint) -> Hashes:
    """The query hashes looked up in the index: up to :data:`MAX_QUERY_KEYS_FRAMES` of each
    orientation, spread over the query."""
    n = len(query.hashes)
    picks = np.unique(np.linspace(0, n - 1, min(n, MAX_QUERY_KEYS_FRAMES)).round().astype(int))
    kinds = [query.hashes, query.mirrored, query.upper, query.upper_mirrored]
    return np.concatenate([k[picks] for k in kinds if k is not None])


def distances(query: Hashes, clip: Hashes) -> npt.NDArray[np.uint16]:
    """Hamming distance of every query hash (q, 32) to every sample of a clip (c, V, 32),
    the nearest of the sample's variants: shape (q, c)."""
    x = np.bitwise_xor(query[:, None, None, :], clip[None, :, :, :])
    return np.asarray(_POPCOUNT[x].sum(axis=3, dtype=np.uint16).min(axis=2))


def _best_offset(d: npt.NDArray[np.uint16]) -> tuple[float, int, int]:
    q, c = d.shape
    need = max(1, int(np.ceil(_MIN_OVERLAP * min(q, c))))
    best = (0.0, 0, 0)
    for offset in range(-(q - 1), c):
        i0, i1 = max(0, -offset), min(q, c - offset)
        if i1 - i0 < need:
            continue
        rows = np.arange(i0, i1)
        median = float(np.median(d[rows, rows + offset]))
        score = max(0.0, 1.0 - median / 128.0)
        if score > best[0]:
            best = (score, offset, i1 - i0)
    return best


def align(query: QueryPrint, clip: Hashes) -> Alignment:
    """The best temporal alignment of *query* (either orientation, each sampling phase) with
    a clip's hashes; the offset counts the clip's samples."""
    best = Alignment(0.0, 0, 0)
    if len(clip) == 0:
        return best
    tops = clip[:, VARIANTS - 1 :]  # the clip's top parts, for the query's
    for mirrored, hashes, upper in (
        (False, query.hashes, query.upper),
        (True, query.mirrored, query.upper_mirrored),
    ):
        for phase in range(QUERY_PHASES):
            part = hashes[phase::QUERY_PHASES]
            if len(part) == 0:
                continue
            d = distances(part, clip)
            if upper is not None:
                d = np.minimum(d, distances(upper[phase::QUERY_PHASES], tops))
            score, offset, overlap = _best_offset(d)
            if score > best.score:
                best = Alignment(score, offset, overlap, mirrored)
    return best


QUERY_WIRE_TYPE = "VideoQueryFingerprint"
MAX_WIRE_SAMPLES = 192
"""A query sent to a peer (:func:`query_to_json`) carries at most its first 12 seconds (at
:data:`QUERY_PHASES` x :data:`RATE`): about 50 KB of hex, enough to align."""


def query_to_json(query: QueryPrint) -> dict[str, Any]:
    """A copy's fingerprint as one instance asks another about it (``POST
    /api/fedisora/v1/provenance/lookup`` with a JSON body): its hashes as they are, mirrored
    and of their top parts, at :data:`QUERY_PHASES` x :data:`RATE` a second. Not its
    watermark reading: a mark is read with its maker's key, which the peer holds, not us."""
    n = MAX_WIRE_SAMPLES
    upper = query.upper if query.upper is not None else query.hashes
    upper_mirrored = query.upper_mirrored if query.upper_mirrored is not None else query.mirrored
    return {
        "type": QUERY_WIRE_TYPE,
        "frameRate": RATE * QUERY_PHASES,
        "phases": QUERY_PHASES,
        "pdqHashes": hashes_to_hex(query.hashes[:n]),
        "mirrored": hashes_to_hex(query.mirrored[:n]),
        "upper": hashes_to_hex(upper[:n]),
        "upperMirrored": hashes_to_hex(upper_mirrored[:n]),
    }


def query_from_json(value: Any) -> QueryPrint:
    """Parse :func:`query_to_json`'s object; ``ValueError`` saying what is wrong otherwise
    (another rate, unequal or too long sequences, not hex)."""
    if not isinstance(value, dict) or value.get("type") != QUERY_WIRE_TYPE:
        raise ValueError(f"the fingerprint must be an object of type {QUERY_WIRE_TYPE}")
    rate, phases = value.get("frameRate"), value.get("phases")
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or rate != RATE * QUERY_PHASES
        or phases != QUERY_PHASES
    ):
        raise ValueError(
            f"the fingerprint must be sampled at {RATE * QUERY_PHASES:g} frames a second "
            f"in {QUERY_PHASES} phases"
        )
    parts = []
    for name in ("pdqHashes", "mirrored", "upper", "upperMirrored"):
        text = value.get(name)
        if not isinstance(text, str) or not text:
            raise ValueError(f"{name} must be a non-empty string of hex PDQ hashes")
        if len(text) > MAX_WIRE_SAMPLES * HASH_BYTES * 2 or len(text) % (HASH_BYTES * 2):
            raise ValueError(
                f"{name} must be at most {MAX_WIRE_SAMPLES} whole PDQ hashes (64 hex digits each)"
            )
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{name} is not hex") from None
        parts.append(np.frombuffer(raw, dtype=np.uint8).reshape(-1, HASH_BYTES).copy())
    if len({len(p) for p in parts}) != 1:
        raise ValueError("the four hash sequences must be equally long")
    hashes, mirrored, upper, upper_mirrored = parts
    return QueryPrint(hashes, mirrored, upper=upper, upper_mirrored=upper_mirrored)
