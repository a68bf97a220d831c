"""render.spec: limits, plans and output checks, as tables of cases."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from render.errors import RenderError, RenderLimitError
from render.spec import (
    ASPECTS,
    FAMILIES,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    RenderPlan,
    RenderSpec,
    check_output,
    family_named,
    plan,
    validate,
)

BASE = RenderSpec(prompt="a heron lands on a pier at dawn", seed=7)


# ---------------------------------------------------------------- families


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
def test_family_sizes_fit_the_vae_and_h264(family: Any) -> None:
    for aspect, (w, h) in family.sizes.items():
        assert aspect in ASPECTS
        assert w % family.size_multiple == 0 and h % family.size_multiple == 0
        assert w % 2 == 0 and h % 2 == 0
        ratio = {"9:16": 9 / 16, "1:1": 1.0, "16:9": 16 / 9}[aspect]
        assert abs(w / h - ratio) / ratio < 0.2, (aspect, w, h)
    assert family.is_valid_frame_count(family.max_frames)
    assert family.is_valid_frame_count(family.min_frames)


@pytest.mark.parametrize(
    ("name", "fps", "max_frames", "max_seconds"),
    [
        ("wan", 16, 161, 10.0),
        ("ltx", 24, 241, 10.0),
        ("cogvideox", 8, 49, 6.0),
        ("tiny", 16, 161, 10.0),
    ],
)
def test_family_table(name: str, fps: int, max_frames: int, max_seconds: float) -> None:
    fam = family_named(name)
    assert (fam.fps, fam.max_frames, fam.max_seconds) == (fps, max_frames, max_seconds)


def test_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(RenderError, match="wan"):
        family_named("sora")


# ---------------------------------------------------------------- plan


@pytest.mark.parametrize(
    ("family", "seconds", "aspect", "cap", "frames", "size"),
    [
        ("wan", 5, "9:16", 10, 81, (480, 832)),  # Wan's own default clip
        ("wan", 10, "16:9", 10, 161, (832, 480)),  # the platform cap: 161 frames at 16 fps
        ("wan", 3, "1:1", 10, 49, (624, 624)),
        ("wan", 0.1, "9:16", 10, 5, (480, 832)),  # shorter than one step: the minimum
        ("wan", 9.9, "9:16", 10, 161, (480, 832)),  # nearest valid count
        ("wan", 6, "9:16", 6, 97, (480, 832)),  # instance cap of 6 s
        ("wan", 5.9, "9:16", 5.9, 93, (480, 832)),  # rounding up would pass the cap
        ("ltx", 10, "16:9", 10, 241, (768, 448)),  # 241 frames at 24 fps
        ("ltx", 5, "9:16", 10, 121, (448, 768)),
        ("ltx", 1, "1:1", 10, 25, (576, 576)),
        ("cogvideox", 2, "16:9", 10, 49, (720, 480)),  # fixed length
        ("tiny", 1, "9:16", 10, 17, (64, 112)),
        ("tiny", 0.5, "16:9", 10, 9, (112, 64)),
        ("tiny256", 3, "1:1", 10, 49, (256, 256)),  # the overhead benchmark's clip
        ("tiny256", 1, "9:16", 10, 17, (144, 256)),
    ],
)
def test_plan(
    family: str, seconds: float, aspect: str, cap: float, frames: int, size: tuple[int, int]
) -> None:
    p = plan(replace(BASE, seconds=seconds, aspect=aspect), family, cap)
    fam = family_named(family)
    assert (p.frames, (p.width, p.height)) == (frames, size)
    assert p.fps == fam.fps and p.family == family and p.seed == BASE.seed
    assert p.steps == fam.default_steps
    assert fam.is_valid_frame_count(p.frames)
    assert (p.frames - 1) / p.fps <= cap
    check_output(p.frames, p.fps, p.width, p.height, fam, cap)  # a plan always passes


def test_plan_steps_override_and_limits() -> None:
    assert plan(BASE, "wan", 10, steps=8).steps == 8
    for bad in (0, 101, True):
        with pytest.raises(RenderLimitError) as err:
            plan(BASE, "wan", 10, steps=bad)
        assert err.value.limit == "steps"


def test_plan_duration_is_playback_length() -> None:
    p = RenderPlan("wan", 161, 16, 832, 480, 50, 5.0, 1)
    assert p.duration == pytest.approx(10.0625)


# ---------------------------------------------------------------- validate


@pytest.mark.parametrize(
    ("changes", "family", "cap", "limit", "fragment"),
    [
        ({"prompt": ""}, "wan", 10, "prompt", "must not be empty"),
        ({"prompt": "   \n"}, "wan", 10, "prompt", "1 to 2000"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "wan", 10, "prompt", "at most 2000"),
        ({"prompt": "a\x00b"}, "wan", 10, "prompt", "U+0000"),
        ({"negative_prompt": "y" * 2001}, "wan", 10, "negative_prompt", "at most 2000"),
        ({"seconds": 0}, "wan", 10, "seconds", "more than 0 and at most 10"),
        ({"seconds": -1}, "wan", 10, "seconds", "at most 10"),
        ({"seconds": 10.5}, "wan", 10, "seconds", "at most 10"),
        ({"seconds": 11}, "ltx", 60, "seconds", "at most 10"),  # platform cap beats instance
        ({"seconds": 7}, "wan", 6, "seconds", "at most 6"),  # instance cap
        ({"seconds": 7}, "cogvideox", 10, "seconds", "at most 6"),  # family cap
        ({"seconds": float("nan")}, "wan", 10, "seconds", "at most 10"),
        ({"seconds": float("inf")}, "wan", 10, "seconds", "at most 10"),
        ({"seconds": "5"}, "wan", 10, "seconds", "must be a number"),
        ({"seconds": True}, "wan", 10, "seconds", "must be a number"),
        ({"seconds": 2}, "cogvideox", 5, "seconds", "only renders 6 s clips"),
        ({"aspect": "4:3"}, "wan", 10, "aspect", "allowed: 9:16, 1:1, 16:9"),
        ({"aspect": "9:16"}, "cogvideox", 10, "aspect", "allowed: 16:9"),
        ({"seed": -1}, "wan", 10, "seed", f"0 to {MAX_SEED}"),
        ({"seed": MAX_SEED + 1}, "wan", 10, "seed", "0 to"),
        ({"seed": 1.5}, "wan", 10, "seed", "whole number"),
        ({"seed": False}, "wan", 10, "seed", "whole number"),
        ({"kind": "audio"}, "wan", 10, "kind", "allowed: text, image, remix"),
        ({"kind": "image"}, "wan", 10, "input_image", "needs an input image"),
        ({"input_image": "/tmp/a.png"}, "wan", 10, "input_image", "use 'image'"),
        ({"kind": "remix"}, "wan", 10, "remix_source", "needs"),
        ({"remix_source": "https://a.example/p/1"}, "wan", 10, "remix_source", "takes no"),
        ({"cameo_refs": ("a", "b", "c", "d", "e")}, "wan", 10, "cameo_refs", "at most 4"),
        ({"cameo_refs": ("a", "a")}, "wan", 10, "cameo_refs", "twice"),
        ({"cameo_refs": ("",)}, "wan", 10, "cameo_refs", "non-empty"),
        ({"cameo_refs": ["a"]}, "wan", 10, "cameo_refs", "tuple"),
    ],
)
def test_validate_refuses(
    changes: dict[str, Any], family: str, cap: float, limit: str, fragment: str
) -> None:
    spec = replace(BASE, **changes)
    with pytest.raises(RenderLimitError) as err:
        validate(spec, family, cap)
    assert err.value.limit == limit
    assert fragment in err.value.message
    assert str(err.value).startswith(f"{limit}: ")
    assert isinstance(err.value, ValueError)  # callers may map it as bad input


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"prompt": "x" * MAX_PROMPT_CHARS},
        {"prompt": "line one\nline two\twith tab"},
        {"prompt": "un renard roux sous la neige, 雪の中の狐"},
        {"seconds": 10},
        {"seconds": 1},
        {"seed": 0},
        {"seed": MAX_SEED},
        {"kind": "image", "input_image": "/data/in.png"},
        {"kind": "remix", "remix_source": "https://a.example/videos/1"},
        {
            "kind": "remix",
            "remix_source": "https://a.example/videos/1",
            "input_image": "/data/still.png",
        },
        {"cameo_refs": ("consent:1", "consent:2", "consent:3", "consent:4")},
    ],
)
def test_validate_accepts(changes: dict[str, Any]) -> None:
    validate(replace(BASE, **changes), "wan", 10)


def test_validate_rejects_a_nonsense_instance_cap() -> None:
    with pytest.raises(ValueError, match="instance_max_seconds"):
        validate(BASE, "wan", 0)


# ---------------------------------------------------------------- check_output


@pytest.mark.parametrize(
    ("frames", "fps", "width", "height", "family", "cap"),
    [
        (81, 16, 480, 832, "wan", 10),
        (161, 16, 832, 480, "wan", 10),
        (241, 24, 768, 448, "ltx", 10),
        (49, 8, 720, 480, "cogvideox", 10),
        (17, 16, 64, 112, "tiny", 10),
        (49, 16, 256, 256, "tiny256", 10),
        (97, 16, 480, 832, "wan", 6),
    ],
)
def test_check_output_accepts(
    frames: int, fps: int, width: int, height: int, family: str, cap: float
) -> None:
    check_output(frames, fps, width, height, family, cap)


@pytest.mark.parametrize(
    ("frames", "fps", "width", "height", "family", "cap", "limit"),
    [
        (80, 16, 480, 832, "wan", 10, "frames"),  # not 4k+1
        (165, 16, 480, 832, "wan", 10, "frames"),  # past the family's max
        (1, 16, 480, 832, "wan", 10, "frames"),  # below the minimum
        (81, 24, 480, 832, "wan", 10, "fps"),
        (121, 30, 768, 448, "ltx", 10, "fps"),
        (249, 24, 768, 448, "ltx", 10, "frames"),  # 8k+1 but past LTX's 241
        (120, 24, 768, 448, "ltx", 10, "frames"),  # not 8k+1
        (101, 16, 480, 832, "wan", 6, "seconds"),  # 6.25 s on a 6 s instance
        (45, 8, 720, 480, "cogvideox", 10, "frames"),  # fixed 49
        (81, 16, 481, 832, "wan", 10, "width"),
        (81, 16, 480, 840, "wan", 10, "height"),
        (81, 16, 1280, 720, "wan", 10, "width"),  # larger than the family renders
        (81, 16, 0, 832, "wan", 10, "width"),
        (49, 16, 256, 256, "tiny", 10, "width"),  # 256 px only through tiny256
        (49, 16, 248, 248, "tiny256", 10, "width"),  # not a multiple of 16
    ],
)
def test_check_output_refuses(
    frames: int, fps: int, width: int, height: int, family: str, cap: float, limit: str
) -> None:
    with pytest.raises(RenderLimitError) as err:
        check_output(frames, fps, width, height, family, cap)
    assert err.value.limit == limit
