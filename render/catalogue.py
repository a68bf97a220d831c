"""The models an admin can pull (``fedisora model pull NAME``) and the built-in tiny ones.

Pure data, no torch: the web process and the CLI list it. Each real entry names an openly
licensed diffusers checkpoint on the Hugging Face hub, the fedisora family it renders as
(:data:`render.spec.FAMILIES`), the pipeline class its ``model_index.json`` must name, and
settings that fit a 24 GB and an 80 GB GPU.

How exact these figures are (checked when written, December 2026):

* Repo ids and pipeline classes: from the repos' own ``model_index.json`` or diffusers'
  documentation and docstrings. A pull reads ``model_index.json`` before anything else and
  refuses a repo whose class is not the one named here, so a renamed repo fails clearly.
* Disk sizes are approximate (the diffusers repos keep some components in float32). The pull
  does not rely on them: it adds up the sizes the hub lists for the files it will fetch and
  checks the free space against that.
* VRAM figures and the 24/80 GB settings are published figures or estimates from parameter
  counts (bfloat16 weights plus activations at the family's resolution), not measured here:
  this machine has no GPU. ``offload`` "model" is ``FEDISORA_RENDER_OFFLOAD=model``
  (diffusers' ``enable_model_cpu_offload``: one component on the GPU at a time). Sequential
  (per-layer) offload is not offered: it failed on the tiny model here (accelerate 1.16,
  torch 2.13), so a model whose transformer alone does not fit a GPU is marked as not
  fitting it.
* Licences are the ones the model cards state; read the card before serving a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CATALOGUE",
    "TINY_MODELS",
    "CatalogueEntry",
    "GpuSettings",
    "TinyModel",
    "entry_named",
    "is_tiny",
]

Offload = Literal["none", "model"]


@dataclass(frozen=True, slots=True)
class GpuSettings:
    """What to set on a GPU of ``vram_gb``: the family fixes the frame size per aspect; this
    says how long a clip, how many steps and which offload fit."""

    vram_gb: int
    width: int
    height: int
    max_frames: int
    steps: int
    offload: Offload
    note: str = ""

    def describe(self, fps: int) -> str:
        """One line an admin acts on: the sizes, and the settings that give them."""
        seconds = (self.max_frames - 1) / fps
        text = (
            f"{self.vram_gb} GB: {self.width}x{self.height}, up to {self.max_frames} frames "
            f"({seconds:g} s), {self.steps} steps, offload {self.offload}: "
            f"FEDISORA_MAX_CLIP_SECONDS={seconds:g} FEDISORA_RENDER_STEPS={self.steps} "
            f"FEDISORA_RENDER_OFFLOAD={self.offload}"
        )
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One checkpoint on the hub an admin can pull by ``name``."""

    name: str
    title: str
    family: str
    """The fedisora family it renders as (a key of :data:`render.spec.FAMILIES`, or a family
    this version does not support yet: listed, pullable, refused by ``model use``)."""
    repo_id: str
    pipeline_classes: tuple[str, ...]
    """Classes its ``model_index.json`` may name."""
    licence: str
    licence_url: str
    disk_gb: float
    """Approximate download size (see the module's docstring)."""
    min_vram_gb: int
    """The least GPU memory it renders with at all (with the most offloading)."""
    gpu24: GpuSettings | None
    """Settings for a 24 GB GPU; None when it does not fit one."""
    gpu80: GpuSettings
    revision: str = "main"
    cameos: bool = False
    """Renders cameos (a Wan VACE reference-to-video pipeline)."""
    note: str = ""

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


@dataclass(frozen=True, slots=True)
class TinyModel:
    """A random-weight model built in memory (``render.tiny``): for tests and CPU demos."""

    name: str
    family: str
    builder: str
    """The ``render.tiny`` function that builds its text-to-video pipeline."""
    note: str


TINY_MODELS: Mapping[str, TinyModel] = MappingProxyType(
    {
        "tiny": TinyModel(
            "tiny", "tiny", "build_tiny_wan", "Wan-shaped, with image-to-video and VACE (default)"
        ),
        "tiny-wan": TinyModel(
            "tiny-wan", "tiny", "build_tiny_wan", "the same as tiny, named by its family"
        ),
        "tiny-ltx": TinyModel(
            "tiny-ltx", "tiny-ltx", "build_tiny_ltx", "LTX-Video-shaped, with image-to-video"
        ),
        "tiny-ltx2": TinyModel(
            "tiny-ltx2",
            "tiny-ltx2",
            "build_tiny_ltx2",
            "LTX-2-shaped: picture and sound together, with image-to-video",
        ),
        "tiny-cogvideox": TinyModel(
            "tiny-cogvideox",
            "tiny-cogvideox",
            "build_tiny_cogvideox",
            "CogVideoX-shaped (49 frames, landscape), with image-to-video",
        ),
    }
)
"""The built-in models, by the name ``FEDISORA_RENDER_MODEL`` or ``fedisora model use`` takes."""


def is_tiny(model: str) -> bool:
    """Whether *model* names a built-in tiny model rather than a directory."""
    return model in TINY_MODELS


_APACHE = "https://www.apache.org/licenses/LICENSE-2.0"

_WAN_NOTE = (
    "umt5-xxl text encoder (about 11 GB in bfloat16) is most of the memory at 24 GB; "
    "the Wan VAE stays float32"
)

CATALOGUE: Mapping[str, CatalogueEntry] = MappingProxyType(
    {
        e.name: e
        for e in (
            # --- Wan 2.1 / 2.2 (family "wan": 16 fps, 480p) -------------------------------
            CatalogueEntry(
                name="wan2.1-t2v-1.3b",
                title="Wan 2.1 text-to-video 1.3B",
                family="wan",
                repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                pipeline_classes=("WanPipeline",),
                licence="Apache-2.0",
                licence_url=_APACHE,
                disk_gb=29.0,
                # Wan's README: 8.19 GB with the model offloaded and T5 on the CPU.
                min_vram_gb=9,
                gpu24=GpuSettings(24, 480, 832, 81, 50, "model", _WAN_NOTE),
                gpu80=GpuSettings(80, 480, 832, 161, 50, "none"),
                note="the smallest real model; about 4 minutes for 5 s at 480p on an RTX 4090 "
                "(Wan README)",
            ),
            CatalogueEntry(
                name="wan2.1-t2v-14b",
                title="Wan 2.1 text-to-video 14B",
                family="wan",
                repo_id="Wan-AI/Wan2.1-T2V-14B-Diffusers",
                pipeline_classes=("WanPipeline",),
                licence="Apache-2.0",
                licence_url=_APACHE,
                disk_gb=80.0,
                min_vram_gb=24,
                # The transformer alone is about 28 GB in bfloat16: more than 24 GB even one
                # component at a time (sequential offload or quantization would be needed).
                gpu24=None,
                gpu80=GpuSettings(80, 480, 832, 81, 50, "none", "about 28 GB of bf16 weights"),
            ),
            CatalogueEntry(
                name="wan2.1-vace-1.3b",
                title="Wan 2.1 VACE 1.3B (cameos: reference-to-video)",
                family="wan",
                repo_id="Wan-AI/Wan2.1-VACE-1.3B-diffusers",
                pipeline_classes=("WanVACEPipeline",),
                licence="Apache-2.0",
                licence_url=_APACHE,
                disk_gb=30.0,
                min_vram_gb=10,
                gpu24=GpuSettings(24, 480, 832, 81, 50, "model", _WAN_NOTE),
                gpu80=GpuSettings(80, 480, 832, 161, 50, "none"),
                cameos=True,
                note="renders prompts and cameos (reference stills of a likeness)",
            ),
            CatalogueEntry(
                name="wan2.1-vace-14b",
                title="Wan 2.1 VACE 14B (cameos: reference-to-video)",
                family="wan",
                repo_id="Wan-AI/Wan2.1-VACE-14B-diffusers",
                pipeline_classes=("WanVACEPipeline",),
                licence="Apache-2.0",
                licence_url=_APACHE,
                disk_gb=80.0,
                min_vram_gb=24,
                # The transformer alone is about 28 GB in bfloat16: more than 24 GB even one
                # component at a time (sequential offload or quantization would be needed).
                gpu24=None,
                gpu80=GpuSettings(80, 480, 832, 81, 50, "none"),
                cameos=True,
            ),
            CatalogueEntry(
                name="wan2.2-t2v-a14b",
                title="Wan 2.2 text-to-video A14B (two 14B experts)",
                family="wan",
                repo_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
                pipeline_classes=("WanPipeline",),
                licence="Apache-2.0",
                licence_url=_APACHE,
                # Each expert is stored in float32 (12 shards of about 4.9 GB).
                disk_gb=126.0,
                min_vram_gb=40,
                gpu24=None,  # not without quantization, which fedisora does not apply
                gpu80=GpuSettings(80, 480, 832, 81, 40, "model", "one expert on the GPU at a time"),
                note="a high-noise and a low-noise expert (transformer, transformer_2). "
                "Wan2.2-TI2V-5B is not listed: it renders 24 fps with a 16x VAE, which the "
                "wan family's limits (16 fps, sizes in multiples of 16) do not describe",
            ),
            # --- LTX-Video (family "ltx": 24 fps, 768x448) ---------------------------------
            CatalogueEntry(
                name="ltx-video-0.9",
                title="LTX-Video 2B v0.9",
                family="ltx",
                # The repo root holds the diffusers layout of v0.9 beside many single-file
                # checkpoints of later versions; a pull fetches only model_index.json's
                # components.
                repo_id="Lightricks/LTX-Video",
                pipeline_classes=("LTXPipeline",),
                # Not verified against the card when written: the v0.9 2B weights shipped
                # under Lightricks' own open-weights licence (use restrictions), not Apache.
                licence="LTX-Video open weights licence (see the model card)",
                licence_url="https://huggingface.co/Lightricks/LTX-Video",
                disk_gb=25.0,
                min_vram_gb=12,
                gpu24=GpuSettings(24, 448, 768, 121, 50, "none", "T5-XXL text encoder in bf16"),
                gpu80=GpuSettings(80, 448, 768, 241, 50, "none"),
                note="fast: near real time on an H100 (Lightricks); also renders from a still",
            ),
            # --- LTX-2 (audio and video; family "ltx2") ------------------------------------
            CatalogueEntry(
                name="ltx-2",
                title="LTX-2 (video with synchronized audio)",
                family="ltx2",
                repo_id="Lightricks/LTX-2",
                pipeline_classes=("LTX2Pipeline",),
                licence="LTX-2 Community License (free below USD 10M annual revenue)",
                licence_url="https://github.com/Lightricks/LTX-2/blob/main/LICENSE-2",
                # A 19B transformer and a Gemma 3 12B text encoder: an estimate.
                disk_gb=90.0,
                min_vram_gb=32,
                gpu24=None,  # not without quantization
                gpu80=GpuSettings(80, 448, 768, 121, 40, "model"),
                note="renders the sound with the picture (family ltx2; tiny-ltx2 runs the same "
                "code path offline); not tried with these weights here",
            ),
            # --- CogVideoX 1.0 (family "cogvideox": 49 frames at 720x480, 8 fps) -------------
            CatalogueEntry(
                name="cogvideox-2b",
                title="CogVideoX 2B",
                family="cogvideox",
                repo_id="THUDM/CogVideoX-2b",
                pipeline_classes=("CogVideoXPipeline",),
                licence="Apache-2.0",
                licence_url=_APACHE,
                disk_gb=14.0,
                # Model card: 12.5 GB in fp16 with diffusers, about 4 GB with offload and VAE
                # tiling.
                min_vram_gb=6,
                gpu24=GpuSettings(24, 720, 480, 49, 50, "none"),
                gpu80=GpuSettings(80, 720, 480, 49, 50, "none"),
            ),
            CatalogueEntry(
                name="cogvideox-5b",
                title="CogVideoX 5B",
                family="cogvideox",
                repo_id="THUDM/CogVideoX-5b",
                pipeline_classes=("CogVideoXPipeline",),
                # Its own licence: free research use; commercial use needs registration with
                # the authors. Read it before serving.
                licence="CogVideoX License (commercial use needs registration)",
                licence_url="https://huggingface.co/THUDM/CogVideoX-5b/blob/main/LICENSE",
                disk_gb=22.0,
                min_vram_gb=8,
                gpu24=GpuSettings(24, 720, 480, 49, 50, "model"),
                gpu80=GpuSettings(80, 720, 480, 49, 50, "none"),
                note="CogVideoX 1.5 is not listed: 81 frames at 1360x768 are outside the "
                "cogvideox family's limits",
            ),
        )
    }
)


def entry_named(name: str) -> CatalogueEntry:
    """The catalogue entry *name*; ``KeyError`` (with the known names) otherwise."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not in the catalogue (known: {', '.join(sorted(CATALOGUE))})"
        ) from None
