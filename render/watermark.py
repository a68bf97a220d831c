"""Invisible and visible watermarks for rendered clips.

Invisible mark: a 32-bit id hidden in the luma of every frame, read back without the
original after re-encoding, downscaling and cropping.

Scheme (why this one). The first scheme here (QIM on one DCT coefficient of 8x8-pixel
blocks, kept below as the "block" scheme for reading older clips) is tied to the pixel
grid: a resize or a crop moves every block, and CRF 28 erodes its small lattice steps.
Rather than search a 4-D space of crop offsets and scales for it, the "tile" scheme makes
the geometry recoverable by construction:

- A keyed 32x32 grid of +-1 chips: 256 chips are a fixed synchronisation pattern, 768
  carry a 48-bit word (the id and its CRC-16), each bit on 16 chips scattered by a keyed
  permutation, each chip with a keyed sign. The grid is interpolated, band-limited, into
  a periodic tile whose chips are ``min(H, W) / 64`` pixels (8 px at 480p), so its
  energy lies between periods of 2 and 16 chips: below what 0.5x and CRF 28 remove,
  above most of a frame's own energy. The tile repeats over the frame, the same in every
  frame (static patterns are what H.264's motion prediction keeps best), added equally to
  R, G and B, with its amplitude masked by local activity (more in texture, less in flat
  areas; the RMS change of every frame's luma is ``strength`` levels, 2.5 = 40 dB PSNR:
  on a frame flat all over, a faint fixed texture can be seen from up close).
- Reading averages the luma of all frames (moving content averages out, the static mark
  adds up, and the per-frame cost is one addition), high-passes it, and finds the tile's
  period from the image's autocorrelation (its peaks along x, along y and along both, and
  half of the highest, as there is a peak at twice the period too): this undoes any
  resize, without a list of scales. It folds the image modulo that period into one 64x64
  tile (every copy of the tile, whole or cut, votes), whitens it, and finds the crop
  offset as the peak of the circular cross-correlation with the synchronisation pattern
  (an FFT: every offset at once, to a fraction of a chip). It then reads the 768 chips,
  sums each bit's 16 chips with their signs (soft decision) and accepts the word only when
  its CRC-16 holds and the synchronisation peak stands at least ``_SYNC_Z`` standard
  deviations above the correlation's mean; failing that, it tries the next period
  candidate, then periods 0.4 % and 0.8 % around the best one (an error of a fraction of
  a pixel a period blurs the fold over a few periods).
- Error correction is the spreading itself (16 chips a bit, every tile, every frame),
  Chase decoding (the word as read, then with one or two of its 6 least reliable bits
  flipped: where the sync peak stands, a lost bit is nearly always one of the weakest)
  and the CRC that picks the flip that is a word and refuses the rest. A Reed-Solomon
  or BCH code would cost chips per bit; at the margins measured below it was not needed.

A clip read as unmarked by the tile reader is read again by the block reader, so clips
marked before this scheme still read. The block reader now also votes with 4 decoy keys
and needs a clear lead over them: on small or cut copies (fewer blocks than bits) any key
reads a high margin, which made it read ids from unmarked halved tiny renders.

Measured by ``bench/watermark.py`` (one run, 2-core CPU shared with other work): 50
synthetic natural-looking 832x480 clips (the real families' size) of 33 frames at 16 fps
(1/f colour textures, hard-edged shapes, sometimes a flat sky, grain, a pan, a slow zoom
and a moving object), each marked with a random id, encoded by our encoder (CRF 20), then
transformed and re-encoded with libx264 preset medium. "Crop" keeps 90 % of each side at a
random offset; "0.5x" is an area downscale. The old block scheme on the first 10 clips:

| transformation                 | tile: id read (wrong) | block (old): id read |
|--------------------------------|-----------------------|----------------------|
| none (our CRF 20)              | 50 of 50 (0)          | 10 of 10             |
| 0.5x, CRF 23                   | 50 of 50 (0)          | 0 of 10              |
| crop 10 %, CRF 23              | 50 of 50 (0)          | 0 of 10              |
| CRF 28                         | 50 of 50 (0)          | 0 of 10              |
| crop, then 0.5x, then CRF 28   | 49 of 50 (0)          | 0 of 10              |

- Unmarked: the same 50 clips unmarked through the same 5 transformations: 0 ids read
  in 250. Their sync peaks reached 5.5 (marked copies: median 9.0 to 10.6, least 5.3),
  so the sync threshold alone is not the guard: the CRC is. A false read needs a sync
  peak of at least 5.5 and one of the 22 Chase words to pass the CRC-16, about 3.4e-4
  for each fold of an unmarked clip that clears 5.5, which the highest of 250 reads here
  only just did: of the order of 1e-6 a clip, not measurable at this size.
- Luma PSNR of the marked frames: 40.2 dB mean, 40.1 least.
- Cost per 832x480 frame, the same 33 frames, median of 5 alternating rounds
  (``--cost-only``): embedding 3.3 ms (block: 34.0 ms, ratio 0.10); reading a marked clip
  1.7 ms (block: 5.2 ms, ratio 0.33). A clip without a tile mark goes through both
  readers: 7.9 ms, 1.5x the block reader alone (embed + read still 0.3x the block's).
- The tiny model's 64x112 frames (5 renders): our encode and the crop read 5 of 5, CRF 28
  3 of 5, 0.5x and all three none (its chips are 2 px), and none read wrong. The
  robustness above needs real output sizes.

It is still not proof: someone who knows the scheme can estimate a static pattern by
averaging many clips of one instance and subtract it. It is a pointer to a copy's
origin for moderation and for provenance lookups, alongside the C2PA manifest (which
any re-encode strips) and the perceptual fingerprint.

Visible mark: the instance and creator names drawn with Pillow, semi-transparent, and
drifting slowly across the frame so it cannot be cropped out in one cut (as Sora does).
Apply the visible mark first, then the invisible one, so the id covers every pixel.
"""

from __future__ import annotations

import binascii
import hashlib
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "DEFAULT_STRENGTH",
    "ID_BITS",
    "LEGACY_STRENGTH",
    "WatermarkReading",
    "apply_visible_mark",
    "bit_votes",
    "block_bit_accuracy",
    "embed_id",
    "embed_id_legacy",
    "read_id",
    "read_id_legacy",
]

ID_BITS = 32
DEFAULT_STRENGTH = 2.5
"""RMS change of the luma, in levels, made by the tile mark: 2.5 is 40 dB PSNR."""
LEGACY_STRENGTH = 48.0
"""QIM step of the block scheme (luma PSNR near 43 dB)."""

Frames = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]

# BT.601 luma, as the encoder's rgb24 -> yuv420p conversion weighs it.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class WatermarkReading:
    id: int
    confidence: float
    """Tile: the synchronisation peak's z-score / 10, at most 1 (unmarked clips reached
    0.55, marked ones 0.9 to 1 at the median); block: the mean vote margin over the bits,
    0 (coin toss) to 1 (unanimous). ``likely_marked``, not this, says whether it is."""
    weakest_bit: float
    """Tile: the weakest bit's soft value over the mean one; block: the smallest per-bit
    vote margin. Near 0 means at least one bit was nearly a guess."""
    scheme: str = "tile"
    """"tile" (read and CRC-checked), "block" (the older scheme) or "" (nothing read)."""
    sync_z: float = 0.0
    """The tile reader's best synchronisation peak, in standard deviations (accepted from
    ``_SYNC_Z`` when the CRC also holds; unmarked clips reached 5.5 in the bench)."""

    @property
    def likely_marked(self) -> bool:
        """Whether an id was read. Tile: the sync peak and the CRC held; block: the vote
        margin reached 0.5 (marked clips read 0.8 and more, unmarked ones about 0.07) and
        led every decoy key's by 0.3 (``read_id_legacy``)."""
        return self.scheme in ("tile", "block")


def _keyed_rng(purpose: bytes, key: bytes) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(purpose + b"\0" + key).digest()[:8], "big")
    return np.random.default_rng(seed)


def _check(frames: Frames) -> tuple[int, int]:
    """Validate ``frames``; return the height and width covered by whole 8x8 blocks."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError("frames must be a uint8 numpy array")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (T, H, W, 3), got {frames.shape}")
    side = 2 * _BLOCK  # a block of the half-resolution LL band covers 8x8 pixels
    hb, wb = frames.shape[1] // side * side, frames.shape[2] // side * side
    if hb == 0 or wb == 0 or frames.shape[0] == 0:
        raise ValueError(f"frames of {frames.shape[2]}x{frames.shape[1]} are too small")
    return hb, wb


def _check_id(ident: int) -> None:
    if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident < 2**ID_BITS:
        raise ValueError(f"id must be an integer from 0 to {2**ID_BITS - 1}, got {ident!r}")


# --------------------------------------------------------------------------- tile scheme

_CHIPS = 32  # the tile is _CHIPS x _CHIPS chips
_SYNC_CHIPS = 256
_CRC_BITS = 16
_WORD_BITS = ID_BITS + _CRC_BITS
_FOLD = 2 * _CHIPS  # the reader's folded tile: 2 samples a chip
_LOW = 2  # frequencies below 2 cycles a tile are left out: content owns them
_CHIP_DIVISOR = 64  # chip side = min(H, W) / 64, at least 2 px
_SYNC_Z = 5.5
"""Least z-score of the sync peak to try a word (the CRC decides). Unmarked clips peaked
at 3.3 to 5.5 (the maximum of 4096 near-normal offsets over a few period candidates);
marked ones after crop + 0.5x + CRF 28 at a median of 9.0 (see the module doc)."""
_CHASE = 6  # least reliable bits Chase decoding may flip (one or two of them)
_WHITEN = 5  # box size, in frequency bins, of the folded tile's spectral envelope


def _chip_side(height: int, width: int) -> int:
    return max(2, round(min(height, width) / _CHIP_DIVISOR))


@lru_cache(maxsize=8)
def _layout(key: bytes) -> tuple[_F64, _I64]:
    """Per chip: its keyed sign, and the word bit it carries (-1: a sync chip)."""
    n = _CHIPS * _CHIPS
    perm = _keyed_rng(b"fedisora-wm-tile-perm", key).permutation(n)
    signs = _keyed_rng(b"fedisora-wm-tile-sign", key).choice(np.array([-1.0, 1.0]), n)
    bit_of = np.full(n, -1, dtype=np.int64)
    bit_of[perm[_SYNC_CHIPS:]] = np.arange(n - _SYNC_CHIPS) % _WORD_BITS
    return signs, bit_of


def _crc(ident: int) -> int:
    return binascii.crc_hqx(ident.to_bytes(4, "big"), 0x1D0F)


def _word(ident: int) -> _I64:
    word = (ident << _CRC_BITS) | _crc(ident)
    return np.asarray((word >> np.arange(_WORD_BITS)) & 1, dtype=np.int64)


def _band() -> tuple[_I64, _I64]:
    """Frequency indices (row, column) of a chip grid's spectrum the tile keeps."""
    k = np.fft.fftfreq(_CHIPS, 1 / _CHIPS).astype(np.int64)
    kk, ll = np.meshgrid(k, k, indexing="ij")
    keep = (np.abs(kk) < _CHIPS // 2) & (np.abs(ll) < _CHIPS // 2)
    keep &= kk**2 + ll**2 >= _LOW**2
    return kk[keep], ll[keep]


def _interpolate(grid: _F64, n: int) -> _F64:
    """Band-limited periodic interpolation of a chip grid to an n x n tile."""
    kk, ll = _band()
    spectrum = np.fft.fft2(grid)
    out = np.zeros((n, n), dtype=np.complex128)
    out[kk % n, ll % n] = spectrum[kk % _CHIPS, ll % _CHIPS]
    return np.asarray(np.real(np.fft.ifft2(out)) * (n * n) / grid.size)


def _chips_of(spectrum: npt.NDArray[np.complex128]) -> _F64:
    """The chip grid estimate from a folded tile's (aligned) spectrum: the adjoint of
    ``_interpolate``, i.e. keep the band and go back to the chip grid."""
    n = spectrum.shape[0]
    kk, ll = _band()
    grid = np.zeros((_CHIPS, _CHIPS), dtype=np.complex128)
    grid[kk % _CHIPS, ll % _CHIPS] = spectrum[kk % n, ll % n]
    return np.asarray(np.real(np.fft.ifft2(grid)).ravel())


@lru_cache(maxsize=16)
def _tile(ident: int, key: bytes, side: int) -> _F32:
    """The mark's tile (side x side pixels), unit RMS."""
    signs, bit_of = _layout(key)
    bits = _word(ident)
    values = signs * np.where(bit_of < 0, 1.0, 2.0 * bits[np.maximum(bit_of, 0)] - 1.0)
    tile = _interpolate(values.reshape(_CHIPS, _CHIPS), side)
    return np.asarray(tile / tile.std(), dtype=np.float32)


@lru_cache(maxsize=8)
def _sync_spectrum(key: bytes) -> npt.NDArray[np.complex128]:
    signs, bit_of = _layout(key)
    grid = np.where(bit_of < 0, signs, 0.0).reshape(_CHIPS, _CHIPS)
    return np.fft.fft2(_interpolate(grid, _FOLD))


def _activity_mask(luma: _F32) -> _F32:
    """Per-pixel gain, 0.6 in flat areas to 1.6 in texture, from the local standard
    deviation on an 8x smaller copy (cheap), scaled to a mean square of 1: every frame
    gets ``strength`` RMS. (Scaling only down, so that a flat frame got less, lost the id
    of 2 in 16 short tiny-model clips after our own encode.)"""
    import cv2

    h, w = luma.shape
    small = cv2.resize(luma, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    mean = cv2.blur(small, (3, 3))
    var = cv2.blur(small * small, (3, 3)) - mean * mean
    gain = np.clip(0.6 + np.sqrt(np.maximum(var, 0)) / 12.0, 0.6, 1.6)
    gain = gain / np.sqrt(np.mean(gain * gain))
    return np.asarray(cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR))


def embed_id(
    frames: Frames, ident: int, *, key: bytes = b"", strength: float = DEFAULT_STRENGTH
) -> Frames:
    """Return a copy of ``frames`` (T, H, W, 3 uint8) carrying the 32-bit ``ident``.

    ``key`` (an instance secret) decides the chips' signs and which chips carry which
    bit; ``strength`` is the RMS change of the luma in levels (see the module doc).
    """
    _check(frames)
    _check_id(ident)
    t, h, w, _ = frames.shape
    side = _CHIPS * _chip_side(h, w)
    tile = _tile(ident, key, side)
    pattern = np.tile(tile, (-(-h // side), -(-w // side)))[:h, :w] * np.float32(strength)
    out = np.empty_like(frames)
    for i in range(t):  # frame by frame: a float copy of a whole clip is hundreds of MB
        frame = frames[i].astype(np.float32)
        delta = pattern * _activity_mask(frame @ _LUMA)
        frame += delta[..., None]  # equal R, G, B shifts: luma only
        np.rint(frame, out=frame)
        np.clip(frame, 0, 255, out=frame)
        out[i] = frame
    return out


def _mean_luma(frames: Frames) -> _F32:
    total = frames.sum(axis=0, dtype=np.float32) / np.float32(frames.shape[0])
    return np.asarray(total @ _LUMA, dtype=np.float32)


def _periods(
    image: _F32, lo: int, hi_x: int, hi_y: int
) -> tuple[list[float], list[float], list[float]]:
    """Candidate periods along x, along y and along both (a resize is nearly always the
    same on both axes, and their sum is the surer peak): the highest local maxima of the
    image's (linear, overlap-normalised) autocorrelation between ``lo`` and ``hi``,
    refined to a fraction of a pixel by a parabola, best first."""
    h, w = image.shape
    spectrum = np.fft.rfft2(image, s=(2 * h, 2 * w))
    auto = np.fft.irfft2(np.abs(spectrum) ** 2, s=(2 * h, 2 * w))
    ax = auto[0, :w] / (w - np.arange(w))
    ay = auto[:h, 0] / (h - np.arange(h))
    both = min(hi_x, hi_y)
    iso = ax[:both] / (ax[0] + 1e-12) + ay[:both] / (ay[0] + 1e-12)
    return _peaks(ax, lo, hi_x), _peaks(ay, lo, hi_y), _peaks(iso, lo, both)


def _peaks(a: _F64, lo: int, hi: int, count: int = 3) -> list[float]:
    lo, hi = max(lo, 1), min(hi, len(a) - 1)
    found = [i for i in range(lo, hi) if a[i] >= a[i - 1] and a[i] >= a[i + 1]]
    found.sort(key=lambda i: -a[i])
    out = []
    for i in found[:count]:
        den = a[i - 1] - 2 * a[i] + a[i + 1]
        out.append(i + (0.5 * (a[i - 1] - a[i + 1]) / den if den else 0.0))
    return out


def _fold(image: _F32, px: float, py: float) -> _F64:
    """Average ``image`` modulo the periods into one _FOLD x _FOLD tile."""
    h, w = image.shape
    u = np.floor((np.arange(w) % px) / px * _FOLD).astype(np.int64) % _FOLD
    v = np.floor((np.arange(h) % py) / py * _FOLD).astype(np.int64) % _FOLD
    index = (v[:, None] * _FOLD + u[None, :]).ravel()
    sums = np.bincount(index, weights=image.ravel(), minlength=_FOLD * _FOLD)
    counts = np.bincount(index, minlength=_FOLD * _FOLD)
    return np.asarray((sums / np.maximum(counts, 1)).reshape(_FOLD, _FOLD))


def _subpixel(a: float, b: float, c: float) -> float:
    den = a - 2 * b + c
    return 0.5 * (a - c) / den if den else 0.0


def _decode_tile(tile: _F64, key: bytes) -> tuple[int | None, float, float]:
    """(id or None, sync z-score, weakest bit / mean bit) of one folded tile."""
    import cv2

    spectrum = np.fft.fft2(tile)
    # Whiten: divide by a smoothed magnitude, so the content left in the fold (strong at
    # low frequencies) does not outvote the mark's flat spectrum.
    envelope = cv2.blur(
        np.fft.fftshift(np.abs(spectrum)).astype(np.float32),
        (_WHITEN, _WHITEN),
        borderType=cv2.BORDER_REFLECT,
    )
    spectrum = spectrum / (np.fft.ifftshift(envelope) + 1e-6)
    corr = np.real(np.fft.ifft2(spectrum * np.conj(_sync_spectrum(key))))
    z = (corr - corr.mean()) / (corr.std() + 1e-12)
    iy, ix = np.unravel_index(int(np.argmax(z)), z.shape)
    peak = float(z[iy, ix])
    n = _FOLD
    dy = iy + _subpixel(z[(iy - 1) % n, ix], z[iy, ix], z[(iy + 1) % n, ix])
    dx = ix + _subpixel(z[iy, (ix - 1) % n], z[iy, ix], z[iy, (ix + 1) % n])
    k = np.fft.fftfreq(n, 1 / n)
    aligned = spectrum * np.exp(2j * np.pi * (k[:, None] * dy + k[None, :] * dx) / n)
    signs, bit_of = _layout(key)
    chips = _chips_of(aligned) * signs
    data = bit_of >= 0
    soft = np.bincount(bit_of[data], weights=chips[data], minlength=_WORD_BITS)
    weakest = float(np.abs(soft).min() / (np.abs(soft).mean() + 1e-12))
    if peak < _SYNC_Z:
        return None, peak, weakest
    word = sum(1 << i for i in range(_WORD_BITS) if soft[i] > 0)
    for flips in _chase_flips(np.abs(soft)):
        ident, crc = (word ^ flips) >> _CRC_BITS, (word ^ flips) & ((1 << _CRC_BITS) - 1)
        if _crc(ident) == crc:
            return ident, peak, weakest
    return None, peak, weakest


def _chase_flips(reliability: _F64) -> list[int]:
    """Chase decoding: the word as read, then with one or two of its ``_CHASE`` least
    reliable bits flipped, most likely first. Where the sync peak stands, one bit is
    often just wrong (its soft value near 0) while the rest are sure; the CRC picks the
    flip that is a word. Each extra test is one more chance of a CRC collision, so they
    are few: 22 tests, at most 22 / 65536 = 3.4e-4 of a wrong id on a copy damaged past
    reading (none seen in the bench)."""
    weak = [int(i) for i in np.argsort(reliability)[:_CHASE]]
    tests = [(0.0, 0)]
    for a in range(len(weak)):
        tests.append((reliability[weak[a]], 1 << weak[a]))
        for b in range(a + 1, len(weak)):
            cost = reliability[weak[a]] + reliability[weak[b]]
            tests.append((cost, (1 << weak[a]) | (1 << weak[b])))
    return [mask for _, mask in sorted(tests)]


def _read_tile(frames: Frames, key: bytes) -> tuple[int | None, float, float]:
    """The tile reader: (id or None, best sync z-score, weakest bit)."""
    import cv2

    luma = _mean_luma(frames)
    h, w = luma.shape
    short = min(h, w)
    image = luma - cv2.GaussianBlur(luma, (0, 0), max(1.0, short / _CHIP_DIVISOR))
    # The tile is half the short side of the frame it was made for (32 chips of 1/64):
    # a crop of up to a third, or a resize of any amount, leaves it in this range.
    xs, ys, iso = _periods(image, short // 4, min(int(0.85 * w), short * 6 // 5), int(0.85 * h))
    candidates = [(p, p) for p in iso]
    for px in xs:
        candidates += [(px, py) for py in ys if 0.8 < px / py < 1.25]  # a little anamorphic
        candidates.append((px, px))
    candidates += [(py, py) for py in ys[:2]]  # too few periods across: trust the other axis
    # Twice the period is a peak too, and sometimes the higher one.
    candidates += [(p / 2, p / 2) for p in iso[:1] + xs[:1] if p / 2 >= short // 4]
    side = float(_CHIPS * _chip_side(h, w))
    candidates.append((side, side))  # neither resized nor cropped
    best, weakest, best_at = 0.0, 0.0, (side, side)
    tried: list[tuple[float, float]] = []
    for px, py in candidates:
        if any(abs(px - x) < 0.003 * x and abs(py - y) < 0.003 * y for x, y in tried):
            continue
        tried.append((px, py))
        ident, peak, weak = _decode_tile(_fold(image, px, py), key)
        if ident is not None:
            return ident, peak, weak
        if peak > best:
            best, weakest, best_at = peak, weak, (px, py)
    # The estimate is off by a fraction of a pixel a period; across a few periods that
    # blurs the fold. Try a little around the best one.
    for f in (0.996, 1.004, 0.992, 1.008):
        ident, peak, weak = _decode_tile(_fold(image, best_at[0] * f, best_at[1] * f), key)
        if ident is not None:
            return ident, peak, weak
        if peak > best:
            best, weakest = peak, weak
    return None, best, weakest


def read_id(frames: Frames, *, key: bytes = b"") -> WatermarkReading:
    """Read the id: the tile reader first, then (for clips marked before it) the block one.

    Nothing read gives ``scheme=""`` and ``likely_marked`` False.
    """
    _check(frames)
    ident, peak, weakest = _read_tile(frames, key)
    if ident is not None:
        return WatermarkReading(ident, min(1.0, peak / 10), weakest, "tile", peak)
    legacy = read_id_legacy(frames, key=key)
    if legacy.likely_marked:
        return replace(legacy, sync_z=peak)
    return WatermarkReading(0, min(1.0, peak / 10), 0.0, "", peak)


# --------------------------------------------------------------------------- block scheme
# The first scheme, kept to read clips marked before the tile scheme (and to measure it):
# one-level Haar DWT of the luma, 4x4 DCT blocks of the LL band, dither-modulation QIM on
# one low-frequency AC coefficient per block, each block one bit of the id, a keyed
# permutation spreading every bit over many blocks, a majority vote over all blocks of all
# frames. Survives our CRF 20 encode; not resizing, cropping or CRF 28.

_BLOCK = 4
_COEFF = (0, 1)  # the lowest horizontal AC of each block: what H.264 keeps best


def _dct_row(k: int) -> _F64:
    n = np.arange(_BLOCK)
    scale = np.sqrt((1 if k == 0 else 2) / _BLOCK)
    return np.asarray(scale * np.cos(np.pi * (2 * n + 1) * k / (2 * _BLOCK)))


# The orthonormal 4x4 DCT basis image of the marked coefficient: reading the coefficient
# is a dot product with it, and changing the coefficient adds a multiple of it.
_BASIS = np.outer(_dct_row(_COEFF[0]), _dct_row(_COEFF[1])).astype(np.float32)


def _bit_map(blocks: int, key: bytes) -> _I64:
    """Which id bit each block carries: a keyed shuffle of an even round-robin."""
    return _keyed_rng(b"fedisora-wm-map", key).permutation(np.arange(blocks) % ID_BITS)


def _dither(blocks: int, key: bytes, step: float) -> _F64:
    """A keyed per-block offset of the QIM lattice, so the change is not a regular grid."""
    return _keyed_rng(b"fedisora-wm-dither", key).uniform(0, step, blocks)


def _coefficients(frames: Frames, hb: int, wb: int) -> _F32:
    """The marked DCT coefficient of every LL block: shape (T, blocks)."""
    t = frames.shape[0]
    y = frames[:, :hb, :wb, :].astype(np.float32) @ _LUMA
    # Orthonormal Haar LL: (a + b + c + d) / 2 over each 2x2 square.
    ll = y.reshape(t, hb // 2, 2, wb // 2, 2).sum(axis=(2, 4)) / 2
    tiles = ll.reshape(t, hb // 2 // _BLOCK, _BLOCK, wb // 2 // _BLOCK, _BLOCK)
    coeffs: _F32 = np.einsum("tiajb,ab->tij", tiles, _BASIS).reshape(t, -1)
    return coeffs


def embed_id_legacy(
    frames: Frames, ident: int, *, key: bytes = b"", strength: float = LEGACY_STRENGTH
) -> Frames:
    """The block scheme's embedder: kept for tests and ``bench/watermark.py``."""
    hb, wb = _check(frames)
    _check_id(ident)
    t = frames.shape[0]
    c = _coefficients(frames, hb, wb)
    n = c.shape[1]
    bits = (ident >> _bit_map(n, key)) & 1
    offset = (_dither(n, key, strength) + bits * (strength / 2)).astype(np.float32)
    change = np.round((c - offset) / strength) * strength + offset - c
    # Only LL changes, by change x basis per block; the inverse Haar spreads an LL change
    # of d over its 2x2 pixels as d / 2 each.
    bh, bw = hb // 2 // _BLOCK, wb // 2 // _BLOCK
    d_ll = change.reshape(t, bh, 1, bw, 1) * _BASIS[None, None, :, None, :]
    d_ll = d_ll.reshape(t, hb // 2, wb // 2) / 2
    delta = np.repeat(np.repeat(d_ll, 2, axis=1), 2, axis=2)
    out = frames.astype(np.float32)
    out[:, :hb, :wb, :] += delta[..., None]  # equal R, G, B shifts: luma only
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _decide(c: _F32, key: bytes, strength: float) -> tuple[_I64, _I64]:
    """The bit each block reads as (T, blocks), and which id bit each block carries."""
    n = c.shape[1]
    phase = np.mod((c - _dither(n, key, strength)) / strength, 1.0)
    # Lattice 0 sits at phase 0 (or 1), lattice 1 at phase 0.5.
    decided = ((phase > 0.25) & (phase < 0.75)).astype(np.int64)
    return decided, _bit_map(n, key)


def _block_bits(frames: Frames, key: bytes, strength: float) -> tuple[_I64, _I64]:
    hb, wb = _check(frames)
    return _decide(_coefficients(frames, hb, wb), key, strength)


def _votes(decided: _I64, bit_of_block: _I64) -> _F64:
    signed = (2 * decided - 1).sum(axis=0)
    votes = np.bincount(bit_of_block, weights=signed, minlength=ID_BITS)
    counts = np.bincount(bit_of_block, minlength=ID_BITS) * decided.shape[0]
    return np.asarray(votes / np.maximum(counts, 1), dtype=np.float64)


def bit_votes(frames: Frames, *, key: bytes = b"", strength: float = LEGACY_STRENGTH) -> _F64:
    """Block scheme: per-bit vote in [-1, 1] (positive means 1) over all blocks."""
    return _votes(*_block_bits(frames, key, strength))


_DECOYS = 4
_DECOY_GAP = 0.3


def read_id_legacy(
    frames: Frames, *, key: bytes = b"", strength: float = LEGACY_STRENGTH
) -> WatermarkReading:
    """The block scheme's reader: a majority vote over every block of every frame.

    The votes are also taken with a few decoy keys: on small or cut frames (few blocks a
    bit, the same vote repeated by similar frames) any key reads a high margin, so the
    reading counts as marked (``scheme="block"``) only if the real key's mean margin is
    at least 0.5 and ``_DECOY_GAP`` above every decoy's; otherwise ``scheme=""``.
    """
    hb, wb = _check(frames)
    c = _coefficients(frames, hb, wb)
    votes = _votes(*_decide(c, key, strength))
    ident = sum(1 << i for i, v in enumerate(votes) if v > 0)
    margins = np.abs(votes)
    confidence = float(margins.mean())
    marked = confidence >= 0.5  # the decoys only when it matters: most clips stop here
    if marked:
        decoys = [
            float(np.abs(_votes(*_decide(c, key + b"\0decoy" + bytes([i]), strength))).mean())
            for i in range(_DECOYS)
        ]
        marked = confidence >= max(decoys) + _DECOY_GAP
    return WatermarkReading(
        id=ident,
        confidence=confidence,
        weakest_bit=float(margins.min()),
        scheme="block" if marked else "",
    )


def block_bit_accuracy(
    frames: Frames, ident: int, *, key: bytes = b"", strength: float = LEGACY_STRENGTH
) -> float:
    """Block scheme: share of single blocks (before any vote) that read ``ident`` right."""
    decided, bit_of_block = _block_bits(frames, key, strength)
    truth = (ident >> bit_of_block) & 1
    return float((decided == truth[None, :]).mean())


# --------------------------------------------------------------------------- visible mark


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def apply_visible_mark(
    frames: Frames, *, instance: str, creator: str, opacity: float = 0.55
) -> Frames:
    """Draw "instance · @creator" on every frame, drifting corner to corner over the clip."""
    _check(frames)
    if not 0 < opacity <= 1:
        raise ValueError("opacity must be in (0, 1]")
    t, h, w, _ = frames.shape
    text = f"{instance} \u00b7 @{creator}" if creator else instance
    font = _font(max(8, min(h, w) // 14))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.textbbox((0, 0), text, font=font, stroke_width=1)
    left, top, right, bottom = (math.floor(box[0]), math.floor(box[1]), *map(math.ceil, box[2:]))
    tw, th = right - left + 2, bottom - top + 2
    # Text and a dark outline on an alpha mask, rendered once and moved per frame.
    mask = Image.new("LA", (tw, th), (0, 0))
    ImageDraw.Draw(mask).text(
        (1 - left, 1 - top),
        text,
        font=font,
        fill=(255, 255),
        stroke_width=1,
        stroke_fill=(0, 255),
    )
    layer = np.asarray(mask, dtype=np.float64)
    shade, alpha = layer[..., 0:1], layer[..., 1:2] / 255.0 * opacity
    margin = max(2, min(h, w) // 40)
    x0, y0 = margin, margin
    x1, y1 = max(margin, w - tw - margin), max(margin, h - th - margin)
    out = frames.copy()
    for i in range(t):
        # Top-left to bottom-right and back once over the clip (a triangle wave).
        s = 1 - abs(1 - 2 * i / max(t - 1, 1))
        x, y = round(x0 + (x1 - x0) * s), round(y0 + (y1 - y0) * s)
        region = out[i, y : y + th, x : x + tw].astype(np.float64)
        a = alpha[: region.shape[0], : region.shape[1]]
        blended = region * (1 - a) + shade[: region.shape[0], : region.shape[1]] * a
        out[i, y : y + th, x : x + tw] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
