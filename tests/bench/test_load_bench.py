"""bench/load.py runs end to end for a few seconds per phase and prints its report.

It starts its own instances (1, then 2 web processes and a worker) on PostgreSQL (a scratch
database on the test server) and a Redis server of its own, drives them with locust, and prints
per-route-class numbers, errors, memory and the 2 / 1 throughput ratio. At this length the
numbers are noise, so only the structure and that the load did work without errors are
checked; the target (>= 1.7 with the cores for it) is for the 10-minute run."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).parents[2]
BENCH = ROOT / "bench" / "load.py"


def test_load_bench_quick() -> None:
    # Not imported here: locust monkey-patches the process (gevent) when imported.
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (the bench extra: pip install -e '.[bench]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    if "FEDISORA_TEST_POSTGRES" in os.environ:
        env["FEDISORA_TEST_POSTGRES"] = os.environ["FEDISORA_TEST_POSTGRES"]
    env["PYTHONPATH"] = str(ROOT)
    # No --redis: the bench runs a redis-server of its own.
    argv = [sys.executable, str(BENCH), "--quick", "--seconds", "6"]
    argv += ["--users", "4", "--listeners", "1", "--accounts", "3", "--clips", "2"]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    phases = out.split("\n== ")[1:]
    assert [p.split(",")[0] for p in phases] == ["1 web process", "2 web processes"], out
    for phase in phases:
        rows = {
            m.group(1).strip(): [float(x) for x in m.group(2).split()]
            for m in re.finditer(r"^  (\w[\w ()]*?)\s+(\d+(?:\s+[\d.]+){4})$", phase, re.M)
        }
        for name in ("timeline", "clip page", "all"):
            assert name in rows and rows[name][0] > 0, (name, phase)  # requests were made
        assert rows["all"][4] == 0, phase  # no request failed
        assert "errors: 0 (none)" in phase
        memory = re.findall(r"^    (web\d|worker)\s+([\d.]+) -> ([\d.]+)$", phase, re.M)
        assert {m[0] for m in memory} >= {"web1", "worker"}, phase
        assert all(float(start) > 10 and float(end) > 10 for _, start, end in memory)
    assert "web2" in phases[1]
    assert re.search(
        r"^throughput, 2 web processes / 1: [\d.]+ / [\d.]+ req/s = [\d.]+x "
        r"\(target >= 1\.7 .*\) (PASS|MISS); \d+ cores",
        out,
        re.M,
    ), out
