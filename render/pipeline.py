"""Load a diffusers video pipeline and turn a ``RenderPlan`` into frames.

Importing this module is cheap; torch and diffusers are imported inside
``load_pipeline`` and ``LoadedPipeline.generate`` so the web process can import the
package without them.

Weights are never downloaded here: ``model`` is either a built-in tiny model (``tiny``,
``tiny-wan``, ``tiny-ltx``, ``tiny-cogvideox``: random weights built in memory, see
``render.tiny``) or a local directory holding a diffusers checkpoint (``save_pretrained`` or
hub layout with ``model_index.json``), loaded with ``local_files_only=True``. An admin puts
one there with ``fedisora model pull`` (:mod:`render.models`).

Cancel: ``on_step`` runs after every denoising step through diffusers'
``callback_on_step_end``; whatever it raises aborts the run and propagates out of
``generate``. (Setting ``pipe._interrupt`` would not stop the VAE decode.)

Cameos: a spec with ``references`` (the reference stills of the likenesses in the clip)
renders through the model's reference-to-video pipeline, Wan VACE (``WanVACEPipeline``,
``reference_images``), which the tiny model has too. A model without one refuses it with
a ``RenderError``, and so does a cameo without its stills: no cameo is rendered from the
prompt alone.

Sound: an LTX-2 model (``LTX2Pipeline``, and ``LTX2ImageToVideoPipeline`` built from the
same weights) renders the clip's sound track jointly with its picture; ``render`` returns
both (``Rendered``), ``generate`` the frames alone. A plan without ``audio`` drops the
track (LTX-2 denoises it either way: the two streams attend to each other).
"""

from __future__ import annotations

import inspect
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from render.catalogue import TINY_MODELS, is_tiny
from render.errors import ModelLoadError, RenderError
from render.spec import ModelFamily, RenderPlan, RenderSpec, family_named

__all__ = [
    "AUDIO_PIPELINES",
    "REFERENCE_PIPELINES",
    "SUPPORTED_PIPELINES",
    "LoadedPipeline",
    "Rendered",
    "family_of_pipeline",
    "load_conditioning_image",
    "load_pipeline",
    "load_reference_images",
]

log = logging.getLogger(__name__)

DType = Literal["float32", "bfloat16", "float16"]
StepCallback = Callable[[int, int], None]

SUPPORTED_PIPELINES: dict[str, tuple[str, bool]] = {
    # class name: (family, takes an input image)
    "WanPipeline": ("wan", False),
    "WanImageToVideoPipeline": ("wan", True),
    "LTXPipeline": ("ltx", False),
    "LTXImageToVideoPipeline": ("ltx", True),
    "CogVideoXPipeline": ("cogvideox", False),
    "CogVideoXImageToVideoPipeline": ("cogvideox", True),
    # Wan 2.1 VACE: text-to-video, and reference-to-video for cameos.
    "WanVACEPipeline": ("wan", False),
    # LTX-2: video and sound together.
    "LTX2Pipeline": ("ltx2", False),
    "LTX2ImageToVideoPipeline": ("ltx2", True),
}

AUDIO_PIPELINES = frozenset({"LTX2Pipeline", "LTX2ImageToVideoPipeline"})
"""Pipeline classes that render a sound track with the picture (``.audio`` of their output)."""

REFERENCE_PIPELINES = frozenset({"WanVACEPipeline"})
"""Pipeline classes that condition a render on reference images (``reference_images``)."""


class _TorchvisionFallbackFilter(logging.Filter):
    """Drops transformers' "`CLIPImageProcessor` requires torchvision (not installed);
    falling back to `CLIPImageProcessorPil`" warning.

    diffusers' Wan image-to-video module imports ``CLIPImageProcessor`` from transformers at
    import time; transformers 5 then substitutes the PIL processor (the one that was called
    ``CLIPImageProcessor`` before its refactoring) and warns once per process, so every render
    worker printed it at start. torchvision is not a dependency (it pins its own torch); the
    PIL processor is the one fedisora wants, so the substitution is right and only its notice
    is dropped. Anything else that logger says still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("requires torchvision" in message and "ImageProcessorPil" in message)


def quiet_library_warnings() -> None:
    """Install :class:`_TorchvisionFallbackFilter` on the logger that emits it (once)."""
    logger = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _TorchvisionFallbackFilter) for f in logger.filters):
        logger.addFilter(_TorchvisionFallbackFilter())


quiet_library_warnings()
_IMAGE_FROM_TEXT = {
    "LTXPipeline": "LTXImageToVideoPipeline",
    "LTX2Pipeline": "LTX2ImageToVideoPipeline",
}
"""Text-to-video classes whose weights also make their image-to-video pipeline."""


LTX_DECODE_TIMESTEP = 0.05
LTX_DECODE_NOISE_SCALE = 0.025
"""Decode settings for timestep-conditioned LTX-Video VAEs (0.9.1 and later), from
diffusers' LTX-Video documentation; 0.9.0's VAE ignores them."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one render made: the frames and, when the plan asked for it, the sound."""

    frames: npt.NDArray[np.uint8]
    """uint8, (frames, height, width, 3), C order."""
    audio: npt.NDArray[np.float32] | None = None
    """float32 samples in [-1, 1], (channels, samples); as long as the model made it (the
    encoder fits it to the clip)."""
    sample_rate: int | None = None


def family_of_pipeline(class_name: str) -> str:
    """The model family of a diffusers pipeline class name ("WanPipeline" -> "wan")."""
    try:
        return SUPPORTED_PIPELINES[class_name][0]
    except KeyError:
        raise ModelLoadError(
            f"unsupported pipeline class {class_name}; supported: "
            + ", ".join(sorted(SUPPORTED_PIPELINES))
        ) from None


def _takes_image(pipe: Any) -> bool:
    return SUPPORTED_PIPELINES[type(pipe).__name__][1]


class LoadedPipeline:
    """A loaded model: a text-to-video and/or an image-to-video pipeline of one family."""

    def __init__(
        self,
        model: str,
        family: ModelFamily,
        *,
        text_pipe: Any | None,
        image_pipe: Any | None,
        device: str,
        reference_pipe: Any | None = None,
        offload: str = "none",
    ) -> None:
        if text_pipe is None and image_pipe is None and reference_pipe is None:
            raise ValueError("a LoadedPipeline needs at least one pipeline")
        if reference_pipe is not None and type(reference_pipe).__name__ not in REFERENCE_PIPELINES:
            raise ValueError(f"{type(reference_pipe).__name__} takes no reference images")
        self.model = model
        self.family = family
        self.text_pipe = text_pipe
        self.image_pipe = image_pipe
        self.reference_pipe = reference_pipe
        self.device = device
        self.offload = offload
        """"model": each component goes to ``device`` only while it runs (diffusers'
        ``enable_model_cpu_offload``), installed on the pipeline about to run (see
        :meth:`generate`)."""
        self._offloading: Any | None = None  # the pipeline whose offload hooks are installed

    def __repr__(self) -> str:
        return (
            f"LoadedPipeline(model={self.model!r}, family={self.family.name!r}, "
            f"text={self.text_pipe is not None}, image={self.image_pipe is not None}, "
            f"references={self.reference_pipe is not None})"
        )

    @property
    def takes_references(self) -> bool:
        """Whether this model renders cameos (has a reference-to-video pipeline)."""
        return self.reference_pipe is not None

    def supports(self, spec: RenderSpec) -> bool:
        """Whether this model can render ``spec``'s kind (with or without an image, with or
        without reference images)."""
        return self._pipe_for(spec) is not None

    def _pipe_for(self, spec: RenderSpec) -> Any | None:
        # Reference stills need the VACE pipeline, which also keeps an input still as the
        # first frame. A remix with a still from its source conditions on it; otherwise
        # it is text.
        if spec.references:
            return self.reference_pipe
        return self.image_pipe if spec.input_image else self.text_pipe

    def _family_kwargs(self, pipe: Any, plan: RenderPlan) -> dict[str, Any]:
        """The call arguments a pipeline class needs beyond the common ones."""
        kwargs: dict[str, Any] = {}
        params = inspect.signature(pipe.__call__).parameters
        text_tokens = getattr(
            getattr(pipe.transformer, "config", None), "max_text_seq_length", None
        )
        if isinstance(text_tokens, int) and "max_sequence_length" in params:
            # CogVideoX: the prompt is encoded to exactly this many tokens, the length its
            # positional embeddings (CogVideoX-2b) were made for; any other length fails.
            kwargs["max_sequence_length"] = text_tokens
        elif self.family.max_sequence_length is not None:
            kwargs["max_sequence_length"] = self.family.max_sequence_length
        if "frame_rate" in params:
            kwargs["frame_rate"] = plan.fps  # LTX scales its rotary positions by the rate
        vae_config = getattr(pipe.vae, "config", None)
        if "decode_timestep" in params and getattr(vae_config, "timestep_conditioning", False):
            # LTX-Video 0.9.1+ VAEs denoise while decoding; the pipeline's default (timestep 0,
            # no noise) skips that. diffusers' LTX docs recommend 0.05 and 0.025.
            kwargs["decode_timestep"] = LTX_DECODE_TIMESTEP
            kwargs["decode_noise_scale"] = LTX_DECODE_NOISE_SCALE
        stg = params.get("spatio_temporal_guidance_blocks")
        layers = getattr(getattr(pipe.transformer, "config", None), "num_layers", None)
        if stg is not None and isinstance(stg.default, list) and isinstance(layers, int):
            # LTX-2's spatio-temporal guidance perturbs block 28 of its 48 by default: a
            # smaller transformer (the tiny one has 2) would pay an extra pass per step for
            # a block it lacks. Keep the blocks it has; without any, no STG pass.
            blocks = [b for b in stg.default if b < layers]
            kwargs["spatio_temporal_guidance_blocks"] = blocks or None
            if not blocks:
                kwargs["stg_scale"] = 0.0
                kwargs["audio_stg_scale"] = 0.0
        return kwargs

    def call(self, plan: RenderPlan, spec: RenderSpec) -> tuple[Any, dict[str, Any]]:
        """The pipeline that renders ``spec`` and its call arguments (stills loaded), or a
        ``RenderError`` saying why this model cannot render it. ``generate`` runs exactly
        this call (with its step callback added)."""
        import torch

        if plan.family != self.family.name:
            raise RenderError(
                f"plan is for family {plan.family}, but model {self.model} is {self.family.name}"
            )
        if spec.cameo_refs and not spec.references:
            raise RenderError(
                "a cameo is rendered from the reference images of its likenesses, and none "
                "were given"
            )
        pipe = self._pipe_for(spec)
        if pipe is None and spec.references:
            raise RenderError(
                f"model {self.model} cannot render cameos: it has no reference-to-video "
                "pipeline (a Wan VACE model has one)"
            )
        if pipe is None:
            what = "an input image" if spec.input_image else "text alone"
            raise RenderError(f"model {self.model} cannot render from {what}")

        kwargs: dict[str, Any] = {
            "prompt": spec.prompt,
            "negative_prompt": spec.negative_prompt or None,
            "height": plan.height,
            "width": plan.width,
            "num_frames": plan.frames,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance_scale,
            # A CPU generator gives the same noise for a seed on every device.
            "generator": torch.Generator(device="cpu").manual_seed(plan.seed),
            "output_type": "np",
        }
        kwargs.update(self._family_kwargs(pipe, plan))
        if spec.references:
            kwargs["reference_images"] = load_reference_images(
                spec.references, plan.width, plan.height
            )
            if spec.input_image:
                still = load_conditioning_image(spec.input_image, plan.width, plan.height)
                kwargs["video"], kwargs["mask"] = _first_frame_condition(still, plan.frames)
        elif spec.input_image:
            kwargs["image"] = load_conditioning_image(spec.input_image, plan.width, plan.height)
        return pipe, kwargs

    def generate(
        self,
        plan: RenderPlan,
        spec: RenderSpec,
        on_step: StepCallback | None = None,
    ) -> npt.NDArray[np.uint8]:
        """Render ``plan`` and return uint8 frames shaped (frames, height, width, 3).

        ``on_step(done, total)`` is called after each denoising step; raising from it
        cancels the render (the exception propagates unchanged).
        """
        return self.render(plan, spec, on_step).frames

    def render(
        self,
        plan: RenderPlan,
        spec: RenderSpec,
        on_step: StepCallback | None = None,
    ) -> Rendered:
        """Render ``plan``: its frames (as ``generate``) and, when ``plan.audio`` asks for it,
        the sound the model rendered with them (a ``RenderError`` if it renders none)."""
        import torch

        pipe, kwargs = self.call(plan, spec)
        if self.offload == "model" and self._offloading is not pipe:
            # The text-, image- and reference-to-video pipelines share components; the
            # offload hooks (which move a component in and the previous one out) are those of
            # the pipeline that runs, so they are put on it before it runs.
            pipe.enable_model_cpu_offload(device=self.device)
            self._offloading = pipe
        if plan.audio and type(pipe).__name__ not in AUDIO_PIPELINES:
            raise RenderError(f"model {self.model} renders no sound")

        def _callback(p: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None:
                on_step(i + 1, int(getattr(p, "num_timesteps", plan.steps)))
            return {}

        kwargs["callback_on_step_end"] = _callback
        with torch.inference_mode():
            output = pipe(**kwargs)
        video = np.asarray(output.frames[0])
        expected = (plan.frames, plan.height, plan.width, 3)
        if video.shape != expected:
            raise RenderError(f"pipeline returned frames shaped {video.shape}, planned {expected}")
        # C order: the pipeline's frames are a transposed view, and writing or encoding a
        # strided array is many times slower (np.save took 250 ms instead of 10 for 49 frames
        # at 256x256; bench/render_overhead.py).
        frames = np.clip(np.rint(video * 255.0), 0, 255).astype(np.uint8, order="C")
        if not plan.audio:
            return Rendered(frames)
        return Rendered(frames, *_sound_of(pipe, output))


def _sound_of(pipe: Any, output: Any) -> tuple[npt.NDArray[np.float32], int]:
    """The first clip's sound track of an LTX-2 output, (channels, samples) float32, and its
    rate (the vocoder's output rate, 24 kHz for LTX-2)."""
    audio = output.audio[0]
    if hasattr(audio, "detach"):
        audio = audio.detach().to("cpu").float().numpy()
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None, :]
    rate = getattr(getattr(pipe.vocoder, "config", None), "output_sampling_rate", None)
    if samples.ndim != 2 or not isinstance(rate, int):
        raise RenderError(f"pipeline returned sound shaped {samples.shape} at rate {rate!r}")
    return np.clip(samples, -1.0, 1.0), rate


def load_conditioning_image(path: str | Path, width: int, height: int) -> Image.Image:
    """Open ``path``, honour EXIF rotation, and centre-crop/resize it to the clip size."""
    try:
        with Image.open(path) as opened:
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
        return ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS)
    except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
        raise RenderError(f"input image {path} cannot be read: {exc}") from exc


def load_reference_images(
    paths: tuple[str, ...] | list[str], width: int, height: int
) -> list[Image.Image]:
    """Open each reference still (EXIF rotation honoured, RGB) and fit it, whole, on a white
    ``width`` x ``height`` canvas, as Wan VACE pads its references.

    A missing or unreadable still is a ``RenderError`` naming its position, not its path
    (the stills are another person's private files; the path goes to the log).
    """
    if not paths:
        raise RenderError("no reference images given")
    images = []
    for number, path in enumerate(paths, 1):
        try:
            with Image.open(path) as opened:
                rgb = ImageOps.exif_transpose(opened).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            log.warning("reference image %s cannot be read: %s", path, exc)
            missing = isinstance(exc, FileNotFoundError)
            raise RenderError(
                f"reference image {number} of {len(paths)} of the cameo's likenesses "
                + ("is missing" if missing else "cannot be read as an image")
            ) from exc
        fitted = ImageOps.contain(rgb, (width, height), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (width, height), (255, 255, 255))
        canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
        images.append(canvas)
    return images


def _first_frame_condition(
    still: Image.Image, frames: int
) -> tuple[list[Image.Image], list[Image.Image]]:
    """VACE's first-frame task: *still* is kept as frame one (mask black), the rest is made
    (grey video, white mask)."""
    size = still.size
    grey = Image.new("RGB", size, (127, 127, 127))
    keep, make = Image.new("L", size, 0), Image.new("L", size, 255)
    return [still] + [grey] * (frames - 1), [keep] + [make] * (frames - 1)


def _family(name: str) -> ModelFamily:
    try:
        return family_named(name)
    except RenderError as exc:
        raise ModelLoadError(str(exc)) from None


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _geometry(pipe: Any) -> tuple[int, int]:
    """(temporal, spatial) multiples a pipeline needs, read from its VAE and patching."""
    # Wan and CogVideoX name them vae_scale_factor_*, LTX vae_*_compression_ratio.
    temporal: Any = getattr(pipe, "vae_scale_factor_temporal", None) or getattr(
        pipe, "vae_temporal_compression_ratio", 1
    )
    spatial: Any = getattr(pipe, "vae_scale_factor_spatial", None) or getattr(
        pipe, "vae_spatial_compression_ratio", 1
    )
    config = getattr(getattr(pipe, "transformer", None), "config", None)
    patch: Any = getattr(config, "patch_size", None) or 1
    if isinstance(patch, list | tuple):
        patch = patch[-1]  # Wan: (t, h, w)
    return int(temporal), int(spatial) * int(patch)


def _check_geometry(pipe: Any, family: ModelFamily, where: str) -> None:
    temporal, spatial = _geometry(pipe)
    if temporal != family.frame_step or family.size_multiple % spatial:
        raise ModelLoadError(
            f"{where}: pipeline needs frames {temporal}k+1 and sizes in multiples of {spatial}, "
            f"but family {family.name} is configured for {family.frame_step}k+1 and "
            f"{family.size_multiple}"
        )


def _read_class_name(path: Path) -> str:
    if not path.exists():
        raise ModelLoadError(
            f"model directory {path} does not exist (weights are never downloaded: "
            "put a diffusers checkpoint saved with save_pretrained there)"
        )
    if not path.is_dir():
        raise ModelLoadError(f"model path {path} is not a directory")
    index = path / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path} has no model_index.json: not a diffusers pipeline directory"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{index} is unreadable: {exc}") from exc
    name = data.get("_class_name") if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise ModelLoadError(f"{index} names no pipeline class (_class_name)")
    return name


def _from_dir(path: Path, dtype: Any) -> Any:
    class_name = _read_class_name(path)
    family_of_pipeline(class_name)  # refuse unsupported classes before loading weights
    import diffusers

    loader: Any = diffusers.DiffusionPipeline
    try:
        pipe = loader.from_pretrained(str(path), local_files_only=True, dtype=dtype)
    except Exception as exc:  # diffusers raises OSError, ValueError, safetensors errors...
        raise ModelLoadError(
            f"could not load pipeline from {path}: {type(exc).__name__}: {exc}"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _cast_built(pipe: Any, dtype: Any) -> None:
    """Cast a pipeline built in memory to *dtype* the way ``from_pretrained(dtype=)`` would.

    A diffusers model's ``_keep_in_fp32_modules`` (Wan's norms, time embedder and rope)
    stay float32 at any lower dtype; a transformers model's (umt5's ``wo``) only at
    float16, as transformers 5 keeps them. ``nn.Module.to`` is called directly because
    diffusers' own ``to`` warns about exactly this case.
    """
    import torch

    for module in pipe.components.values():
        if not isinstance(module, torch.nn.Module) or getattr(module, "dtype", None) == dtype:
            continue
        torch.nn.Module.to(module, dtype=dtype)
        keep = getattr(module, "_keep_in_fp32_modules", None) or ()
        if type(module).__module__.startswith("transformers.") and dtype != torch.float16:
            keep = ()
        if not keep:
            continue
        # Matched by parameter name as diffusers' loader does: Wan's "scale_shift_table" is a
        # parameter, not a module.
        tensors = [*module.named_parameters(), *module.named_buffers()]
        for name, tensor in tensors:
            if tensor.is_floating_point() and any(k in name.split(".") for k in keep):
                tensor.data = tensor.data.to(torch.float32)


def _build_tiny(model: str) -> tuple[Any, Any, Any | None]:
    """The text-, image- and reference-to-video pipelines of the built-in tiny *model*
    (``render.catalogue.TINY_MODELS``), sharing their common components."""
    from render import tiny

    builder = TINY_MODELS[model].builder
    first = getattr(tiny, builder)()
    if builder == "build_tiny_wan":
        return first, tiny.build_tiny_wan_i2v(share=first), tiny.build_tiny_wan_vace(share=first)
    if builder == "build_tiny_cogvideox":
        return first, tiny.build_tiny_cogvideox_i2v(share=first), None
    if builder == "build_tiny_ltx2":
        return first, tiny.build_tiny_ltx2_i2v(share=first), None
    if builder == "build_tiny_ltx":
        import diffusers

        image_class: Any = diffusers.LTXImageToVideoPipeline
        image_pipe = image_class(**first.components)
        image_pipe.set_progress_bar_config(disable=True)
        return first, image_pipe, None
    raise ModelLoadError(f"no builder for the tiny model {model}")  # pragma: no cover


def load_pipeline(
    model: str,
    *,
    image_model: str | None = None,
    family: str | None = None,
    dtype: DType = "float32",
    device: str = "auto",
    vae_tiling: bool = False,
    compile: bool = False,
    first_block_cache: float | None = None,
    offload: Literal["none", "model"] = "none",
) -> LoadedPipeline:
    """Load ``model`` (a built-in tiny model's name, ``render.catalogue.TINY_MODELS``, or a
    local diffusers directory) ready to ``generate``.

    ``image_model`` optionally names a second directory holding the same family's
    image-to-video checkpoint (Wan and CogVideoX ship them separately; LTX derives
    one from its text-to-video weights). ``family`` overrides the family inferred from
    the pipeline class (a tiny checkpoint saved to disk loads as "wan"); its frame and
    size multiples must match the pipeline's. ``first_block_cache`` is the threshold for
    diffusers' First Block Cache (e.g. 0.05), ``None`` to disable it; ``compile``
    runs ``torch.compile`` on the transformer (slow first step). ``offload="model"`` keeps
    the weights in CPU memory and moves each component (text encoder, transformer, VAE) to
    the device only while it runs: a model whose components fit the GPU one at a time, but
    not together, renders (slower by the transfers).
    """
    import torch

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in torch_dtype:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of {', '.join(torch_dtype)}")
    if not model:
        raise ModelLoadError("no model configured")
    if offload not in ("none", "model"):
        raise ModelLoadError(f"unknown offload {offload!r}; use none or model")
    reference_pipe: Any | None = None
    if is_tiny(model):
        if image_model is not None:
            raise ModelLoadError(f"the {model} model brings its own image-to-video pipeline")
        fam = _family(family or TINY_MODELS[model].family)
        text_pipe, image_pipe, reference_pipe = _build_tiny(model)
    else:
        first = _from_dir(Path(model), torch_dtype[dtype])
        fam = _family(family or family_of_pipeline(type(first).__name__))
        text_pipe, image_pipe = (None, first) if _takes_image(first) else (first, None)
        if type(first).__name__ in REFERENCE_PIPELINES:
            reference_pipe = first  # VACE renders text alone as well
        if image_model is not None:
            second = _from_dir(Path(image_model), torch_dtype[dtype])
            if not _takes_image(second):
                raise ModelLoadError(f"{image_model} is not an image-to-video pipeline")
            second_family = family_of_pipeline(type(second).__name__)
            if second_family != family_of_pipeline(type(first).__name__):
                raise ModelLoadError(f"{image_model} is a {second_family} model, unlike {model}")
            image_pipe = second
        elif image_pipe is None and type(first).__name__ in _IMAGE_FROM_TEXT:
            import diffusers

            # LTX and LTX-2 condition on the image through its latents: same weights, new
            # pipeline. Not from_pipe(): it casts the shared modules to its own dtype argument
            # (float32 unless given), which silently undid a bfloat16 load for both pipes.
            image_class: Any = getattr(diffusers, _IMAGE_FROM_TEXT[type(first).__name__])
            image_pipe = image_class(**first.components)
            image_pipe.set_progress_bar_config(disable=True)

    pipes = list(
        {id(p): p for p in (text_pipe, image_pipe, reference_pipe) if p is not None}.values()
    )
    for p in pipes:
        _check_geometry(p, fam, model)

    target = _pick_device(device)
    seen: set[int] = set()
    for p in pipes:
        if offload == "none":
            p.to(target)  # (with offload, each component goes there while it runs)
        if is_tiny(model) and dtype != "float32":
            _cast_built(p, torch_dtype[dtype])
        if type(p.vae).__name__ == "AutoencoderKLWan" and p.vae.dtype != torch.float32:
            # Wan's VAE decodes visibly worse below float32 (diffusers' Wan docs).
            torch.nn.Module.to(p.vae, dtype=torch.float32)  # diffusers' to() warns needlessly
        if vae_tiling:
            if hasattr(p.vae, "enable_tiling"):
                p.vae.enable_tiling()
            else:
                log.warning("%s: VAE %s has no tiling", model, type(p.vae).__name__)
        transformer = p.transformer
        if id(transformer) in seen:
            continue
        seen.add(id(transformer))
        if first_block_cache is not None:
            from diffusers.hooks import first_block_cache as fbc

            fbc.apply_first_block_cache(
                transformer, fbc.FirstBlockCacheConfig(threshold=first_block_cache)
            )
        if compile:
            with warnings.catch_warnings():
                # Importing torch's compiler stack trips torch.jit's own deprecation notices.
                warnings.simplefilter("ignore", DeprecationWarning)
                transformer.compile()

    return LoadedPipeline(
        model,
        fam,
        text_pipe=text_pipe,
        image_pipe=image_pipe,
        reference_pipe=reference_pipe,
        device=target,
        offload=offload,
    )
