"""LTX-Video and CogVideoX checkpoints in a local directory, loaded as an admin's model is.

Tiny random-weight pipelines of each family (``render.tiny``) are written with
``save_pretrained`` once per module, then loaded through ``render.pipeline.load_pipeline``
with ``local_files_only=True`` (nothing is fetched) and rendered: directly through
``LoadedPipeline.generate``, and through the render queue with the directory as
``FEDISORA_RENDER_MODEL`` (the queue's own loader, encoding, watermarks, C2PA signing and
verification). LTX renders at its real family sizes (9 frames at 448x768 take about a
second with the tiny weights); CogVideoX keeps its rules (exactly 49 frames at 8 fps,
landscape) at 112x64 through the ``tiny-cogvideox`` family, since 720x480 takes half a
minute even with tiny weights.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import local_account
from PIL import Image

from render.pipeline import load_pipeline
from render.spec import FAMILIES, RenderPlan, RenderSpec, check_output, plan

SPEC = RenderSpec(prompt="a paper boat drifting down a rainy street", seed=5, seconds=0.3)


@pytest.fixture(scope="module", autouse=True)
def _leave_the_pipeline_cache_as_found() -> Any:
    """The queue keeps loaded pipelines per process; these checkpoints' entries must not
    outlive this module (other tests assert what the cache holds)."""
    import render.queue

    before = dict(render.queue._PIPELINES)
    yield
    render.queue._PIPELINES.clear()
    render.queue._PIPELINES.update(before)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny LTX and CogVideoX checkpoints written with ``save_pretrained``."""
    from render.tiny import build_tiny_cogvideox, build_tiny_ltx

    root = tmp_path_factory.mktemp("family-models")
    dirs = {"ltx": root / "tiny-ltx", "cogvideox": root / "tiny-cogvideox"}
    build_tiny_ltx().save_pretrained(dirs["ltx"])
    build_tiny_cogvideox().save_pretrained(dirs["cogvideox"])
    return dirs


@pytest.fixture(scope="module")
def ltx(model_dirs: dict[str, Path]) -> Any:
    return load_pipeline(str(model_dirs["ltx"]), device="cpu")


@pytest.fixture(scope="module")
def cogvideox(model_dirs: dict[str, Path]) -> Any:
    return load_pipeline(str(model_dirs["cogvideox"]), family="tiny-cogvideox", device="cpu")


def _image(path: Path, color: tuple[int, int, int]) -> str:
    img = Image.new("RGB", (120, 90), color)
    img.paste((255 - color[0], 40, 200), (10, 20, 60, 80))
    img.save(path)
    return str(path)


def _small(family: str, frames: int) -> RenderPlan:
    """A plan below the family's sizes, for comparisons that render several times."""
    return RenderPlan(family, frames, FAMILIES[family].fps, 64, 96, 2, 3.0, seed=5)


# ---------------------------------------------------------------- detection and limits


@pytest.mark.parametrize(
    ("name", "class_name", "image_class", "limits"),
    [
        ("ltx", "LTXPipeline", "LTXImageToVideoPipeline", (24, 8, 9, 241, None, 32)),
        ("cogvideox", "CogVideoXPipeline", None, (8, 4, 49, 49, 49, 16)),
    ],
)
def test_family_is_read_from_model_index(
    model_dirs: dict[str, Path],
    tmp_path: Path,
    name: str,
    class_name: str,
    image_class: str | None,
    limits: tuple[Any, ...],
) -> None:
    from fedisora.config import load_settings
    from render.service import model_family

    path = model_dirs[name]
    index = json.loads((path / "model_index.json").read_text())
    assert index["_class_name"] == class_name
    # The family the web process plans requests with, read without loading weights...
    settings = load_settings(
        {
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
            "FEDISORA_RENDER_MODEL": str(path),
        }
    )
    assert model_family(settings) == name
    # ...is the one the worker's loader infers, with that family's limits.
    loaded = load_pipeline(str(path), device="cpu")
    fam = loaded.family
    assert fam is FAMILIES[name]
    assert (fam.fps, fam.frame_step, fam.min_frames, fam.max_frames) == limits[:4]
    assert (fam.fixed_frames, fam.size_multiple) == limits[4:]
    assert type(loaded.text_pipe).__name__ == class_name
    assert (type(loaded.image_pipe).__name__ if loaded.image_pipe else None) == image_class
    # What the pipeline's VAE and patching need agrees with the family table.
    text_pipe: Any = loaded.text_pipe
    temporal = getattr(text_pipe, "vae_scale_factor_temporal", None) or getattr(
        text_pipe, "vae_temporal_compression_ratio", None
    )
    assert temporal == fam.frame_step
    # A plan for the family is what the limits say: LTX 8k+1 frames, CogVideoX exactly 49.
    longest = plan(replace(SPEC, seconds=fam.max_seconds, aspect="16:9"), fam, 10)
    assert (longest.frames, fam.max_seconds) == ((241, 10.0) if name == "ltx" else (49, 6.0))
    assert (longest.width, longest.height) == fam.sizes["16:9"]


def test_tiny_family_weights_depend_only_on_the_seed() -> None:
    from render.tiny import build_tiny_cogvideox, build_tiny_ltx

    for build in (build_tiny_ltx, build_tiny_cogvideox):
        one, two, other = build(seed=0), build(seed=0), build(seed=1)
        for part in ("transformer", "text_encoder", "vae"):
            sa, sb = getattr(one, part).state_dict(), getattr(two, part).state_dict()
            so = getattr(other, part).state_dict()
            assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa), part
            assert not all(np.array_equal(sa[k].numpy(), so[k].numpy()) for k in sa), part


# ---------------------------------------------------------------- LTX


def test_ltx_renders_a_family_clip(ltx: Any) -> None:
    p = plan(SPEC, ltx.family, 10, steps=2)
    assert (p.frames, p.fps, p.width, p.height) == (9, 24, 448, 768)  # 8k+1 frames, 9:16
    steps: list[tuple[int, int]] = []
    frames = ltx.generate(p, SPEC, lambda done, total: steps.append((done, total)))
    assert frames.shape == (9, 768, 448, 3) and frames.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]
    assert frames.std() > 5  # structured noise, not a blank clip
    check_output(frames.shape[0], p.fps, frames.shape[2], frames.shape[1], ltx.family)


def test_ltx_call_arguments(ltx: Any) -> None:
    """generate() passes LTX its frame rate and the timestep-aware VAE's decode settings."""
    import torch

    p = _small("ltx", 17)
    frames = ltx.generate(p, SPEC)
    assert frames.shape == (17, 96, 64, 3)
    pipe = ltx.text_pipe
    assert pipe.vae.config.timestep_conditioning is True  # like LTX-Video 0.9.1 and later

    def direct(**extra: Any) -> np.ndarray:
        with torch.inference_mode():
            out: Any = pipe(
                prompt=SPEC.prompt,
                height=p.height,
                width=p.width,
                num_frames=p.frames,
                num_inference_steps=p.steps,
                guidance_scale=p.guidance_scale,
                generator=torch.Generator().manual_seed(p.seed),
                output_type="np",
                **extra,
            ).frames[0]
        return np.clip(np.rint(np.asarray(out) * 255.0), 0, 255).astype(np.uint8)

    # diffusers' LTX-Video docs: 0.05 and 0.025 for timestep-aware VAEs.
    documented = {"decode_timestep": 0.05, "decode_noise_scale": 0.025}
    assert np.array_equal(frames, direct(frame_rate=24, **documented))
    # Each of them changes the clip: the pipeline's defaults (25 fps, no decode noise) differ.
    assert not np.array_equal(frames, direct(frame_rate=24))
    assert not np.array_equal(frames, direct(**documented))


def test_ltx_image_to_video(ltx: Any, tmp_path: Path) -> None:
    text_pipe, image_pipe = ltx.text_pipe, ltx.image_pipe
    assert type(image_pipe).__name__ == "LTXImageToVideoPipeline"
    # The same weights, not a second copy.
    for part in ("transformer", "vae", "text_encoder"):
        assert getattr(image_pipe, part) is getattr(text_pipe, part)
    red = replace(SPEC, kind="image", input_image=_image(tmp_path / "r.png", (220, 30, 30)))
    blue = replace(red, input_image=_image(tmp_path / "b.png", (20, 30, 230)))
    assert ltx.supports(red)

    p = plan(replace(red, aspect="1:1"), ltx.family, 10, steps=2)
    assert (p.frames, p.width, p.height) == (9, 576, 576)
    frames = ltx.generate(p, red)
    assert frames.shape == (9, 576, 576, 3)
    check_output(frames.shape[0], p.fps, frames.shape[2], frames.shape[1], ltx.family)

    small = _small("ltx", 9)
    a, b, text = ltx.generate(small, red), ltx.generate(small, blue), ltx.generate(small, SPEC)
    assert a.shape == b.shape == text.shape == (9, 96, 64, 3)
    assert not np.array_equal(a, b)  # the image conditions the clip
    assert not np.array_equal(a, text)
    assert np.array_equal(a, ltx.generate(small, red))


@pytest.mark.parametrize("name", ["ltx", "cogvideox"])
def test_bfloat16_tiling_and_first_block_cache_on_a_directory(
    model_dirs: dict[str, Path], name: str
) -> None:
    import torch
    from diffusers.hooks.first_block_cache import FBCHeadBlockHook

    family = "tiny-cogvideox" if name == "cogvideox" else None
    tuned = load_pipeline(
        str(model_dirs[name]),
        family=family,
        device="cpu",
        dtype="bfloat16",
        vae_tiling=True,
        first_block_cache=0.05,
    )
    pipes = [p for p in (tuned.text_pipe, tuned.image_pipe) if p is not None]
    assert len(pipes) == (2 if name == "ltx" else 1)
    for pipe in pipes:  # LTX's image pipeline must not undo the bfloat16 load (it once did)
        assert pipe.transformer.dtype == torch.bfloat16
        assert pipe.vae.dtype == torch.bfloat16
        assert pipe.vae.use_tiling is True
        # transformers keeps T5's ``wo`` in float32 only for float16, not for bfloat16.
        assert {w.dtype for w in pipe.text_encoder.parameters()} == {torch.bfloat16}
        head = pipe.transformer.transformer_blocks[0]._diffusers_hook.get_hook(
            "fbc_leader_block_hook"
        )
        assert isinstance(head, FBCHeadBlockHook) and head.threshold == 0.05

    if name == "ltx":
        p = _small("ltx", 9)
    else:
        p = plan(replace(SPEC, aspect="16:9"), tuned.family, 10)
    frames = tuned.generate(p, SPEC)
    assert frames.shape == (p.frames, p.height, p.width, 3)
    assert frames.std() > 5


def test_tiny_bfloat16_cast_matches_a_bfloat16_directory_load(tmp_path: Path) -> None:
    """The in-memory tiny model in bfloat16 has the dtypes from_pretrained(dtype=) gives."""
    import torch

    from render.tiny import build_tiny_wan

    build_tiny_wan().save_pretrained(tmp_path / "wan")
    built = load_pipeline("tiny", device="cpu", dtype="bfloat16").text_pipe
    loaded = load_pipeline(str(tmp_path / "wan"), device="cpu", dtype="bfloat16").text_pipe

    def dtypes(part: str, pipe: Any) -> dict[str, torch.dtype]:
        return {k: v.dtype for k, v in getattr(pipe, part).state_dict().items()}

    for part in ("transformer", "text_encoder", "vae"):
        assert dtypes(part, built) == dtypes(part, loaded), part
    transformer = dtypes("transformer", loaded)
    # Wan's _keep_in_fp32_modules, matched by name: norms and a parameter of each block.
    assert transformer["blocks.0.norm2.weight"] == torch.float32
    assert transformer["blocks.0.scale_shift_table"] == torch.float32
    assert transformer["blocks.0.ffn.net.0.proj.weight"] == torch.bfloat16
    assert set(dtypes("text_encoder", loaded).values()) == {torch.bfloat16}  # umt5's wo too
    assert set(dtypes("vae", loaded).values()) == {torch.float32}  # Wan's VAE stays float32


# ---------------------------------------------------------------- CogVideoX


def test_cogvideox_renders_its_fixed_49_frames(cogvideox: Any) -> None:
    import torch

    fam = cogvideox.family
    assert fam.name == "tiny-cogvideox"
    real = FAMILIES["cogvideox"]
    assert (fam.fps, fam.frame_step, fam.fixed_frames) == (real.fps, real.frame_step, 49)
    assert list(fam.sizes) == list(real.sizes) == ["16:9"]

    spec = replace(SPEC, seconds=2.0, aspect="16:9")
    p = plan(spec, fam, 10)  # any length asked for renders CogVideoX 1.0's 49 frames
    assert (p.frames, p.fps, p.width, p.height, p.steps) == (49, 8, 112, 64, 2)
    steps: list[int] = []
    frames = cogvideox.generate(p, spec, lambda done, total: steps.append(done))
    assert frames.shape == (49, 64, 112, 3) and frames.dtype == np.uint8
    assert steps == [1, 2]
    assert frames.std() > 5
    check_output(frames.shape[0], p.fps, frames.shape[2], frames.shape[1], fam)
    assert real.is_valid_frame_count(frames.shape[0])

    # CogVideoX-2b's positional embeddings fix the prompt's token count (226 in the real
    # models, 16 here): generate() reads it from the transformer, as the call needs it.
    pipe = cogvideox.text_pipe
    assert pipe.transformer.config.max_text_seq_length == 16
    with pytest.raises(RuntimeError, match="size of tensor"), torch.inference_mode():
        pipe(prompt=spec.prompt, height=64, width=112, num_frames=49, num_inference_steps=1)


def test_cogvideox_image_to_video_from_its_own_directory(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """CogVideoX ships image-to-video as a separate checkpoint: the image_model setting."""
    from render.tiny import build_tiny_cogvideox_i2v

    build_tiny_cogvideox_i2v().save_pretrained(tmp_path / "i2v")
    both = load_pipeline(
        str(model_dirs["cogvideox"]),
        image_model=str(tmp_path / "i2v"),
        family="tiny-cogvideox",
        device="cpu",
    )
    assert type(both.image_pipe).__name__ == "CogVideoXImageToVideoPipeline"
    assert type(both.text_pipe).__name__ == "CogVideoXPipeline"
    red = replace(SPEC, seconds=3.0, aspect="16:9", kind="image")
    red = replace(red, input_image=_image(tmp_path / "r.png", (220, 30, 30)))
    blue = replace(red, input_image=_image(tmp_path / "b.png", (20, 30, 230)))
    assert both.supports(red)
    p = plan(red, both.family, 10)
    a, b = both.generate(p, red), both.generate(p, blue)
    assert a.shape == b.shape == (49, 64, 112, 3)
    assert not np.array_equal(a, b)  # the still conditions the clip
    check_output(a.shape[0], p.fps, a.shape[2], a.shape[1], both.family)


def test_cogvideox_refuses_what_it_cannot_do(cogvideox: Any) -> None:
    from render.errors import RenderLimitError

    with pytest.raises(RenderLimitError, match="cannot render 9:16"):
        plan(SPEC, cogvideox.family, 10)
    assert not cogvideox.supports(replace(SPEC, kind="image", input_image="still.png"))
    with pytest.raises(RenderLimitError, match="exactly 49"):
        check_output(45, 8, 112, 64, cogvideox.family)
    with pytest.raises(RenderLimitError, match="only renders 6 s clips"):
        plan(replace(SPEC, aspect="16:9"), cogvideox.family, 5)


# ---------------------------------------------------------------- through the render queue

# What a family changes does not depend on the database: one backend is enough here
# (test_render_queue_flow runs the queue on both).
ONE_BACKEND = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _settings(base: Any, tmp_path: Path, **render: str) -> Any:
    from fedisora.config import load_settings

    env = {
        "FEDISORA_DOMAIN": base.domain,
        "FEDISORA_DATA_DIR": str(base.data_dir),
        "FEDISORA_SECRET_KEY": base.secret_key,
        "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        "FEDISORA_RENDER_STEPS": "2",
    }
    return load_settings(env | {f"FEDISORA_RENDER_{k}": v for k, v in render.items()})


async def _run(settings: Any, jobs: list[tuple[dict[str, Any], bytes | None]]) -> list[Any]:
    """Submit *jobs* and drain the queue on an engine with the queue's own model loader."""
    from fedisora.models import MediaFile, RenderJob
    from fedisora.work import Engine
    from fedisora.work.runner import InProcessRunner
    from render.queue import build_render_machine
    from render.service import submit_render

    engine = Engine(
        [build_render_machine(settings)],  # default loader: pipeline_for -> load_pipeline
        lease=timedelta(seconds=30),
        context={"settings": settings},
    )
    owner = await local_account("maker")
    submitted = [
        await submit_render(owner, spec, settings=settings, engine=engine, image=image)
        for spec, image in jobs
    ]
    await InProcessRunner(engine, queues=("render",), concurrency=1).drain(120)
    media = []
    for job in submitted:
        job = await RenderJob.get(pk=job.pk)
        assert job.state == "ready", job.last_error
        media.append(await MediaFile.get(pk=job.output_id))
    return media


def _check_published(settings: Any, media: Any, family: str, shape: tuple[int, int, int]) -> None:
    from render.encode import probe
    from render.provenance import ValidationState, verify_mp4

    video = settings.media_root / media.file
    frames, width, height = shape
    assert (media.frames, media.width, media.height, media.fps) == (
        frames,
        width,
        height,
        float(FAMILIES[family].fps),
    )
    info = probe(video)
    assert (info.frames, info.width, info.height, info.codec) == (frames, width, height, "h264")
    check_output(info.frames, round(info.fps), info.width, info.height, family)
    root = (settings.data_dir / "provenance" / "root.pem").read_text()
    check = verify_mp4(video, [root])
    assert check.state is ValidationState.TRUSTED
    assert check.manifest_digest == media.provenance["manifest_digest"]
    assert media.provenance["claim"]["model"] == Path(settings.render_model).name


@ONE_BACKEND
async def test_queue_renders_an_ltx_directory(
    db: str, render_settings: Any, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from render.provenance import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA

    settings = _settings(render_settings, tmp_path, MODEL=str(model_dirs["ltx"]))
    still = tmp_path / "still.png"
    _image(still, (200, 40, 40))
    text, image = await _run(
        settings,
        [
            ({"prompt": "a kite over a hill", "seconds": 0.3, "seed": 3}, None),
            ({"prompt": "the card flies", "seconds": 0.3, "aspect": "1:1"}, still.read_bytes()),
        ],
    )
    _check_published(settings, text, "ltx", (9, 448, 768))
    _check_published(settings, image, "ltx", (9, 576, 576))
    assert image.provenance["claim"]["input_image"] is True
    assert image.provenance["digital_source_type"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA


@ONE_BACKEND
async def test_queue_renders_a_cogvideox_directory(
    db: str, render_settings: Any, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    settings = _settings(
        render_settings, tmp_path, MODEL=str(model_dirs["cogvideox"]), FAMILY="tiny-cogvideox"
    )
    (media,) = await _run(
        settings, [({"prompt": "waves on a beach", "seconds": 4, "aspect": "16:9"}, None)]
    )
    _check_published(settings, media, "tiny-cogvideox", (49, 112, 64))
