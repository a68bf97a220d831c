"""render.encode's sound track: AAC in the MP4, in sync, loudness-normalised, never too long."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from render.encode import (
    PEAK_CEILING_DBFS,
    TARGET_LUFS,
    encode_mp4,
    fit_audio,
    integrated_loudness,
    normalize_loudness,
    probe,
)
from render.errors import EncodeError

Frames = Callable[[int, int, int], np.ndarray]
RATE = 24000


def tone(seconds: float, *, amplitude: float, rate: int = RATE, channels: int = 2) -> np.ndarray:
    """A 440 Hz tone with a slower 3 Hz swell, so loudness blocks differ a little."""
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * 440 * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 3 * t))
    return np.stack([wave] * channels).astype(np.float32)


def decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    """Every decoded sample of the MP4's sound track (channels, samples), and its rate."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        chunks = [f.to_ndarray() for f in c.decode(stream)]
        return np.concatenate(chunks, axis=1), stream.codec_context.sample_rate


def ffmpeg_loudness(path: Path) -> float:
    """Integrated loudness of the MP4's sound by FFmpeg's own EBU R128 meter (the ``ebur128``
    filter PyAV's FFmpeg has): a second implementation, independent of pyloudnorm."""
    import av
    import av.filter

    running: str | None = None

    def drain(graph: av.filter.Graph) -> None:
        nonlocal running
        while True:
            try:
                out = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            running = out.metadata.get("lavfi.r128.I", running)

    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        graph = av.filter.Graph()
        source = graph.add_abuffer(template=stream)
        meter, sink = graph.add("ebur128", "metadata=1"), graph.add("abuffersink")
        source.link_to(meter)
        meter.link_to(sink)
        graph.configure()
        for frame in c.decode(stream):
            graph.push(frame)
            drain(graph)
        graph.push(None)
        drain(graph)
    assert running is not None
    return float(running)


@pytest.mark.parametrize(("frames", "fps"), [(17, 24), (49, 24), (33, 16)])
def test_sound_starts_and_ends_with_the_picture(
    tmp_path: Path, make_frames: Frames, frames: int, fps: int
) -> None:
    # Longer than the clip on purpose: it is cut, never played past the last frame.
    sound = tone(frames / fps + 0.3, amplitude=0.2)
    out = encode_mp4(
        make_frames(frames, 64, 96), tmp_path / "av.mp4", fps=fps, audio=sound, sample_rate=RATE
    )

    info = probe(out.path)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", RATE, 2)
    frame = 1 / fps
    assert info.start == pytest.approx(0.0, abs=1e-9)
    assert abs(info.audio.start - info.start) < frame
    assert abs(info.audio.duration - info.duration) < frame
    # Never longer than the clip: the MP4 states an edited track's length in the movie's
    # timescale, milliseconds, so it may read up to half a millisecond over.
    assert info.audio.duration <= frames / fps + 0.0005
    assert info.frames == frames  # the picture is untouched by the sound track


def test_the_pyav_read_of_streams_agrees(tmp_path: Path, make_frames: Frames) -> None:
    """The same check straight from PyAV's streams (not through probe)."""
    import av

    out = encode_mp4(
        make_frames(25, 64, 64),
        tmp_path / "s.mp4",
        fps=24,
        audio=tone(0.5, amplitude=0.1),  # shorter than the clip: padded with silence
        sample_rate=RATE,
    )
    with av.open(str(out.path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert None not in (v.start_time, a.start_time, v.duration, a.duration)
        assert v.time_base is not None and a.time_base is not None
        v_start = float((v.start_time or 0) * v.time_base)
        a_start = float((a.start_time or 0) * a.time_base)
        v_len, a_len = (
            float((v.duration or 0) * v.time_base),
            float((a.duration or 0) * a.time_base),
        )
    assert v_len == pytest.approx(25 / 24)
    assert abs(a_start - v_start) < 1 / 24
    assert abs(a_len - v_len) < 1 / 24


def test_output_loudness_is_the_target(tmp_path: Path, make_frames: Frames) -> None:
    quiet = tone(2.0, amplitude=0.02)  # about -40 LUFS going in
    assert integrated_loudness(quiet, RATE) < TARGET_LUFS - 15
    out = encode_mp4(
        make_frames(49, 64, 64), tmp_path / "l.mp4", fps=24, audio=quiet, sample_rate=RATE
    )
    assert out.audio_loudness == pytest.approx(TARGET_LUFS, abs=0.01)

    # Measured on what a player decodes from the file (AAC and all), by two meters.
    samples, rate = decoded_audio(out.path)
    assert abs(integrated_loudness(samples, rate) - TARGET_LUFS) < 1.0
    assert abs(ffmpeg_loudness(out.path) - TARGET_LUFS) < 1.0


def test_loud_input_is_brought_down(tmp_path: Path, make_frames: Frames) -> None:
    loud = tone(2.0, amplitude=0.9)
    out = encode_mp4(
        make_frames(49, 64, 64), tmp_path / "d.mp4", fps=24, audio=loud, sample_rate=RATE
    )
    samples, rate = decoded_audio(out.path)
    assert abs(integrated_loudness(samples, rate) - TARGET_LUFS) < 1.0
    assert abs(ffmpeg_loudness(out.path) - TARGET_LUFS) < 1.0


def test_the_peak_ceiling_wins_over_the_target() -> None:
    # Spiky: clicks on silence reach the ceiling long before the average is loud enough.
    clicks = np.zeros((2, RATE), dtype=np.float32)
    clicks[:, ::4800] = 0.05
    clicks += tone(1.0, amplitude=0.001)
    scaled, loudness = normalize_loudness(clicks, RATE)
    peak_db = 20 * np.log10(np.max(np.abs(scaled)))
    assert peak_db == pytest.approx(PEAK_CEILING_DBFS, abs=0.01)
    assert loudness < TARGET_LUFS  # quieter than the target rather than clipped


def test_silence_stays_silent(tmp_path: Path, make_frames: Frames) -> None:
    silence = np.zeros((2, RATE), dtype=np.float32)
    out = encode_mp4(
        make_frames(17, 64, 64), tmp_path / "q.mp4", fps=24, audio=silence, sample_rate=RATE
    )
    assert out.audio_loudness is None
    samples, _ = decoded_audio(out.path)
    assert np.max(np.abs(samples)) < 1e-3


def test_a_clip_shorter_than_one_loudness_block(tmp_path: Path, make_frames: Frames) -> None:
    """BS.1770's blocks are 400 ms; a 9-frame clip at 24 fps lasts 375 ms."""
    out = encode_mp4(
        make_frames(9, 64, 64),
        tmp_path / "short.mp4",
        fps=24,
        audio=tone(0.375, amplitude=0.05, channels=1),
        sample_rate=RATE,
    )
    info = probe(out.path)
    assert info.audio is not None and info.audio.channels == 1
    assert abs(info.audio.duration - 9 / 24) < 1 / 24
    samples, rate = decoded_audio(out.path)
    assert abs(integrated_loudness(samples, rate) - TARGET_LUFS) < 1.0


def test_fit_audio_cuts_and_pads() -> None:
    sound = np.ones((2, 1000), dtype=np.float32)
    assert fit_audio(sound, 1000, 0.5).shape == (2, 500)
    padded = fit_audio(sound, 1000, 1.5)
    assert padded.shape == (2, 1500)
    assert not padded[:, 1000:].any()


def test_silent_clips_have_no_sound_track(tmp_path: Path, make_frames: Frames) -> None:
    out = encode_mp4(make_frames(5, 16, 16), tmp_path / "v.mp4", fps=16)
    assert probe(out.path).audio is None
    assert out.audio_loudness is None


@pytest.mark.parametrize(
    ("audio", "rate", "match"),
    [
        (np.zeros((3, 100), dtype=np.float32), RATE, "1 or 2 channels"),
        (np.zeros((2, 100), dtype=np.int16), RATE, "float"),
        (np.full((2, 100), np.nan, dtype=np.float32), RATE, "NaN"),
        (np.zeros((2, 100), dtype=np.float32), 100, "sample_rate"),
        (np.zeros((2, 100), dtype=np.float32), None, "sample_rate"),
    ],
)
def test_bad_audio_is_refused(
    tmp_path: Path, make_frames: Frames, audio: np.ndarray, rate: int | None, match: str
) -> None:
    dst = tmp_path / "x.mp4"
    with pytest.raises(EncodeError, match=match):
        encode_mp4(make_frames(5, 16, 16), dst, fps=16, audio=audio, sample_rate=rate)
    assert not dst.exists()
