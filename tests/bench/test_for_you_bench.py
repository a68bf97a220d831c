"""bench/for_you.py's quality part runs at a tiny size and prints its table and ratios.

At this size the numbers are noise, so only the structure is checked; the target (>= 1.3x
Loops' hit-rate@10, diversity no worse) is for the full run."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import ModuleType

import pytest
from benchscript import load_bench as _load_bench

BENCH = Path(__file__).parents[2] / "bench" / "for_you.py"


def load() -> ModuleType:
    """bench/for_you.py, loaded from its file (tests/support/benchscript.py)."""
    return _load_bench("for_you")


def test_quality_bench_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load()
    started = time.perf_counter()
    means = bench.run_quality(seeds=1, users=12, creators=15, clips=150)
    assert time.perf_counter() - started < 20
    out = capsys.readouterr().out
    names = ["fedisora", "Loops", "Loops, all scored", "recency only"]
    assert list(means) == names
    for name in names:
        row = next(line for line in out.splitlines() if line.startswith(f"{name:<20}"))
        assert len(re.findall(r"\d+\.\d+", row)) == len(bench.COLUMNS), row
        m = means[name]
        for key in ("hit", "any", "ndcg", "coverage", "gini"):
            assert 0.0 <= m[key] <= 1.0, (name, key, m[key])
        assert 0.0 < m["creators"] <= 1.0
    assert re.search(
        r"^fedisora / Loops: hit-rate@10 (\d+\.\d+x|inf), NDCG@10 (\d+\.\d+x|inf), "
        r"distinct creators \d+\.\d+x",
        out,
        re.M,
    ), out
    # Recency only shows each user the same newest clips.
    assert means["recency only"]["coverage"] < means["fedisora"]["coverage"]


def test_same_seed_same_instance_and_responses() -> None:
    bench = load()
    a = bench.build_instance(3, users=5, creators=6, clips=40)
    b = bench.build_instance(3, users=5, creators=6, clips=40)
    assert [(c.creator, c.tags, c.likes, c.views) for c in a.clips] == [
        (c.creator, c.tags, c.likes, c.views) for c in b.clips
    ]
    user, clip = a.users[0], a.clips[-1]
    now = bench.T0
    creator = a.creators[clip.creator]
    assert bench.respond(3, user, creator, clip, now) == bench.respond(3, user, creator, clip, now)
    # Popularity is skewed: the top creators' clips got far more views than the tail's.
    inst = bench.build_instance(1, users=5, creators=40, clips=400)
    local = [c for c in inst.clips if c.local and c.created_at < bench.T0]

    def views(creators: range) -> float:
        counts: list[int] = [c.views for c in local if c.creator in creators]
        return sum(counts) / len(counts)

    assert views(range(3)) > 5 * views(range(20, 40))
