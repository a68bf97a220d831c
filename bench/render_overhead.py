"""What does the render queue cost on top of the pipeline and the encoder?

Renders the same spec (default: 49 frames at 256x256, 2 steps, the tiny model through the
``tiny256`` family, i.e. ``FEDISORA_RENDER_FAMILY=tiny256``) two ways in one process:

- bare: ``LoadedPipeline.generate`` then ``encode_mp4``, nothing else;
- queue: ``submit_render`` and an in-process runner on a scratch SQLite database, i.e. the
  RenderJob row, claims and fenced transitions, progress writes, the frames file, visible
  and invisible watermarks, encode, the limit checks before and after, C2PA signing and
  verification, the MediaFile row and the owner's notification.

The two paths alternate (bare, queue, bare, queue, ...) after one warm-up of each, so load
from other processes hits them alike; the report gives medians with min-max spread, the
ratio of the medians, the median of the per-pair ratios and, because the pipeline's own
time swings by tens of percent on a shared CPU, the overhead measured without it: queue
time outside ``generate`` against bare time outside ``generate``, as a share of the bare
total. The queue's extra steps are also timed alone on the same frames (watermarks, frames
file, signing, verification) to show where the overhead goes.

Measured on the 2-core CPU machine (5 pairs, other processes running): generate about 6 s,
queue / bare 1.01 (pairs 0.95 to 1.10), queue work outside the pipeline and the encoder
about 180 ms = 3 % of the bare total, of which the invisible watermark is 100 ms. The
first runs here showed 250 ms more in the rendering stage: np.save of the pipeline's
transposed (strided) frame array; ``LoadedPipeline.generate`` now returns C-order frames.

Run: ``.venv/bin/python bench/render_overhead.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedisora import urls
from fedisora.config import load_settings
from fedisora.db import close_db, init_db, migrate
from fedisora.models import RenderJob
from fedisora.services.accounts import create_local_account
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.encode import encode_mp4
from render.instance import watermark_id, watermark_key
from render.pipeline import load_pipeline
from render.provenance import ProvenanceClaim, generate_instance_ca, sign_mp4, verify_mp4
from render.queue import build_render_machine, pipeline_options
from render.spec import RenderSpec, plan
from render.watermark import apply_visible_mark, embed_id

Run = dict[str, float]


class TimedPipeline:
    """The loaded pipeline, recording how long each ``generate`` call took."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.family, self.model = inner, inner.family, inner.model
        self.last = 0.0

    def supports(self, spec: Any) -> bool:
        return bool(self.inner.supports(spec))

    def generate(self, p: Any, spec: Any, on_step: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.generate(p, spec, on_step)
        finally:
            self.last = time.perf_counter() - t0


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fedisora-bench-"))
    settings = load_settings(
        {
            "FEDISORA_DATA_DIR": str(tmp),
            "FEDISORA_CONFIG": str(tmp / "none.env"),
            "FEDISORA_DOMAIN": "bench.example",
            "FEDISORA_SECRET_KEY": "b" * 40,
            "FEDISORA_RENDER_FAMILY": args.family,
            "FEDISORA_LOG_LEVEL": "warning",
        }
    )
    settings = replace(settings, render_steps=args.steps)
    creds = generate_instance_ca("bench.example")
    prov = tmp / "provenance"
    prov.mkdir()
    for name, pem in (("root", creds.root_pem), ("chain", creds.chain_pem), ("key", creds.key_pem)):
        (prov / f"{name}.pem").write_text(pem)
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)

    started = time.perf_counter()
    options = pipeline_options(settings, cuda=False)
    pipe = TimedPipeline(load_pipeline("tiny", device="cpu", **options))
    print(f"pipeline load (once per worker process): {time.perf_counter() - started:.2f} s")
    print(f"load options: {options}")
    spec = RenderSpec(prompt=args.prompt, seed=1234, seconds=args.seconds, aspect=args.aspect)
    p = plan(spec, pipe.family, settings.max_clip_seconds, steps=args.steps)
    print(f"spec: {p.frames} frames at {p.width}x{p.height}, {p.steps} steps, {p.fps} fps")

    def bare() -> Run:
        t0 = time.perf_counter()
        frames = pipe.generate(p, spec)
        t1 = time.perf_counter()
        encode_mp4(frames, tmp / "bare.mp4", fps=p.fps)
        t2 = time.perf_counter()
        return {"generate": t1 - t0, "encode": t2 - t1, "total": t2 - t0}

    async def load(_settings: Any) -> Any:
        return pipe

    engine = Engine([build_render_machine(settings, load=load)], context={"settings": settings})
    stages: dict[str, float] = defaultdict(float)
    advance = engine.advance

    async def timed_advance(table: str, pk: Any) -> Any:
        state = await RenderJob.filter(pk=pk).values_list("state", flat=True)
        t0 = time.perf_counter()
        result = await advance(table, pk)
        stages[str(state[0]) if state else "?"] += time.perf_counter() - t0
        return result

    engine.advance = timed_advance  # type: ignore[method-assign]
    account = await create_local_account("bench", "bench@example.com", "correct horse battery")

    async def queued() -> Run:
        stages.clear()
        t0 = time.perf_counter()
        job = await submit(account)
        runner = InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.05)
        await runner.drain(600)
        total = time.perf_counter() - t0
        job = await RenderJob.get(pk=job.pk)
        if job.state != "ready":
            raise SystemExit(f"job {job.pk} ended {job.state}: {job.last_error}")
        return {**stages, "generate": pipe.last, "total": total}

    async def submit(account: Any) -> RenderJob:
        from render.service import submit_render

        return await submit_render(
            account,
            {"prompt": args.prompt, "seed": 1234, "seconds": args.seconds, "aspect": args.aspect},
            settings=settings,
            engine=engine,
            enforce_quota=False,
        )

    # Both paths run the pipeline in a worker thread (the queue always does).
    await asyncio.to_thread(bare)  # warm up torch kernels and the encoder
    await queued()  # and the queue's first-use costs (c2pa, fonts, the DB connection)
    bare_runs: list[Run] = []
    queue_runs: list[Run] = []
    for i in range(args.runs):
        bare_runs.append(await asyncio.to_thread(bare))
        queue_runs.append(await queued())
        b, q = bare_runs[-1]["total"], queue_runs[-1]["total"]
        print(f"  pair {i + 1}: bare {b:6.2f} s, queue {q:6.2f} s, ratio {q / b:.3f}", flush=True)

    # The queue's extra steps alone, on this clip's frames (what they cost, not where).
    frames = pipe.inner.generate(p, spec)
    claim = ProvenanceClaim(
        instance="bench.example", job_id="0", model="tiny", seed=1234, prompt_sha256="0" * 64
    )
    extras: dict[str, list[float]] = defaultdict(list)
    src, signed = tmp / "extra.mp4", tmp / "signed.mp4"
    encode_mp4(frames, src, fps=p.fps)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        marked = apply_visible_mark(frames, instance="bench.example", creator="bench")
        t1 = time.perf_counter()
        embed_id(marked, watermark_id(1), key=watermark_key(settings))
        t2 = time.perf_counter()
        sign_mp4(src, signed, chain_pem=creds.chain_pem, key_pem=creds.key_pem, claim=claim)
        t3 = time.perf_counter()
        verify_mp4(signed, [creds.root_pem])
        t4 = time.perf_counter()
        for name, seconds in zip(
            ("visible mark", "invisible id", "sign", "verify"),
            (t1 - t0, t2 - t1, t3 - t2, t4 - t3),
            strict=True,
        ):
            extras[name].append(seconds)
    await close_db()

    def stat(values: list[float]) -> str:
        med = statistics.median(values)
        return (
            f"{med * 1000:8.1f} ms  (min {min(values) * 1000:8.1f}, max {max(values) * 1000:8.1f})"
        )

    def col(runs: list[Run], key: str) -> list[float]:
        return [r.get(key, 0.0) for r in runs]

    print(f"\nbare pipeline + encode, {args.runs} runs:")
    for stage in ("generate", "encode", "total"):
        print(f"  {stage:<12} {stat(col(bare_runs, stage))}")
    print(f"queue, {args.runs} runs, time per state handler:")
    for stage in ("queued", "rendering", "encoding", "signing"):
        print(f"  {stage:<12} {stat(col(queue_runs, stage))}")
    print(f"  {'(generate)':<12} {stat(col(queue_runs, 'generate'))}  inside rendering")
    around = [r.get("rendering", 0.0) - r["generate"] for r in queue_runs]
    print(f"  {'(the rest)':<12} {stat(around)}  of rendering: claim, progress, frames file")
    handler_keys = ("queued", "rendering", "encoding", "signing")
    runner = [r["total"] - sum(r.get(k, 0.0) for k in handler_keys) for r in queue_runs]
    print(f"  {'runner':<12} {stat(runner)}  (sweeps, claims, polling)")
    print(f"  {'total':<12} {stat(col(queue_runs, 'total'))}")
    print("queue's extra steps timed alone on the same frames:")
    for stage, values in extras.items():
        print(f"  {stage:<12} {stat(values)}")

    q_total = statistics.median(col(queue_runs, "total"))
    b_total = statistics.median(col(bare_runs, "total"))
    ratio = q_total / b_total
    pairs = [q["total"] / b["total"] for q, b in zip(queue_runs, bare_runs, strict=True)]
    q_rest = statistics.median(r["total"] - r["generate"] for r in queue_runs)
    b_rest = statistics.median(r["total"] - r["generate"] for r in bare_runs)
    print(
        f"\nratio of medians queue / bare = {ratio:.3f} "
        f"(overhead {100 * (ratio - 1):+.1f} %; target < 10 %)"
    )
    print(
        f"per-pair ratios: median {statistics.median(pairs):.3f}, "
        f"min {min(pairs):.3f}, max {max(pairs):.3f}"
    )
    extra = q_rest - b_rest
    print(
        f"without the pipeline's own time: queue {q_rest * 1000:.0f} ms vs bare "
        f"{b_rest * 1000:.0f} ms outside generate -> overhead {extra * 1000:.0f} ms "
        f"= {100 * extra / b_total:.1f} % of the bare total"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="3.0 s = 49 frames at 16 fps")
    parser.add_argument("--aspect", default="1:1")
    parser.add_argument("--family", default="tiny256", help="tiny256: 256x256 at 1:1")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompt", default="a red kite over a green hill, slow pan")
    asyncio.run(main(parser.parse_args()))
