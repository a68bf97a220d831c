"""FEDISORA_RENDER_COMPILE=1 really compiles: torch.compile with inductor on this CPU.

The module compiles once (the tiny model's text-to-video transformer, at the smallest
clip the tiny family plans: 5 frames at 80x80, 2 steps) in a fresh inductor cache, so
every run does the whole compile (C++ code generation and gcc), not a cache lookup. That
first render took about 30 s on an idle 2-core machine, 70 s while other jobs loaded it;
later renders take milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from render.spec import RenderPlan, RenderSpec, plan

SPEC = RenderSpec(prompt="a red kite over a hill", seed=7, seconds=0.25, aspect="1:1")


@dataclass
class CompiledRun:
    loaded: Any
    plan: RenderPlan
    frames: np.ndarray
    seconds: float
    graphs: int
    graph_breaks: dict[str, int]
    inductor: dict[str, int]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompiledRun]:
    """The tiny model loaded with the compile setting on, and its first (compiling) render."""
    import torch
    from torch._dynamo.utils import counters
    from torch._inductor.utils import fresh_cache

    from fedisora.config import load_settings
    from render.pipeline import load_pipeline
    from render.queue import pipeline_options

    tmp: Path = tmp_path_factory.mktemp("compile")
    settings = load_settings(
        {
            "FEDISORA_DATA_DIR": str(tmp),
            "FEDISORA_CONFIG": str(tmp / "none.env"),
            "FEDISORA_RENDER_COMPILE": "1",
        }
    )
    options = pipeline_options(settings, cuda=False)
    assert options["compile"] is True
    loaded = load_pipeline(settings.render_model, device="cpu", **options)
    p = plan(SPEC, loaded.family, 10, steps=2)
    assert (p.frames, p.width, p.height, p.steps) == (5, 80, 80, 2)  # the smallest tiny clip

    torch._dynamo.reset()
    counters.clear()
    with fresh_cache(dir=str(tmp)):
        started = time.perf_counter()
        frames = loaded.generate(p, SPEC)
        seconds = time.perf_counter() - started
    yield CompiledRun(
        loaded=loaded,
        plan=p,
        frames=frames,
        seconds=seconds,
        graphs=counters["stats"]["unique_graphs"],
        graph_breaks=dict(counters["graph_break"]),
        inductor=dict(counters["inductor"]),
    )
    torch._dynamo.reset()


def test_compiled_render_matches_the_eager_one(compiled: CompiledRun, tiny: Any) -> None:
    # One graph for the whole transformer, compiled by inductor: no graph breaks, and the
    # two guidance branches (same shapes) share it.
    assert compiled.graphs == 1
    assert compiled.graph_breaks == {}
    assert compiled.inductor.get("fxgraph_cache_miss") == 1  # compiled here, not loaded
    assert compiled.seconds < 180, f"first compiled render took {compiled.seconds:.0f} s"

    eager = tiny.generate(compiled.plan, SPEC)
    frames = compiled.frames
    assert frames.shape == eager.shape == (5, 80, 80, 3)
    assert frames.dtype == np.uint8 and frames.flags["C_CONTIGUOUS"]
    assert frames.std() > 5
    diff = np.abs(frames.astype(int) - eager.astype(int))
    # inductor may reorder float sums; after rounding to 8 bits that is at most a step.
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_compiled_pipeline_renders_again_without_recompiling(
    compiled: CompiledRun, tiny: Any
) -> None:
    from torch._dynamo.utils import counters

    other = replace(compiled.plan, seed=8)
    started = time.perf_counter()
    frames = compiled.loaded.generate(other, SPEC)
    seconds = time.perf_counter() - started
    assert counters["stats"]["unique_graphs"] == compiled.graphs  # no recompile
    assert seconds < compiled.seconds / 4
    eager = tiny.generate(other, SPEC)
    assert np.abs(frames.astype(int) - eager.astype(int)).max() <= 2
    assert not np.array_equal(frames, compiled.frames)  # the seed still matters
