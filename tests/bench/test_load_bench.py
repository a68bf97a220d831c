"""bench/load.py runs end to end for a few seconds per phase and prints its report.

It starts its own instances (1, then 2 web processes and a worker) on PostgreSQL (a scratch
database on the test server) and a Redis server of its own, drives them with locust, and prints
per-route-class numbers, errors, memory, CPU per process and per 1000 requests, the 2 / 1
throughput ratio, the web CPU per request ratio and the projected throughput ratio. At this
length the numbers are noise, so only the structure, that the figures are positive and that
the load did work without errors are checked; the targets (>= 1.7 with the cores for it,
<= 1.15 for the CPU ratio) are for the 10-minute run.

Without locust, the CPU accounting (process trees, PostgreSQL backends, /proc/stat) and the
summary's arithmetic are checked on their own, on processes and a database made here."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from benchscript import load_bench as _load_bench

ROOT = Path(__file__).parents[2]
BENCH = ROOT / "bench" / "load.py"
NUMBER = r"(\d+(?:\.\d+)?)"


def load() -> ModuleType:
    """bench/load.py, loaded from its file (tests/support/benchscript.py)."""
    return _load_bench("load")


@pytest.mark.slow
def test_load_bench_quick() -> None:
    # Not imported here: locust monkey-patches the process (gevent) when imported.
    # (scripts/test installs the bench extra: a missing locust is a failed set-up)
    assert importlib.util.find_spec("locust") is not None, (
        "locust is not installed (the bench extra: pip install -e '.[bench]')"
    )
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
        cpu = dict(re.findall(rf"^    (web\d|worker|postgres|redis)\s+{NUMBER}  \(", phase, re.M))
        assert set(cpu) == {"web1", "worker", "postgres", "redis"} | (
            {"web2"} if "web2" in phase else set()
        ), phase
        assert float(cpu["web1"]) > 0, phase
        for figure in (
            "requests/s",
            "web CPU s per 1000 requests",
            "server CPU s per 1000 requests",
            "cores busy",
        ):
            found = re.search(rf"^  {figure}: {NUMBER}", phase, re.M)
            assert found and float(found.group(1)) > 0, (figure, phase)
        assert "(measured, /proc/<pid>/stat" in phase
    assert "web2" in phases[1]
    assert re.search(
        r"^throughput, 2 web processes / 1: [\d.]+ / [\d.]+ req/s = [\d.]+x "
        r"\(measured; target >= 1\.7 .*\) (PASS|MISS); \d+ cores \(os\.cpu_count\(\) \d+\) "
        r"shared by everything.*locust",
        out,
        re.M,
    ), out
    ratio = re.search(
        rf"^web CPU per request, 2 processes / 1 process: {NUMBER} / {NUMBER} CPU s per 1000 "
        rf"requests = {NUMBER}x \(measured; target <= 1\.15.*\) (PASS|MISS)$",
        out,
        re.M,
    )
    assert ratio and all(float(x) > 0 for x in ratio.groups()[:3]), out
    projected = re.search(
        rf"^throughput, 2 web processes / 1, on a machine with a free core per web process: "
        rf"2 / {NUMBER} = {NUMBER}x \(projected, not measured",
        out,
        re.M,
    )
    assert projected and float(projected.group(2)) > 0, out


_BURNER = """
import os, signal, sys, time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

print("ready", flush=True)
sys.stdin.readline()
child = os.fork()
if child == 0:
    burn(0.4)
    os._exit(0)
os.waitpid(child, 0)  # reaped: its CPU is the parent's cutime now
r, w = os.pipe()
child = os.fork()
if child == 0:
    burn(0.4)
    os.write(w, b"x")
    time.sleep(120)  # alive when the meter stops
    os._exit(0)
os.read(r, 1)
print("done", flush=True)
sys.stdin.readline()
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
"""


def test_cpu_meter_counts_process_trees_and_backends(postgres_url: str) -> None:
    bench = load()
    database = postgres_url.rsplit("/", 1)[1]
    burner = subprocess.Popen(
        [sys.executable, "-c", _BURNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    stdin, stdout = burner.stdin, burner.stdout
    assert stdin is not None and stdout is not None
    try:
        assert stdout.readline() == "ready\n"
        phase = bench.Phase(webs=1, seconds=1)

        async def measured() -> None:
            import asyncpg

            conn = await asyncpg.connect(postgres_url.replace("postgres://", "postgresql://", 1))
            try:
                meter = bench.CpuMeter({"burner": burner.pid, "gone": 2**22 + 1}, database)
                meter.start()
                stdin.write("go\n")
                stdin.flush()
                await conn.execute("SET max_parallel_workers_per_gather = 0")
                await conn.fetchval("SELECT count(*) FROM generate_series(1, 4000000)")
                assert stdout.readline() == "done\n"
                meter.stop(phase)
            finally:
                await conn.close()

        asyncio.run(measured())
    finally:
        burner.communicate("end\n", timeout=60)
    # Two children burned 0.4 s each: one reaped (cutime), one alive at the end (its own).
    assert 0.75 <= phase.cpu["burner"] < 0.75 + phase.window, phase.cpu
    assert phase.cpu["gone"] == 0  # no such process: nothing, not an error
    assert phase.cpu["postgres"] > 0.05 and phase.backends >= 1, phase.cpu
    assert phase.cpu["locust"] >= 0 and phase.cpu["bench"] > 0  # this process read /proc
    assert 0 < phase.busy <= 1 and 0 <= phase.steal < 1 and phase.window > 0


def test_summary_measured_and_projected(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load()
    one = bench.Phase(webs=1, seconds=60, total={"requests": 1000.0, "rps": 10.0})
    one.cpu = {"web1": 10.0, "worker": 2.0, "postgres": 3.0, "redis": 1.0, "locust": 9.0}
    two = bench.Phase(webs=2, seconds=60, total={"requests": 1500.0, "rps": 15.0})
    two.cpu = {"web1": 8.0, "web2": 8.5, "worker": 2.0, "postgres": 4.0, "redis": 1.0}
    assert one.per_1000(one.web_cpu) == 10.0 and two.per_1000(two.web_cpu) == 11.0
    assert one.per_1000(one.server_cpu) == 16.0  # locust is not the server's
    bench.summary(one, two, 2)
    out = capsys.readouterr().out
    assert "15.0 / 10.0 req/s = 1.500x (measured; target >= 1.7" in out
    assert ") MISS; 2 cores" in out
    assert "11.00 / 10.00 CPU s per 1000 requests = 1.100x (measured; target <= 1.15" in out
    assert "a second web process adds no per-request cost) PASS" in out
    assert "free core per web process: 2 / 1.100 = 1.82x (projected, not measured" in out
