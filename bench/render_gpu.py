"""Seconds per clip for a real model directory on a GPU.

Usage: ``.venv/bin/python bench/render_gpu.py MODEL_DIR [--seconds 5] [--aspect 9:16]
[--steps N] [--runs 3] [--first-block-cache 0.05] [--compile]``

MODEL_DIR is a diffusers checkpoint saved with ``save_pretrained`` (Wan 2.1/2.2, LTX-Video,
CogVideoX); nothing is downloaded. Loads it the way a render worker does (bfloat16, VAE
tiling), renders ``--runs`` clips after one warm-up and prints seconds per clip and peak
GPU memory. Without CUDA it prints why it skipped and exits 0, so it can run anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--aspect", default="9:16")
    parser.add_argument("--steps", type=int, default=None, help="default: the family's")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--first-block-cache", type=float, default=None)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print(
            "skip: CUDA is not available on this machine (torch "
            f"{torch.__version__}); render_gpu.py measures seconds per clip on a GPU only. "
            "Nothing was measured. bench/render_overhead.py runs on a CPU."
        )
        return 0

    from render.errors import RenderError
    from render.pipeline import load_pipeline
    from render.spec import RenderSpec, plan

    started = time.perf_counter()
    try:
        pipe = load_pipeline(
            args.model_dir,
            dtype="bfloat16",
            device="cuda",
            vae_tiling=True,
            compile=args.compile,
            first_block_cache=args.first_block_cache,
        )
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    device = torch.cuda.get_device_name()
    print(f"loaded {pipe!r} in {time.perf_counter() - started:.1f} s on {device}")
    spec = RenderSpec(
        prompt="a red kite over a green hill, slow pan",
        seed=1,
        seconds=args.seconds,
        aspect=args.aspect,
    )
    p = plan(spec, pipe.family, 10.0, steps=args.steps)
    print(f"clip: {p.frames} frames at {p.width}x{p.height}, {p.steps} steps, {p.fps} fps")

    def one() -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pipe.generate(p, spec)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    warm = one()
    torch.cuda.reset_peak_memory_stats()
    times = [one() for _ in range(args.runs)]
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"warm-up: {warm:.1f} s")
    print(
        f"seconds per clip: median {statistics.median(times):.1f} s, "
        f"min {min(times):.1f} s over {args.runs} runs; peak GPU memory {peak:.1f} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
