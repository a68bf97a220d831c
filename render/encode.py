"""Frames to a shareable H.264 MP4, a poster JPEG and its blurhash; and reading MP4s back.

The MP4 is what Mastodon, Loops and PeerTube all play: H.264 High, yuv420p, even
dimensions, CRF about 20, ``moov`` first (``+faststart``) so playback starts before the
download ends. Files are written under a temporary name in the destination directory
and renamed into place, so a reader never sees half a file and a crash leaves no
0-byte output.

PyAV is imported lazily: the web process imports ``render`` without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from render.errors import EncodeError, ProbeError

__all__ = [
    "DEFAULT_CRF",
    "EncodedVideo",
    "VideoProbe",
    "atomic_path",
    "blurhash_of",
    "encode_mp4",
    "middle_frame",
    "probe",
    "sha256_file",
    "write_poster",
]

DEFAULT_CRF = 20
_BLURHASH_MAX_SIDE = 64
"""Blurhash only keeps a few cosine components: hashing a thumbnail gives the same
string as the full poster in a fraction of the (pure-Python) time."""


@dataclass(frozen=True, slots=True)
class EncodedVideo:
    """What ``encode_mp4`` wrote, with the numbers a post's media attachment needs."""

    path: Path
    poster_path: Path
    width: int
    height: int
    fps: int
    frames: int
    duration: float
    size: int
    sha256: str
    blurhash: str


@dataclass(frozen=True, slots=True)
class VideoProbe:
    """What an MP4 on disk actually contains."""

    width: int
    height: int
    fps: float
    frames: int
    duration: float
    codec: str
    pix_fmt: str
    size: int


@contextlib.contextmanager
def atomic_path(dst: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dst``; rename it onto ``dst`` if the block succeeds.

    On any exception the temporary file is removed and ``dst`` is left untouched.
    """
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_frames(frames: Any) -> npt.NDArray[np.uint8]:
    if not isinstance(frames, np.ndarray):
        raise EncodeError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise EncodeError(f"frames must be uint8, got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise EncodeError(f"frames must be shaped (T, H, W, 3), got {frames.shape}")
    t, h, w, _ = frames.shape
    if t < 1 or h < 2 or w < 2:
        raise EncodeError(f"need at least one frame of 2x2 pixels, got {frames.shape}")
    # yuv420p subsamples chroma 2x2, so H.264 needs even sizes: drop an odd last row/column.
    return frames[:, : h - h % 2, : w - w % 2]


def blurhash_of(image: Image.Image, components: tuple[int, int] = (4, 4)) -> str:
    """The blurhash (as Mastodon shows before loading media) of ``image``."""
    import blurhash

    thumb = image.convert("RGB")
    thumb.thumbnail((_BLURHASH_MAX_SIDE, _BLURHASH_MAX_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(thumb).tolist()
    return str(blurhash.encode(pixels, components_x=components[0], components_y=components[1]))


def write_poster(frame: npt.NDArray[np.uint8], dst: Path, *, quality: int = 85) -> Image.Image:
    """Write ``frame`` (H, W, 3 uint8) as a JPEG at ``dst`` atomically; return the image."""
    image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
    with atomic_path(Path(dst)) as tmp:
        image.save(tmp, format="JPEG", quality=quality, optimize=True)
    return image


def encode_mp4(
    frames: npt.NDArray[np.uint8],
    dst: Path | str,
    *,
    fps: int,
    crf: int = DEFAULT_CRF,
    preset: str = "medium",
    poster: Path | str | None = None,
    poster_frame: Literal["first", "middle"] = "middle",
) -> EncodedVideo:
    """Encode uint8 RGB ``frames`` (T, H, W, 3) to an H.264 MP4 at ``dst``.

    The poster JPEG goes to ``poster`` (default: ``dst`` with a .jpg suffix), taken
    from the middle frame by default: diffusion clips often open on a frame that
    is still settling.
    """
    import av

    video = _check_frames(frames)
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= 120:
        raise EncodeError(f"fps must be a whole number from 1 to 120, got {fps!r}")
    if not 0 <= crf <= 51:
        raise EncodeError(f"crf must be from 0 to 51, got {crf}")
    dst = Path(dst)
    poster_path = Path(poster) if poster is not None else dst.with_suffix(".jpg")
    count, height, width, _ = video.shape
    rate = Fraction(fps, 1)

    try:
        with atomic_path(dst) as tmp:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
                stream: Any = out.add_stream("libx264", rate=rate)
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": preset}
                for i in range(count):
                    frame = av.VideoFrame.from_ndarray(video[i], format="rgb24")
                    frame.pts = i
                    frame.time_base = 1 / rate
                    out.mux(stream.encode(frame))
                out.mux(stream.encode(None))  # flush delayed (B-)frames
    except (av.FFmpegError, OSError) as exc:
        raise EncodeError(f"could not write {dst}: {exc}") from exc

    index = 0 if poster_frame == "first" else count // 2
    image = write_poster(video[index], poster_path)
    return EncodedVideo(
        path=dst,
        poster_path=poster_path,
        width=width,
        height=height,
        fps=fps,
        frames=count,
        duration=count / fps,
        size=dst.stat().st_size,
        sha256=sha256_file(dst),
        blurhash=blurhash_of(image),
    )


def probe(path: Path | str, *, decode: bool = True) -> VideoProbe:
    """Read ``path`` as an MP4 and report what it holds.

    Raises ``ProbeError`` when it is missing, not an MP4, has no video stream, or
    (with ``decode``, the default) when its frames do not all decode: a file cut short
    after ``moov`` still opens, so every frame is decoded and counted against the
    count the container declares.
    """
    import av

    path = Path(path)
    try:
        size = path.stat().st_size
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise ProbeError(f"{path} is not a readable video: {exc}") from exc
    with container:
        formats = container.format.name.split(",")
        if "mp4" not in formats:
            raise ProbeError(f"{path} is {container.format.name}, not MP4")
        if not container.streams.video:
            raise ProbeError(f"{path} has no video stream")
        stream = container.streams.video[0]
        declared = int(stream.frames)
        codec = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        pix_fmt = stream.codec_context.pix_fmt or ""
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / 1_000_000
        frames = declared
        if decode:
            try:
                frames = sum(1 for _ in container.decode(stream))
            except av.FFmpegError as exc:
                raise ProbeError(f"{path} is corrupt: {exc}") from exc
            if declared and frames != declared:
                raise ProbeError(
                    f"{path} is truncated or corrupt: {frames} of {declared} frames decode"
                )
    if frames < 1 or width < 1 or height < 1:
        raise ProbeError(f"{path} holds no decodable video")
    return VideoProbe(
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        duration=duration,
        codec=codec,
        pix_fmt=pix_fmt,
        size=size,
    )


def middle_frame(path: Path | str, dst: Path | str) -> Path:
    """Decode the middle frame of the video at ``path`` and save it as a PNG at ``dst``.

    A remix conditions on it (image-to-video from the source clip's own frame). Raises
    ``ProbeError`` when the video cannot be read; the PNG is written atomically.
    """
    info = probe(path, decode=False)
    import av

    wanted = info.frames // 2
    image: Image.Image | None = None
    try:
        with av.open(str(path), "r") as container:
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                image = Image.fromarray(frame.to_ndarray(format="rgb24"))
                if index >= wanted:
                    break
    except av.FFmpegError as exc:
        raise ProbeError(f"{path} is corrupt: {exc}") from exc
    if image is None:
        raise ProbeError(f"{path} holds no decodable video")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        image.convert("RGB").save(tmp, format="PNG")
    return dst
