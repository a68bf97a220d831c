"""Frames (and a sound track) to a shareable H.264/AAC MP4, a poster JPEG and its blurhash;
and reading MP4s back.

The MP4 is what Mastodon, Loops and PeerTube all play: H.264 High, yuv420p, even
dimensions, CRF about 20, ``moov`` first (``+faststart``) so playback starts before the
download ends. Files are written under a temporary name in the destination directory
and renamed into place, so a reader never sees half a file and a crash leaves no
0-byte output.

Sound (families that render it, LTX-2) goes in as AAC-LC, in sync with the picture: both
streams start at 0, and the track is cut or padded with silence to the clip's exact length
(``frames / fps``) before encoding, so it is never longer than the clip (the MP4's edit list
hides the encoder's priming; its last frame's padding is not counted in the stream duration).
It is loudness-normalised first: see :func:`normalize_loudness` and :data:`TARGET_LUFS`.

PyAV is imported lazily: the web process imports ``render`` without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import warnings
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
    "AAC_BITRATE",
    "DEFAULT_CRF",
    "PEAK_CEILING_DBFS",
    "TARGET_LUFS",
    "AudioProbe",
    "EncodedVideo",
    "VideoProbe",
    "atomic_path",
    "blurhash_of",
    "encode_mp4",
    "fit_audio",
    "integrated_loudness",
    "middle_frame",
    "normalize_loudness",
    "probe",
    "sha256_file",
    "write_poster",
]

DEFAULT_CRF = 20
TARGET_LUFS = -16.0
"""Integrated loudness (ITU-R BS.1770-4 / EBU R128, in LUFS) every sound track is brought to:
what Apple and most podcast/social platforms recommend for content played on phones, where
these clips are watched; a clip from any model plays as loud as the one before it."""
PEAK_CEILING_DBFS = -1.0
"""The sample peak a normalised track may reach. A track whose peaks would pass it at
:data:`TARGET_LUFS` is turned up only as far as the ceiling allows (quieter than the
target, never clipped): this is a gain, not a limiter."""
AAC_BITRATE = 128_000
_SILENCE_LUFS = -70.0
"""BS.1770's absolute gate: a track quieter than this is silence and is left alone."""
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
    audio_loudness: float | None = None
    """Integrated loudness (LUFS) of the sound track as it went into the encoder, after
    normalising; ``None`` for a silent clip (no track, or a silent one: -inf)."""


@dataclass(frozen=True, slots=True)
class AudioProbe:
    """An MP4's sound track, as its container declares it."""

    codec: str
    sample_rate: int
    channels: int
    start: float
    """Seconds from the file's start to the track's first sample (0 when in sync)."""
    duration: float


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
    start: float = 0.0
    """Seconds from the file's start to the first frame."""
    audio: AudioProbe | None = None
    """The first sound track, or ``None`` for a silent clip."""


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


def _check_audio(audio: Any, sample_rate: Any) -> npt.NDArray[np.float32]:
    """``audio`` as float32 (channels, samples), one or two channels, finite."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise EncodeError(f"sample_rate must be a whole number, got {sample_rate!r}")
    if not 8000 <= sample_rate <= 96000:
        raise EncodeError(f"sample_rate must be from 8000 to 96000 Hz, got {sample_rate}")
    if not isinstance(audio, np.ndarray) or audio.dtype.kind != "f":
        raise EncodeError("audio must be a float numpy array (channels, samples)")
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise EncodeError(f"audio must be shaped (1 or 2 channels, samples), got {audio.shape}")
    if not np.isfinite(audio).all():
        raise EncodeError("audio holds NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def fit_audio(
    audio: npt.NDArray[np.float32], sample_rate: int, duration: float
) -> npt.NDArray[np.float32]:
    """``audio`` (channels, samples) cut, or padded with silence, to ``duration`` seconds.

    A model's sound comes out a few milliseconds off the clip's length (LTX-2's vocoder
    rounds to its latent steps and its causal decoder drops a few); the clip's length is
    the picture's, ``frames / fps``, and sound never plays past it.
    """
    wanted = round(duration * sample_rate)
    have = audio.shape[1]
    if have >= wanted:
        return audio[:, :wanted]
    return np.pad(audio, ((0, 0), (0, wanted - have)))


def integrated_loudness(audio: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Integrated loudness of ``audio`` (channels, samples) in LUFS (ITU-R BS.1770-4: K-weighting,
    400 ms blocks, absolute and relative gates), by pyloudnorm; ``-inf`` for silence.

    BS.1770 needs one 400 ms block: a shorter track (a 9-frame clip lasts 375 ms) is measured
    looped to 400 ms, which for a track that short is the loudness a listener hears.
    """
    import pyloudnorm

    data = audio.T.astype(np.float64)  # pyloudnorm wants (samples, channels)
    block = int(np.ceil(0.4 * sample_rate)) + 1
    if 0 < data.shape[0] < block:
        data = np.resize(data, (block, data.shape[1])) if data.ndim == 2 else np.resize(data, block)
    if data.shape[0] == 0 or not np.any(data):
        return float("-inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible clipped samples" for a loud input
        return float(pyloudnorm.Meter(sample_rate).integrated_loudness(data))


def normalize_loudness(
    audio: npt.NDArray[np.float32],
    sample_rate: int,
    *,
    target: float = TARGET_LUFS,
    ceiling: float = PEAK_CEILING_DBFS,
) -> tuple[npt.NDArray[np.float32], float]:
    """``audio`` scaled to ``target`` LUFS integrated, its sample peak kept at or under
    ``ceiling`` dBFS; returns it and its loudness afterwards (``-inf`` for silence, which is
    returned as it came: there is nothing to bring up)."""
    measured = integrated_loudness(audio, sample_rate)
    if not np.isfinite(measured) or measured < _SILENCE_LUFS:
        return audio, measured
    gain_db = target - measured
    peak = float(np.max(np.abs(audio)))
    headroom_db = ceiling - 20.0 * np.log10(peak)
    gain_db = min(gain_db, headroom_db)
    scaled = (audio * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    return scaled, measured + gain_db


def _encode_sound(
    av: Any, out: Any, track: Any, sound: npt.NDArray[np.float32], rate: int, i: int, fps: int
) -> None:
    """Encode the samples that play during video frame ``i`` (the last frame takes the rest)."""
    total = sound.shape[1]
    start = min(total, i * rate // fps)
    end = total if (i + 2) * rate // fps > total else (i + 1) * rate // fps
    if end <= start:
        return
    chunk = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(sound[:, start:end]), format="fltp", layout=track.layout
    )
    chunk.sample_rate = rate
    chunk.pts = start
    chunk.time_base = Fraction(1, rate)
    out.mux(track.encode(chunk))


def encode_mp4(
    frames: npt.NDArray[np.uint8],
    dst: Path | str,
    *,
    fps: int,
    crf: int = DEFAULT_CRF,
    preset: str = "medium",
    poster: Path | str | None = None,
    poster_frame: Literal["first", "middle"] = "middle",
    audio: npt.NDArray[np.float32] | None = None,
    sample_rate: int | None = None,
    loudness_target: float = TARGET_LUFS,
) -> EncodedVideo:
    """Encode uint8 RGB ``frames`` (T, H, W, 3) to an H.264 MP4 at ``dst``.

    With ``audio`` (float samples in [-1, 1], (channels, samples) or (samples,), at
    ``sample_rate`` Hz) the MP4 gets an AAC track: fitted to the clip's length
    (:func:`fit_audio`), normalised to ``loudness_target`` LUFS (:func:`normalize_loudness`),
    starting with the first frame. The poster JPEG goes to ``poster`` (default: ``dst`` with
    a .jpg suffix), taken from the middle frame by default: diffusion clips often open on a
    frame that is still settling.
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
    sound: npt.NDArray[np.float32] | None = None
    loudness: float | None = None
    if audio is not None:
        sound = fit_audio(_check_audio(audio, sample_rate), int(sample_rate or 0), count / fps)
        sound, loudness = normalize_loudness(sound, int(sample_rate or 0), target=loudness_target)
        if not np.isfinite(loudness):
            loudness = None

    try:
        with atomic_path(dst) as tmp:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
                stream: Any = out.add_stream("libx264", rate=rate)
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": preset}
                track: Any = None
                if sound is not None:
                    layout = "stereo" if sound.shape[0] == 2 else "mono"
                    track = out.add_stream("aac", rate=sample_rate, layout=layout)
                    track.bit_rate = AAC_BITRATE
                for i in range(count):
                    frame = av.VideoFrame.from_ndarray(video[i], format="rgb24")
                    frame.pts = i
                    frame.time_base = 1 / rate
                    out.mux(stream.encode(frame))
                    if track is not None and sound is not None:
                        # The sound of this frame's interval, from pts 0: the muxer keeps
                        # the two streams interleaved by time (PyAV re-chunks the samples
                        # into AAC's 1024-sample frames).
                        _encode_sound(av, out, track, sound, int(sample_rate or 0), i, fps)
                out.mux(stream.encode(None))  # flush delayed (B-)frames
                if track is not None:
                    out.mux(track.encode(None))
    except (av.FFmpegError, OSError, ValueError) as exc:
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
        audio_loudness=loudness,
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
        start = _seconds(stream.start_time, stream.time_base)
        sound = _audio_probe(container)
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
        start=start,
        audio=sound,
    )


def _seconds(value: int | None, time_base: Any) -> float:
    return 0.0 if value is None or time_base is None else float(value * time_base)


def _audio_probe(container: Any) -> AudioProbe | None:
    """The first audio stream's numbers as the container declares them, or ``None``."""
    if not container.streams.audio:
        return None
    track = container.streams.audio[0]
    context = track.codec_context
    if track.duration is not None and track.time_base is not None:
        duration = float(track.duration * track.time_base)
    else:
        duration = 0.0
    return AudioProbe(
        codec=context.name,
        sample_rate=int(context.sample_rate or 0),
        channels=int(context.channels or 0),
        start=_seconds(track.start_time, track.time_base),
        duration=duration,
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
