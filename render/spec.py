"""What a user may ask to render, and what each model family can make of it.

Pure and torch-free: the web process imports this module to validate a create form,
and the worker imports it to plan the render. Every refusal is a ``RenderLimitError``
naming the broken limit and the allowed range.

Frame-count rule: the video models here need ``step * k + 1`` frames (Wan 4k+1,
LTX 8k+1) and N frames span ``(N - 1) / fps`` seconds from first to last, so a 10 s
cap allows 161 frames at 16 fps and 241 at 24 fps. The clip then plays for the cap
plus one frame interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from render.errors import RenderError, RenderLimitError

__all__ = [
    "ASPECTS",
    "FAMILIES",
    "KINDS",
    "MAX_CAMEOS",
    "MAX_PROMPT_CHARS",
    "MAX_REFERENCES",
    "MAX_SECONDS",
    "MAX_SEED",
    "MAX_STEPS",
    "ModelFamily",
    "RenderPlan",
    "RenderSpec",
    "check_output",
    "check_sound",
    "family_named",
    "plan",
    "seconds_cap",
    "validate",
]

MAX_PROMPT_CHARS = 2000
MAX_SECONDS = 10.0
"""The platform's hard cap on clip length; an instance may only lower it."""
MAX_SEED = 2**32 - 1
MAX_STEPS = 100
MAX_CAMEOS = 4
MAX_REFERENCES = 5 * MAX_CAMEOS
"""Reference stills one render may take: up to five per likeness."""
ASPECTS: tuple[str, ...] = ("9:16", "1:1", "16:9")
KINDS: tuple[str, ...] = ("text", "image", "remix")

# C0 controls other than tab, newline and carriage return have no place in a prompt
# and some (NUL) break tokenizers and database drivers.
_FORBIDDEN_CHARS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r") | {"\x7f"}


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """A user's render request, as submitted (after the caller has drawn a seed)."""

    prompt: str
    seed: int
    negative_prompt: str = ""
    seconds: float = 5.0
    aspect: str = "9:16"
    kind: str = "text"
    input_image: str | None = None
    """Local path of the conditioning image (kind "image", optional for "remix")."""
    remix_source: str | None = None
    """Reference (URI) of the post being remixed; required for kind "remix"."""
    cameo_refs: tuple[str, ...] = ()
    """Consent references of the people whose likeness appears."""
    references: tuple[str, ...] = ()
    """Local paths of the reference stills of those likenesses (the worker's consent check
    gives them): the render is conditioned on them (reference-to-video). Never stored."""
    audio: bool = False
    """Whether the clip gets a sound track; only a family that renders sound (``ModelFamily.
    audio``, LTX-2) can make one. The request layer defaults it to the family's ability."""


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """Frame, rate and size limits of one family of video models."""

    name: str
    fps: int
    frame_step: int
    """Frame counts must be ``frame_step * k + 1`` (the VAE's temporal compression)."""
    min_frames: int
    max_frames: int
    sizes: Mapping[str, tuple[int, int]] = field(hash=False)
    """(width, height) per supported aspect: the family's native area, VAE-aligned."""
    size_multiple: int
    """Width and height must be multiples of this (spatial VAE factor x patch size)."""
    default_steps: int
    guidance_scale: float
    fixed_frames: int | None = None
    """Set when the family only renders one length (CogVideoX 1.0: 49 frames)."""
    max_sequence_length: int | None = None
    """Prompt tokens to encode; ``None`` keeps the pipeline's default."""
    takes_references: bool = False
    """Whether the family has a reference-to-video model (Wan VACE) to render cameos with;
    a cameo asked of a family without one is refused. (A family that has one may still be
    served by a model that lacks it: ``LoadedPipeline`` refuses those cameos.)"""
    audio: bool = False
    """Whether the family renders a sound track with the picture (LTX-2 renders both jointly);
    asking a family without sound for one is refused."""
    note: str = field(default="", compare=False)

    @property
    def max_seconds(self) -> float:
        """The longest clip the family can make, by the ``(N - 1) / fps`` rule."""
        return (self.max_frames - 1) / self.fps

    def is_valid_frame_count(self, frames: int) -> bool:
        if self.fixed_frames is not None:
            return frames == self.fixed_frames
        return self.min_frames <= frames <= self.max_frames and (frames - 1) % self.frame_step == 0

    @property
    def max_pixels(self) -> int:
        return max(w * h for w, h in self.sizes.values())


def _sizes(
    portrait: tuple[int, int] | None, square: tuple[int, int] | None, landscape: tuple[int, int]
) -> Mapping[str, tuple[int, int]]:
    """(width, height) by aspect; a family may lack portrait and square."""
    table = {"9:16": portrait, "1:1": square, "16:9": landscape}
    return MappingProxyType({k: v for k, v in table.items() if v is not None})


FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {
        "wan": ModelFamily(
            name="wan",
            fps=16,
            frame_step=4,
            min_frames=5,
            max_frames=161,
            sizes=_sizes((480, 832), (624, 624), (832, 480)),
            size_multiple=16,
            default_steps=50,
            guidance_scale=5.0,
            takes_references=True,
            note="Wan 2.1/2.2 (WanPipeline, WanImageToVideoPipeline; WanVACEPipeline also "
            "renders cameos), 480p",
        ),
        "ltx": ModelFamily(
            name="ltx",
            fps=24,
            frame_step=8,
            min_frames=9,
            max_frames=241,
            sizes=_sizes((448, 768), (576, 576), (768, 448)),
            size_multiple=32,
            default_steps=50,
            guidance_scale=3.0,
            note="LTX-Video (LTXPipeline, LTXImageToVideoPipeline)",
        ),
        "ltx2": ModelFamily(
            name="ltx2",
            fps=24,
            frame_step=8,
            min_frames=9,
            max_frames=257,
            sizes=_sizes((448, 768), (576, 576), (768, 448)),
            size_multiple=32,
            default_steps=40,
            guidance_scale=4.0,
            audio=True,
            note="LTX-2 (LTX2Pipeline, LTX2ImageToVideoPipeline): video and its synchronized "
            "sound, rendered jointly",
        ),
        "cogvideox": ModelFamily(
            name="cogvideox",
            fps=8,
            frame_step=4,
            min_frames=49,
            max_frames=49,
            fixed_frames=49,
            # CogVideoX 1.0 is trained at 720x480 only; it is offered as the landscape aspect.
            sizes=_sizes(None, None, (720, 480)),
            size_multiple=16,
            default_steps=50,
            guidance_scale=6.0,
            note="CogVideoX 1.0 (2B/5B): fixed 49 frames at 720x480",
        ),
        "tiny": ModelFamily(
            name="tiny",
            fps=16,
            frame_step=4,
            min_frames=5,
            max_frames=161,
            sizes=_sizes((64, 112), (80, 80), (112, 64)),
            size_multiple=16,
            default_steps=2,
            guidance_scale=5.0,
            max_sequence_length=32,
            takes_references=True,
            note="random-weight Wan-shaped pipeline (with a VACE one for cameos) for tests and "
            "CPU demos",
        ),
        "tiny256": ModelFamily(
            name="tiny256",
            fps=16,
            frame_step=4,
            min_frames=5,
            max_frames=161,
            sizes=_sizes((144, 256), (256, 256), (256, 144)),
            size_multiple=16,
            default_steps=2,
            guidance_scale=5.0,
            max_sequence_length=32,
            takes_references=True,
            note="the tiny model at 256 px (FEDISORA_RENDER_FAMILY=tiny256): the benchmark's size",
        ),
        "tiny-ltx": ModelFamily(
            name="tiny-ltx",
            fps=24,
            frame_step=8,
            min_frames=9,
            max_frames=241,
            sizes=_sizes((96, 160), (128, 128), (160, 96)),
            size_multiple=32,
            default_steps=2,
            guidance_scale=3.0,
            note="LTX-Video's rules (24 fps, 8k+1 frames, sizes in multiples of 32) at 160 px, "
            "for the tiny random LTX model (FEDISORA_RENDER_MODEL=tiny-ltx)",
        ),
        "tiny-cogvideox": ModelFamily(
            name="tiny-cogvideox",
            fps=8,
            frame_step=4,
            min_frames=49,
            max_frames=49,
            fixed_frames=49,
            sizes=_sizes(None, None, (112, 64)),
            size_multiple=16,
            default_steps=2,
            guidance_scale=6.0,
            note="CogVideoX's rules (fixed 49 frames at 8 fps, landscape only) at 112x64, for "
            "a tiny random CogVideoX (render.tiny.build_tiny_cogvideox) on a CPU: at 720x480 "
            "even that takes half a minute",
        ),
        "tiny-ltx2": ModelFamily(
            name="tiny-ltx2",
            fps=24,
            frame_step=8,
            min_frames=9,
            max_frames=241,
            sizes=_sizes((64, 128), (96, 96), (128, 64)),
            size_multiple=32,
            default_steps=2,
            guidance_scale=3.0,
            max_sequence_length=32,
            audio=True,
            note="LTX-2's rules (8k+1 frames at 24 fps, sizes in multiples of 32, with sound) "
            "for a tiny random LTX-2 (FEDISORA_RENDER_MODEL=tiny-ltx2, render.tiny."
            "build_tiny_ltx2) on a CPU",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """What the pipeline is asked to produce for one spec."""

    family: str
    frames: int
    fps: int
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int
    audio: bool = False
    """Whether the clip gets its rendered sound track (plans stored before sound had none)."""

    @property
    def duration(self) -> float:
        """Playback length of the encoded clip, in seconds."""
        return self.frames / self.fps


def family_named(name: str) -> ModelFamily:
    """The family called ``name``; a ``RenderError`` lists the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise RenderError(f"unknown model family {name!r} (known: {known})") from None


def _resolve(family: ModelFamily | str) -> ModelFamily:
    return family if isinstance(family, ModelFamily) else family_named(family)


def _max_frames_within(seconds: float, fam: ModelFamily) -> int:
    """The largest valid frame count whose span ``(N - 1) / fps`` fits ``seconds``."""
    # The epsilon absorbs float noise such as 0.1 * 30 = 3.0000000000000004.
    budget = min(fam.max_frames, math.floor(seconds * fam.fps + 1e-9) + 1)
    return (budget - 1) // fam.frame_step * fam.frame_step + 1


def seconds_cap(family: ModelFamily | str, instance_max_seconds: float) -> float:
    """The longest clip *family* may render on an instance capped at *instance_max_seconds*."""
    return _seconds_cap(_resolve(family), instance_max_seconds)


def _seconds_cap(fam: ModelFamily, instance_max_seconds: float) -> float:
    if not (isinstance(instance_max_seconds, int | float) and instance_max_seconds > 0):
        raise ValueError(f"instance_max_seconds must be positive, got {instance_max_seconds!r}")
    return min(MAX_SECONDS, float(instance_max_seconds), fam.max_seconds)


def _check_text(limit: str, text: object, *, required: bool) -> None:
    if not isinstance(text, str):
        raise RenderLimitError(limit, f"must be text, got {type(text).__name__}")
    if required and not text.strip():
        raise RenderLimitError(limit, f"must not be empty (1 to {MAX_PROMPT_CHARS} characters)")
    if len(text) > MAX_PROMPT_CHARS:
        raise RenderLimitError(
            limit, f"is {len(text)} characters long; at most {MAX_PROMPT_CHARS} are allowed"
        )
    bad = _FORBIDDEN_CHARS.intersection(text)
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in sorted(bad))
        raise RenderLimitError(limit, f"contains control characters ({codes})")


def validate(spec: RenderSpec, family: ModelFamily | str, instance_max_seconds: float) -> None:
    """Raise ``RenderLimitError`` for the first limit ``spec`` breaks on this instance."""
    fam = _resolve(family)
    _check_text("prompt", spec.prompt, required=True)
    _check_text("negative_prompt", spec.negative_prompt, required=False)

    cap = _seconds_cap(fam, instance_max_seconds)
    seconds = spec.seconds
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise RenderLimitError("seconds", f"must be a number, got {type(seconds).__name__}")
    if not math.isfinite(seconds) or not 0 < seconds <= cap:
        raise RenderLimitError("seconds", f"must be more than 0 and at most {cap:g}, got {seconds}")
    if fam.fixed_frames is not None:
        fixed_span = (fam.fixed_frames - 1) / fam.fps
        instance_cap = min(MAX_SECONDS, float(instance_max_seconds))
        if fixed_span > instance_cap:
            raise RenderLimitError(
                "seconds",
                f"model family {fam.name} only renders {fixed_span:g} s clips, longer than "
                f"this instance's {instance_cap:g} s cap",
            )

    if spec.aspect not in ASPECTS:
        raise RenderLimitError(
            "aspect", f"unknown aspect {spec.aspect!r}; allowed: {', '.join(ASPECTS)}"
        )
    if spec.aspect not in fam.sizes:
        raise RenderLimitError(
            "aspect",
            f"model family {fam.name} cannot render {spec.aspect}; allowed: "
            + ", ".join(fam.sizes),
        )

    seed = spec.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RenderLimitError("seed", f"must be a whole number from 0 to {MAX_SEED}, got {seed!r}")

    if spec.kind not in KINDS:
        raise RenderLimitError("kind", f"unknown kind {spec.kind!r}; allowed: {', '.join(KINDS)}")
    if spec.kind == "image" and not spec.input_image:
        raise RenderLimitError("input_image", "kind 'image' needs an input image")
    if spec.kind == "text" and spec.input_image:
        raise RenderLimitError("input_image", "kind 'text' takes no input image; use 'image'")
    if spec.kind == "remix" and not spec.remix_source:
        raise RenderLimitError("remix_source", "kind 'remix' needs the source post's reference")
    if spec.kind != "remix" and spec.remix_source:
        raise RenderLimitError("remix_source", f"kind {spec.kind!r} takes no remix source")

    refs = spec.cameo_refs
    if not isinstance(refs, tuple) or not all(isinstance(r, str) and r.strip() for r in refs):
        raise RenderLimitError("cameo_refs", "must be a tuple of non-empty references")
    if len(refs) > MAX_CAMEOS:
        raise RenderLimitError("cameo_refs", f"at most {MAX_CAMEOS} cameos, got {len(refs)}")
    if len(set(refs)) != len(refs):
        raise RenderLimitError("cameo_refs", "lists the same cameo twice")
    if refs and not fam.takes_references:
        raise RenderLimitError(
            "cameos",
            f"model family {fam.name} cannot render cameos: it takes no reference images "
            "(a Wan VACE model does)",
        )
    if not isinstance(spec.audio, bool):
        raise RenderLimitError("audio", f"must be true or false, got {spec.audio!r}")
    if spec.audio and not fam.audio:
        raise RenderLimitError(
            "audio",
            f"model family {fam.name} renders no sound; ask for a silent clip (audio false) "
            "or use a family with sound (LTX-2)",
        )
    stills = spec.references
    if not isinstance(stills, tuple) or not all(isinstance(r, str) and r for r in stills):
        raise RenderLimitError("references", "must be a tuple of file paths")
    if stills and not refs:
        raise RenderLimitError("references", "reference images come only with a cameo's consent")
    if len(stills) > MAX_REFERENCES:
        raise RenderLimitError(
            "references", f"at most {MAX_REFERENCES} reference images, got {len(stills)}"
        )


def plan(
    spec: RenderSpec,
    family: ModelFamily | str,
    instance_max_seconds: float,
    *,
    steps: int | None = None,
) -> RenderPlan:
    """Validate ``spec`` and turn it into frame count, rate, size and step count.

    The frame count is the valid count nearest to ``seconds``, never past the cap;
    ``steps`` overrides the family default (an instance may trade quality for speed).
    """
    fam = _resolve(family)
    validate(spec, fam, instance_max_seconds)
    if steps is None:
        steps = fam.default_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise RenderLimitError("steps", f"must be from 1 to {MAX_STEPS}, got {steps!r}")

    if fam.fixed_frames is not None:
        frames = fam.fixed_frames
    else:
        upper = _max_frames_within(_seconds_cap(fam, instance_max_seconds), fam)
        wanted = spec.seconds * fam.fps  # span in frame intervals
        k = round(wanted / fam.frame_step)
        frames = max(fam.min_frames, min(k * fam.frame_step + 1, upper))

    width, height = fam.sizes[spec.aspect]
    return RenderPlan(
        family=fam.name,
        frames=frames,
        fps=fam.fps,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=fam.guidance_scale,
        seed=spec.seed,
        audio=spec.audio,
    )


def check_output(
    frames: int,
    fps: int,
    width: int,
    height: int,
    family: ModelFamily | str,
    max_seconds: float = MAX_SECONDS,
) -> None:
    """Refuse a rendered clip that breaks the family's or the instance's limits.

    The last gate before a clip is encoded and published: a pipeline that ignored
    its plan (or a model swapped under the worker) must not publish a 30 s clip.
    """
    fam = _resolve(family)
    if fps != fam.fps:
        raise RenderLimitError("fps", f"family {fam.name} renders at {fam.fps} fps, got {fps}")
    if not fam.is_valid_frame_count(frames):
        if fam.fixed_frames is not None:
            allowed = f"exactly {fam.fixed_frames}"
        else:
            allowed = f"{fam.frame_step}k+1 from {fam.min_frames} to {fam.max_frames}"
        raise RenderLimitError("frames", f"{frames} frames; family {fam.name} needs {allowed}")
    cap = min(MAX_SECONDS, max_seconds)
    limit = math.floor(cap * fps + 1e-9) + 1
    if frames > limit:
        raise RenderLimitError(
            "seconds",
            f"{frames} frames at {fps} fps span {(frames - 1) / fps:g} s; at most {cap:g} s "
            f"({limit} frames) allowed",
        )
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % fam.size_multiple or value % 2:
            raise RenderLimitError(
                name, f"{value} px; must be a positive multiple of {fam.size_multiple}"
            )
    if width * height > fam.max_pixels:
        raise RenderLimitError(
            "width",
            f"{width}x{height} exceeds family {fam.name}'s largest size ({fam.max_pixels} pixels)",
        )


_MP4_TIMESCALE_SLACK = 0.0005
"""An MP4 states an edited track's length in the movie's timescale (FFmpeg writes ms), so a
track cut to the clip's exact length may read up to half a millisecond longer."""


def check_sound(wanted: bool, fps: int, frames: int, sound: tuple[float, float] | None) -> None:
    """Refuse an encoded clip whose sound breaks the limits: a track asked for and missing
    (or the reverse), one that starts a frame or more away from the picture, or one that
    plays past the last frame. ``sound`` is the track's (start offset from the picture's
    first frame, duration) in seconds, ``None`` without a track."""
    if sound is None:
        if wanted:
            raise RenderLimitError("audio", "the clip was to have sound and has no sound track")
        return
    if not wanted:
        raise RenderLimitError("audio", "the clip was to be silent and has a sound track")
    start, duration = sound
    clip = frames / fps
    if abs(start) >= 1 / fps:
        raise RenderLimitError(
            "audio", f"the sound starts {start * 1000:.0f} ms away from the picture's first frame"
        )
    if start + duration > clip + _MP4_TIMESCALE_SLACK:
        raise RenderLimitError(
            "audio", f"the sound plays {start + duration:.3f} s, longer than the {clip:.3f} s clip"
        )
