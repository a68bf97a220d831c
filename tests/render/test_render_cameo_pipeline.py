"""Cameo rendering: the render is conditioned on the likenesses' reference stills.

The tiny model brings a tiny Wan VACE pipeline (``render.tiny.build_tiny_wan_vace``), so
these tests run the path a real Wan2.1-VACE checkpoint takes (``WanVACEPipeline`` with
``reference_images``) on the CPU: 5 frames at 80x80, 2 steps, a fraction of a second each.
A family or a model without a reference-to-video pipeline refuses cameos with a reason,
at request time where the model is known and in the worker otherwise; missing or
unreadable stills refuse the render before any frame is made; the signed clip's C2PA
manifest names each consent and says a likeness went in.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import local_account
from PIL import Image

from render.errors import RenderError, RenderLimitError
from render.pipeline import LoadedPipeline, load_pipeline, load_reference_images
from render.spec import FAMILIES, RenderSpec, plan

CONSENTS = ("https://a.example/consents/1", "https://b.example/consents/9")


def _still(path: Path, size: tuple[int, int], seed: int) -> str:
    """A reference still of random colour blocks (a stand-in for a cropped face)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST).save(path)
    return str(path)


def _cameo(references: tuple[str, ...], **kwargs: Any) -> RenderSpec:
    fields: dict[str, Any] = {
        "prompt": "two friends waving at the camera",
        "seed": 11,
        "seconds": 0.25,  # 5 frames
        "aspect": "1:1",  # 80x80 in the tiny family
        "cameo_refs": CONSENTS[: max(1, min(2, len(references)))],
        "references": references,
    }
    return RenderSpec(**{**fields, **kwargs})


def test_tiny_vace_renders_conditioned_on_reference_images(tiny: Any, tmp_path: Path) -> None:
    import torch

    assert tiny.takes_references and type(tiny.reference_pipe).__name__ == "WanVACEPipeline"
    # Shares the text encoder and VAE with the text-to-video pipeline, as one checkpoint would.
    assert tiny.reference_pipe.vae is tiny.text_pipe.vae
    a = _still(tmp_path / "a.png", (48, 48), seed=1)
    b = _still(tmp_path / "b.jpg", (30, 54), seed=2)
    spec = _cameo((a,))
    p = plan(spec, tiny.family, 10)
    assert (p.frames, p.width, p.height, p.steps) == (5, 80, 80, 2)

    steps: list[tuple[int, int]] = []
    with_a = tiny.generate(p, spec, lambda done, total: steps.append((done, total)))
    assert with_a.shape == (5, 80, 80, 3) and with_a.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]
    # The same VACE model without stills renders another clip.
    vace_only = LoadedPipeline(
        "tiny", tiny.family, text_pipe=tiny.reference_pipe, image_pipe=None, device="cpu"
    )
    plain = vace_only.generate(p, replace(spec, cameo_refs=(), references=()))
    assert np.abs(with_a.astype(int) - plain).max() > 8

    # What the stills show reaches the model. The tiny random model passes little of a
    # still's content through (a 3-channel VAE encoder, near-uniform random attention), too
    # little to move a rounded pixel, so this compares the denoised latents of the very call
    # generate() makes.
    def latents(stills: tuple[str, ...]) -> Any:
        pipe, kwargs = tiny.call(p, _cameo(stills))
        assert pipe is tiny.reference_pipe
        assert [im.size for im in kwargs["reference_images"]] == [(80, 80)] * len(stills)
        with torch.inference_mode():
            return pipe(**{**kwargs, "output_type": "latent"}).frames

    first, again, other = latents((a,)), latents((a,)), latents((b,))
    assert torch.equal(first, again)
    assert first.shape == (1, 16, 3, 10, 10)  # the still's latent frame, then the clip's two
    assert (first[:, :, 1:] - other[:, :, 1:]).abs().max() > 1e-5
    assert latents((a, b)).shape == (1, 16, 4, 10, 10)


def test_cameo_with_an_input_image_keeps_it_as_the_first_frame(tiny: Any, tmp_path: Path) -> None:
    face = _still(tmp_path / "face.png", (40, 40), seed=3)
    start = tmp_path / "start.png"
    Image.new("RGB", (80, 80), (200, 30, 30)).save(start)
    spec = _cameo((face,), kind="image", input_image=str(start))
    assert tiny.supports(spec)
    p = plan(spec, tiny.family, 10)
    frames = tiny.generate(p, spec)
    assert frames.shape == (5, 80, 80, 3)
    assert not np.array_equal(
        frames, tiny.generate(p, replace(spec, kind="text", input_image=None))
    )


def test_reference_stills_are_fitted_whole_on_the_clip_canvas(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    Image.new("RGB", (200, 50), (0, 0, 255)).save(wide)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees
    Image.new("RGB", (60, 20), (0, 160, 0)).save(rotated, exif=exif)
    [fitted, turned] = load_reference_images((str(wide), str(rotated)), 64, 112)
    assert fitted.size == turned.size == (64, 112) and fitted.mode == "RGB"
    pixels = np.asarray(fitted)
    # The whole still, scaled to the width and centred; white (VACE's padding) around it.
    assert (pixels[56, 32] == (0, 0, 255)).all() and (pixels[0, 32] == 255).all()
    upright = np.asarray(turned)
    assert (upright[56, 32] == (0, 160, 0)).all() and (upright[56, 0] == 255).all()


def test_missing_or_unreadable_stills_refuse_the_render(tiny: Any, tmp_path: Path) -> None:
    good = _still(tmp_path / "good.png", (32, 32), seed=4)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    missing = tmp_path / "private" / "gone.png"
    steps: list[int] = []
    for stills, reason in (
        ((good, str(missing)), "reference image 2 of 2 of the cameo's likenesses is missing"),
        ((str(text),), "reference image 1 of 1 of the cameo's likenesses cannot be read"),
    ):
        spec = _cameo(stills)
        with pytest.raises(RenderError, match=reason) as caught:
            tiny.generate(plan(spec, tiny.family, 10), spec, lambda d, t: steps.append(d))
        assert str(tmp_path) not in str(caught.value)  # another person's private files
    assert steps == []  # refused before the first step


def test_a_cameo_is_never_rendered_from_the_prompt_alone(tiny: Any) -> None:
    spec = _cameo(())
    assert spec.cameo_refs and not spec.references
    with pytest.raises(RenderError, match="reference images of its likenesses, and none"):
        tiny.generate(plan(spec, tiny.family, 10), spec)


def test_a_family_or_model_without_references_refuses_cameos(tiny: Any, tmp_path: Path) -> None:
    still = _still(tmp_path / "s.png", (32, 32), seed=5)
    for name in ("ltx", "cogvideox", "tiny-cogvideox"):
        assert not FAMILIES[name].takes_references
        spec = _cameo((still,), aspect="16:9", seconds=6.0)
        with pytest.raises(RenderLimitError, match=f"family {name} cannot render cameos") as e:
            plan(spec, name, 10)
        assert e.value.limit == "cameos"
    assert FAMILIES["wan"].takes_references and FAMILIES["tiny"].takes_references
    # A model of a family that can, but loaded without its VACE pipeline (a Wan T2V checkpoint).
    text_only = LoadedPipeline(
        "wan-t2v", tiny.family, text_pipe=tiny.text_pipe, image_pipe=tiny.image_pipe, device="cpu"
    )
    spec = _cameo((still,))
    assert not text_only.takes_references and not text_only.supports(spec)
    with pytest.raises(RenderError, match="model wan-t2v cannot render cameos: it has no ref"):
        text_only.generate(plan(spec, text_only.family, 10), spec)
    with pytest.raises(ValueError, match="takes no reference images"):
        LoadedPipeline(
            "x",
            tiny.family,
            text_pipe=None,
            image_pipe=None,
            device="cpu",
            reference_pipe=tiny.text_pipe,
        )


def test_references_come_only_with_consent() -> None:
    with pytest.raises(RenderLimitError, match="only with a cameo's consent"):
        plan(RenderSpec(prompt="x", seed=1, seconds=0.25, references=("/a.png",)), "tiny", 10)
    too_many = tuple(f"/r{i}.png" for i in range(21))
    with pytest.raises(RenderLimitError, match="at most 20 reference images"):
        plan(_cameo(too_many), "tiny", 10)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved tiny Wan text-to-video checkpoint and a saved tiny Wan VACE one."""
    from render.tiny import build_tiny_wan, build_tiny_wan_vace

    root = tmp_path_factory.mktemp("cameo-models")
    dirs = {"t2v": root / "wan-t2v", "vace": root / "wan-vace"}
    wan = build_tiny_wan()
    wan.save_pretrained(dirs["t2v"])
    build_tiny_wan_vace(share=wan).save_pretrained(dirs["vace"])
    return dirs


def test_a_saved_vace_checkpoint_loads_as_a_cameo_model(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    vace = load_pipeline(str(model_dirs["vace"]), device="cpu")
    assert vace.family.name == "wan" and vace.takes_references
    assert vace.text_pipe is vace.reference_pipe  # VACE renders text alone as well
    assert not load_pipeline(str(model_dirs["t2v"]), device="cpu").takes_references
    # A saved directory loads with the "wan" family's 480p sizes: render a tiny one by hand.
    spec = _cameo((_still(tmp_path / "s.png", (32, 32), seed=6),))
    p = replace(plan(spec, "tiny", 10), family="wan")
    assert vace.generate(p, spec).shape == (5, 80, 80, 3)


async def test_request_time_refusal_where_the_model_is_known(
    db: str, render_settings: Any, model_dirs: dict[str, Path]
) -> None:
    from likenesses import verified_likeness

    from render.service import model_takes_references, submit_render

    carol, dave = await local_account("carol"), await local_account("dave")
    await verified_likeness(dave, render_settings, audience="everyone")  # consent is given
    ask = {"prompt": "dave waving", "seconds": 6.0, "aspect": "16:9", "cameos": [dave.pk]}
    refusals = {
        "family": replace(render_settings, render_family="tiny-cogvideox"),
        "model": replace(render_settings, render_model=str(model_dirs["t2v"])),
    }
    for what, settings in refusals.items():
        assert not model_takes_references(settings)
        with pytest.raises(RenderLimitError, match="cannot render cameos") as caught:
            await submit_render(carol, ask, settings=settings, engine=None)
        assert caught.value.limit == "cameos", what
    # Without a cameo the same models take the request; a VACE model takes the cameo too.
    assert (await submit_render(carol, {**ask, "cameos": []}, settings=refusals["model"])).pk
    vace = replace(render_settings, render_model=str(model_dirs["vace"]))
    assert model_takes_references(vace) and model_takes_references(render_settings)
    job = await submit_render(carol, {**ask, "seconds": 1.0}, settings=vace)
    assert job.spec["cameos"] == [dave.pk] and job.spec["family"] == "wan"


async def test_the_signed_clip_names_each_consent_and_a_composite_source(
    db: str, render_settings: Any, tiny: Any, tmp_path: Path
) -> None:
    from likenesses import verified_likeness

    from fedisora.models import RenderJob
    from render.instance import load_credentials
    from render.provenance import (
        COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
        ValidationState,
        verify_mp4,
    )
    from render.queue import _encode, _save_frames, _sign, job_spec, work_dir
    from render.service import submit_render

    erin, frank = await local_account("erin"), await local_account("frank")
    await verified_likeness(frank, render_settings, audience="everyone")  # consent is given
    job = await submit_render(
        erin,
        {"prompt": "frank juggling", "seconds": 0.25, "aspect": "1:1", "cameos": [frank.pk]},
        settings=render_settings,
    )
    # The worker's steps once the consent check allowed the cameo: the spec it renders...
    stills = (
        _still(tmp_path / "f1.png", (40, 40), seed=7),
        _still(tmp_path / "f2.png", (40, 40), 8),
    )
    spec = job_spec(job, render_settings, CONSENTS, stills)
    assert (spec.cameo_refs, spec.references) == (CONSENTS, stills)
    p = plan(spec, tiny.family, render_settings.max_clip_seconds)
    out = work_dir(render_settings, job.pk)
    _save_frames(tiny.generate(p, spec), out / "frames.npy")
    _encode(out / "frames.npy", out, p, render_settings, job.pk, erin.username)
    # ...records the consent ids, not the stills (private files), and signs them in.
    await RenderJob.filter(pk=job.pk).update(spec={**job.spec, "consent_refs": list(CONSENTS)})
    job = await RenderJob.get(pk=job.pk)
    values = _sign(render_settings, job, erin.uri, tuple(job.spec["consent_refs"]))
    assert values["provenance"]["claim"]["consent_refs"] == list(CONSENTS)

    root_pem = load_credentials(render_settings)[0]
    result = verify_mp4(render_settings.media_root / values["file"], [root_pem])
    assert result.state is ValidationState.TRUSTED
    assert result.claim is not None and result.claim.consent_refs == CONSENTS
    assert result.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert not any(s in str(result.claim.to_assertion()) for s in stills)
