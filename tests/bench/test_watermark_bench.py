"""bench/watermark.py runs on a small clip: its survival tally and its cost table.

The robustness itself is tested in tests/render/test_render_watermark.py on the bench's
own clips and transformations; this keeps the script's reporting from rotting."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from benchscript import load_bench as _load_bench

BENCH = Path(__file__).parents[2] / "bench" / "watermark.py"


def load() -> ModuleType:
    """bench/watermark.py, loaded from its file (tests/support/benchscript.py)."""
    return _load_bench("watermark")


def test_survive_tallies_each_transformation_and_cost_prints_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = load()
    frames = bench.natural_clip(1, frames=9)
    assert frames.shape == (9, 480, 832, 3)
    with tempfile.TemporaryDirectory() as work:
        tally = bench.survive(
            [(frames, 77)],
            lambda f, i: bench.embed_id(f, i, key=bench.KEY),
            lambda f: bench.read_id(f, key=bench.KEY),
            Path(work),
            "tile",
        )
    assert list(tally) == list(bench.TRANSFORMS)
    assert all(sum(c.values()) == 1 for c in tally.values())
    assert tally["none (our CRF 20)"]["right"] == 1
    assert len(bench.SCORES["tile"]["CRF 28"]) == 1

    bench.cost(frames, 1)
    out = capsys.readouterr().out
    assert re.search(r"embed: tile [\d.]+, block [\d.]+, tile / block [\d.]+", out)
    assert re.search(r"read: tile [\d.]+, block [\d.]+, tile / block [\d.]+", out)
    assert "read of an unmarked clip" in out
