"""The real-weights knobs (dtype, VAE tiling, compile, First Block Cache) as settings.

Each knob is checked on the tiny model for its effect on the loaded modules, and the
pipeline still renders with it. ``torch.compile`` is only checked as requested on the
transformer: its first compiled run takes about half a minute on this CPU (render.md),
too long for the suite, so no frames are rendered through it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedisora.config import ConfigError, load_settings
from render.queue import pipeline_options
from render.spec import RenderSpec, plan


def _settings(tmp_path: Path, **env: str) -> Any:
    base = {"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_CONFIG": str(tmp_path / "none.env")}
    return load_settings({**base, **{f"FEDISORA_RENDER_{k}": v for k, v in env.items()}})


def test_knob_settings_parse_and_map_to_load_options(tmp_path: Path) -> None:
    default = _settings(tmp_path)
    assert pipeline_options(default, cuda=False) == {
        "family": None,
        "dtype": "float32",
        "vae_tiling": True,
        "compile": False,
        "first_block_cache": None,
        "offload": "none",
    }
    real = _settings(tmp_path, MODEL=str(tmp_path / "wan"))
    assert pipeline_options(real, cuda=True)["dtype"] == "bfloat16"
    assert pipeline_options(real, cuda=False)["dtype"] == "float32"
    tuned = _settings(
        tmp_path,
        FAMILY="TINY256",
        DTYPE="bfloat16",
        VAE_TILING="off",
        COMPILE="yes",
        FIRST_BLOCK_CACHE="0.05",
        OFFLOAD="model",
    )
    assert pipeline_options(tuned, cuda=False) == {
        "family": "tiny256",
        "dtype": "bfloat16",
        "vae_tiling": False,
        "compile": True,
        "first_block_cache": 0.05,
        "offload": "model",
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DTYPE", "bf16", "FEDISORA_RENDER_DTYPE must be one of auto, float32, bfloat16, float16"),
        ("VAE_TILING", "maybe", "FEDISORA_RENDER_VAE_TILING must be 1/0"),
        ("COMPILE", "2", "FEDISORA_RENDER_COMPILE must be 1/0"),
        ("FIRST_BLOCK_CACHE", "1.5", "FEDISORA_RENDER_FIRST_BLOCK_CACHE must be between 0.0"),
        ("FIRST_BLOCK_CACHE", "fast", "FEDISORA_RENDER_FIRST_BLOCK_CACHE must be a number"),
        ("FAMILY", "sora", "FEDISORA_RENDER_FAMILY must be empty (infer it from the model) or"),
        ("OFFLOAD", "sequential", "FEDISORA_RENDER_OFFLOAD must be one of none, model"),
    ],
)
def test_bad_knob_values_name_the_setting(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, **{name: value})
    assert message in str(err.value)


def _tiny_plan() -> tuple[RenderSpec, Any]:
    spec = RenderSpec(prompt="a red kite over a hill", seed=7, seconds=0.5, aspect="1:1")
    return spec, plan(spec, "tiny", 10.0, steps=3)


def test_bfloat16_tiling_and_first_block_cache_apply_and_still_render(tiny: Any) -> None:
    import torch
    from diffusers.hooks.first_block_cache import FBCHeadBlockHook

    from render.pipeline import load_pipeline

    spec, p = _tiny_plan()
    reference = tiny.generate(p, spec)

    tuned = load_pipeline(
        "tiny", device="cpu", dtype="bfloat16", vae_tiling=True, first_block_cache=0.9
    )
    pipes: list[Any] = [tuned.text_pipe, tuned.image_pipe]
    for pipe in pipes:
        transformer = pipe.transformer
        assert transformer.blocks[0].ffn.net[0].proj.weight.dtype == torch.bfloat16
        # Kept in float32 as from_pretrained(dtype=bfloat16) keeps them.
        assert transformer.blocks[0].norm2.weight.dtype == torch.float32
        assert pipe.text_encoder.dtype == torch.bfloat16
        assert pipe.vae.dtype == torch.float32  # Wan's VAE decodes badly below float32
        assert pipe.vae.use_tiling is True
        head = transformer.blocks[0]._diffusers_hook.get_hook("fbc_leader_block_hook")
        assert isinstance(head, FBCHeadBlockHook) and head.threshold == 0.9
    assert tiny.text_pipe.vae.use_tiling is False  # the default load leaves them off
    assert not hasattr(tiny.text_pipe.transformer.blocks[0], "_diffusers_hook")

    frames = tuned.generate(p, spec)
    assert frames.shape == reference.shape and frames.dtype == np.uint8
    # C order, as the frames file and the encoder want (a strided view saved 25x slower).
    assert frames.flags["C_CONTIGUOUS"] and reference.flags["C_CONTIGUOUS"]
    assert frames.std() > 5  # structured output, not a blank clip
    again = tuned.generate(p, spec)
    assert np.array_equal(frames, again)  # the cache's state is reset between renders

    # In float32, the cache alone changes the output: at this threshold the last steps reuse
    # the residual of the remaining blocks instead of running them.
    cached = load_pipeline("tiny", device="cpu", first_block_cache=0.9).generate(p, spec)
    assert not np.array_equal(cached, reference)
    assert np.abs(cached.astype(int) - reference).mean() < 8


def test_compile_is_requested_on_the_transformers() -> None:
    from render.pipeline import load_pipeline

    compiled = load_pipeline("tiny", device="cpu", compile=True)
    pipes: list[Any] = [compiled.text_pipe, compiled.image_pipe]
    for pipe in pipes:
        impl = pipe.transformer._compiled_call_impl
        # torch.compile wraps the module's call: dynamo keeps the original callable on it.
        assert impl is not None
        assert impl._torchdynamo_orig_callable == pipe.transformer._call_impl
        assert pipe.vae._compiled_call_impl is None


def test_model_offload_renders_the_same_frames(tiny: Any, tmp_path: Path) -> None:
    """FEDISORA_RENDER_OFFLOAD=model: each component is moved to the device only while it
    runs (here the CPU itself, so nothing moves: the hooks and the rendering path are what is
    tested); text- and image-to-video renders give the frames they give without it, each
    pipeline getting the hooks before it runs."""
    import numpy as np
    from PIL import Image

    from render.pipeline import load_pipeline

    offloaded = load_pipeline("tiny", device="cpu", offload="model")
    assert offloaded.offload == "model"
    still = tmp_path / "still.png"
    Image.new("RGB", (64, 112), (200, 80, 40)).save(still)
    text = RenderSpec(prompt="a paper boat", seed=5, seconds=0.25)
    image = RenderSpec(
        prompt="a paper boat", seed=5, seconds=0.25, kind="image", input_image=str(still)
    )
    for spec in (text, image, text):  # the text pipeline's hooks go back on for the last
        p = plan(spec, tiny.family, 10)
        assert np.array_equal(offloaded.generate(p, spec), tiny.generate(p, spec))
