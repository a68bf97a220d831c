"""The LTX-2 family: picture and sound rendered jointly, through the worker to a signed MP4.

The tiny random-weight LTX-2 (``tiny-ltx2``) runs the real ``LTX2Pipeline`` and
``LTX2ImageToVideoPipeline``: Gemma 3 text encoder, connectors, the joint audio-video
transformer, the video VAE, the audio VAE and the vocoder.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import local_account
from PIL import Image

from fedisora.models import MediaFile, RenderJob
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.encode import TARGET_LUFS, encode_mp4, integrated_loudness, probe
from render.errors import RenderError, RenderLimitError
from render.pipeline import family_of_pipeline, load_pipeline
from render.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceClaim,
    ValidationState,
    sign_mp4,
    verify_mp4,
)
from render.queue import build_render_machine
from render.service import render_limits, submit_render
from render.spec import RenderSpec, check_sound, plan

SPEC = RenderSpec(prompt="a bell rings over a harbour", seed=11, seconds=1.0, audio=True)


def test_tiny_ltx2_renders_picture_and_sound(tiny_ltx2: Any) -> None:
    assert (tiny_ltx2.family.name, tiny_ltx2.family.audio) == ("tiny-ltx2", True)
    p = plan(SPEC, tiny_ltx2.family, 10)
    assert (p.frames, p.fps, p.width, p.height, p.audio) == (25, 24, 64, 128, True)
    steps: list[tuple[int, int]] = []
    out = tiny_ltx2.render(p, SPEC, lambda done, total: steps.append((done, total)))

    assert steps == [(1, 2), (2, 2)]
    assert out.frames.shape == (25, 128, 64, 3) and out.frames.dtype == np.uint8
    assert out.sample_rate == 24000  # LTX-2's vocoder rate
    assert out.audio is not None and out.audio.dtype == np.float32
    channels, samples = out.audio.shape
    assert channels == 2
    # The model's own length: within one video frame of the clip's (the encoder fits it).
    assert abs(samples / 24000 - p.duration) < 1 / p.fps
    assert np.isfinite(out.audio).all() and np.std(out.audio) > 1e-4  # not silence

    again = tiny_ltx2.render(p, SPEC)  # the seed decides both streams
    assert np.array_equal(again.frames, out.frames)
    assert again.audio is not None and np.allclose(again.audio, out.audio)


def test_call_arguments_fit_the_model(tiny_ltx2: Any) -> None:
    pipe, kwargs = tiny_ltx2.call(plan(SPEC, tiny_ltx2.family, 10), SPEC)
    assert type(pipe).__name__ == "LTX2Pipeline"
    assert kwargs["frame_rate"] == 24 and kwargs["max_sequence_length"] == 32
    # LTX-2 perturbs block 28 for its spatio-temporal guidance; the tiny one has 2 blocks, so
    # no STG pass is paid for (a real 48-block LTX-2 keeps diffusers' default).
    assert kwargs["spatio_temporal_guidance_blocks"] is None
    assert kwargs["stg_scale"] == kwargs["audio_stg_scale"] == 0.0


def test_sound_is_dropped_when_not_asked_for(tiny_ltx2: Any) -> None:
    silent = dataclasses.replace(SPEC, audio=False)
    out = tiny_ltx2.render(plan(silent, tiny_ltx2.family, 10), silent)
    assert out.audio is None and out.sample_rate is None
    assert tiny_ltx2.generate(plan(silent, tiny_ltx2.family, 10), silent).shape == (25, 128, 64, 3)


def test_image_to_video_with_sound(tiny_ltx2: Any, tmp_path: Path) -> None:
    assert type(tiny_ltx2.image_pipe).__name__ == "LTX2ImageToVideoPipeline"
    for part in ("transformer", "vae", "audio_vae", "vocoder", "connectors", "text_encoder"):
        assert getattr(tiny_ltx2.image_pipe, part) is getattr(tiny_ltx2.text_pipe, part)
    stills = []
    for name, colour in (("red", (220, 30, 30)), ("blue", (20, 30, 230))):
        Image.new("RGB", (64, 128), colour).save(tmp_path / f"{name}.png")
        stills.append(str(tmp_path / f"{name}.png"))
    red = dataclasses.replace(SPEC, kind="image", input_image=stills[0], seconds=0.4)
    blue = dataclasses.replace(red, input_image=stills[1])
    p = plan(red, tiny_ltx2.family, 10)
    a, b = tiny_ltx2.render(p, red), tiny_ltx2.render(p, blue)
    text = tiny_ltx2.render(p, dataclasses.replace(red, kind="text", input_image=None))
    assert a.frames.shape == (p.frames, 128, 64, 3)
    assert a.audio is not None and a.audio.shape[0] == 2 and b.audio is not None
    # The still conditions the clip (random weights make no picture of it, but a different
    # still makes a different clip, and so does none).
    assert not np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, text.frames)


def test_silent_families_refuse_sound(tiny: Any) -> None:
    assert tiny.family.audio is False
    with pytest.raises(RenderLimitError, match="audio: model family tiny renders no sound"):
        plan(dataclasses.replace(SPEC, aspect="9:16"), tiny.family, 10)
    # A pipeline without sound never pretends to have made some.
    p = dataclasses.replace(plan(dataclasses.replace(SPEC, audio=False), tiny.family, 10))
    with pytest.raises(RenderError, match="renders no sound"):
        tiny.render(dataclasses.replace(p, audio=True), SPEC)


def test_a_saved_tiny_ltx2_loads_as_an_ltx2_model(tiny_ltx2: Any, tmp_path: Path) -> None:
    tiny_ltx2.text_pipe.save_pretrained(tmp_path / "ltx2")
    assert family_of_pipeline("LTX2Pipeline") == "ltx2"
    loaded = load_pipeline(str(tmp_path / "ltx2"), family="tiny-ltx2", device="cpu")
    assert type(loaded.image_pipe).__name__ == "LTX2ImageToVideoPipeline"
    p = plan(SPEC, loaded.family, 10)
    a, b = tiny_ltx2.render(p, SPEC), loaded.render(p, SPEC)
    # The same weights (float noise from the reload may move a pixel by one step).
    assert np.abs(a.frames.astype(int) - b.frames).max() <= 1
    assert a.audio is not None and b.audio is not None
    assert np.allclose(a.audio, b.audio, atol=1e-5)
    # Without the override it is the real LTX-2 family, whose rules it meets.
    assert load_pipeline(str(tmp_path / "ltx2"), device="cpu").family.name == "ltx2"


def _audio_packet_offsets(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as c:
        return [pkt.pos for pkt in c.demux(c.streams.audio[0]) if pkt.pos is not None and pkt.size]


def test_signed_clip_says_picture_and_sound_are_generated(
    tiny_ltx2: Any, credentials: Any, tmp_path: Path
) -> None:
    p = plan(SPEC, tiny_ltx2.family, 10)
    out = tiny_ltx2.render(p, SPEC)
    encoded = encode_mp4(
        out.frames, tmp_path / "av.mp4", fps=p.fps, audio=out.audio, sample_rate=out.sample_rate
    )
    claim = ProvenanceClaim(
        instance="video.example", job_id="5", model="tiny-ltx2", seed=11, prompt_sha256="0" * 64,
        audio=True,
    )  # fmt: skip
    signed = sign_mp4(
        encoded.path, tmp_path / "signed.mp4", chain_pem=credentials.chain_pem,
        key_pem=credentials.key_pem, claim=claim,
    )  # fmt: skip
    result = verify_mp4(signed.path, [credentials.root_pem])
    assert result.state is ValidationState.TRUSTED, result.failures
    assert result.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert result.created_tracks == ("video", "audio")
    assert result.claim == claim
    assert claim.to_assertion()["tracks"] == {
        "video": TRAINED_ALGORITHMIC_MEDIA,
        "audio": TRAINED_ALGORITHMIC_MEDIA,
    }
    info = probe(signed.path)
    assert info.audio is not None and abs(info.audio.duration - info.duration) < 1 / p.fps

    # The manifest's hash covers the sound: one altered byte of an audio packet breaks it.
    data = bytearray(signed.path.read_bytes())
    offset = _audio_packet_offsets(signed.path)[1] + 8
    data[offset] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    assert verify_mp4(tampered, [credentials.root_pem]).state is ValidationState.INVALID


def test_a_claim_of_sound_needs_a_sound_track(credentials: Any, gradient_clip: Path) -> None:
    claim = ProvenanceClaim(
        instance="video.example", job_id="6", model="m", seed=1, prompt_sha256="0" * 64, audio=True
    )
    with pytest.raises(RenderError, match="no sound track"):
        sign_mp4(
            gradient_clip, gradient_clip.with_name("x.mp4"), chain_pem=credentials.chain_pem,
            key_pem=credentials.key_pem, claim=claim,
        )  # fmt: skip


def test_check_sound_limits() -> None:
    check_sound(True, 24, 24, (0.0, 1.0))
    check_sound(False, 24, 24, None)
    with pytest.raises(RenderLimitError, match="no sound track"):
        check_sound(True, 24, 24, None)
    with pytest.raises(RenderLimitError, match="has a sound track"):
        check_sound(False, 24, 24, (0.0, 1.0))
    with pytest.raises(RenderLimitError, match="longer than"):
        check_sound(True, 24, 24, (0.0, 1.01))
    with pytest.raises(RenderLimitError, match="away from the picture"):
        check_sound(True, 24, 24, (0.05, 0.9))


async def test_worker_publishes_a_clip_with_sound(
    db: str, render_settings: Any, tiny_ltx2: Any
) -> None:
    settings = dataclasses.replace(render_settings, render_model="tiny-ltx2")
    limits = render_limits(settings)
    assert limits.audio is True and limits.aspects == ("9:16", "1:1", "16:9")

    async def load(_settings: Any) -> Any:
        return tiny_ltx2

    engine = Engine(
        [build_render_machine(settings, load=load)],
        lease=timedelta(seconds=60),
        context={"settings": settings},
    )
    alice = await local_account("alice")
    loud = await submit_render(
        alice, {"prompt": "waves and gulls", "seconds": 1.0, "seed": 3}, settings=settings,
        engine=engine,
    )  # fmt: skip
    quiet = await submit_render(
        alice, {"prompt": "waves", "seconds": 1.0, "seed": 3, "audio": "false"},
        settings=settings, engine=engine,
    )  # fmt: skip
    assert loud.spec["audio"] is True and quiet.spec["audio"] is False  # on by default
    await InProcessRunner(engine, queues=("render",), concurrency=1).drain(120)

    root = (settings.data_dir / "provenance" / "root.pem").read_text()
    job = await RenderJob.get(pk=loud.pk)
    assert job.state == "ready", job.last_error
    media = await MediaFile.get(pk=job.output_id)
    video = settings.media_root / media.file
    info = probe(video)
    assert info.audio is not None and info.audio.codec == "aac"
    frame = 1 / info.fps
    assert abs(info.audio.start - info.start) < frame
    assert abs(info.audio.duration - info.duration) < frame
    assert info.audio.duration <= info.frames / info.fps + 0.0005
    import av

    with av.open(str(video)) as c:
        sound = np.concatenate([f.to_ndarray() for f in c.decode(c.streams.audio[0])], axis=1)
    assert abs(integrated_loudness(sound, info.audio.sample_rate) - TARGET_LUFS) < 1.0
    check = verify_mp4(video, [root])
    assert check.state is ValidationState.TRUSTED and check.created_tracks == ("video", "audio")
    assert media.provenance["claim"]["audio"] is True
    assert media.provenance["claim"]["tracks"]["audio"] == TRAINED_ALGORITHMIC_MEDIA

    job = await RenderJob.get(pk=quiet.pk)
    assert job.state == "ready", job.last_error
    silent = settings.media_root / (await MediaFile.get(pk=job.output_id)).file
    assert probe(silent).audio is None
    assert verify_mp4(silent, [root]).created_tracks == ()


async def test_sound_asked_of_a_silent_model_is_refused(db: str, render_settings: Any) -> None:
    alice = await local_account("alice")
    assert render_limits(render_settings).audio is False
    with pytest.raises(RenderLimitError, match="audio: model family tiny renders no sound"):
        await submit_render(
            alice, {"prompt": "a bell", "seconds": 1.0, "audio": True}, settings=render_settings
        )
    with pytest.raises(RenderLimitError, match="audio: must be true or false"):
        await submit_render(
            alice, {"prompt": "a bell", "seconds": 1.0, "audio": "loud"}, settings=render_settings
        )
    # Silent families keep their silent default.
    job = await submit_render(alice, {"prompt": "a bell", "seconds": 1.0}, settings=render_settings)
    assert job.spec["audio"] is False
