"""Does the invisible watermark survive a downscale, a crop and a harsh re-encode?

Makes ``--clips`` synthetic natural-looking clips (default 50, 832x480 like the real
families' output, 33 frames at 16 fps: 1/f textures in colour, a few hard-edged shapes,
sometimes a sky gradient, sensor grain, a pan and a slow zoom, and a moving object), marks
each with a random id, encodes it as the render queue does (``encode_mp4``, CRF 20), then
re-encodes it with libx264 preset medium after each transformation:

- none: our CRF 20 file as is;
- 0.5x: downscaled by half (area filter), CRF 23 (libx264's default);
- crop: 90 % of each side kept at a random offset, CRF 23;
- crf28: same size, CRF 28;
- all: crop, then 0.5x, then CRF 28.

It reads each copy with ``read_id`` and counts the right ids, wrong ids and nothing read;
reads the same clips unmarked through the same transformations (any id read is a false
read); reports the luma PSNR of the marked frames; reads the first ``--legacy`` clips
marked with the old block scheme the same way; and times embedding and reading per frame,
tile against block, alternating on the same frames. ``--tiny N`` adds N renders of the
tiny model (64x112), reported apart: too small for the tile mark to survive 0.5x.

Run: ``.venv/bin/python bench/watermark.py [--clips 50] [--legacy 10] [--tiny 0]``;
``--cost-only`` times embedding and reading alone.
The numbers it printed are in ``render/watermark.py``'s docstring.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from render.encode import encode_mp4
from render.watermark import (
    WatermarkReading,
    bit_votes,
    embed_id,
    embed_id_legacy,
    read_id,
    read_id_legacy,
)

Frames = npt.NDArray[np.uint8]
SCORES: dict[str, dict[str, list[float]]] = {}
LUMA = np.array([0.299, 0.587, 0.114])
KEY = b"bench instance secret"
FPS = 16


def natural_clip(seed: int, frames: int = 33, height: int = 480, width: int = 832) -> Frames:
    """A seeded clip with natural image statistics and camera and object motion."""
    r = np.random.default_rng(seed)
    big_h, big_w = int(height * 1.6), int(width * 1.6)
    alpha = r.uniform(1.6, 2.6)  # 1/f^alpha power spectrum: from textured to smooth
    fy = np.fft.fftfreq(big_h)[:, None]
    fx = np.fft.rfftfreq(big_w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1
    planes = []
    for _ in range(3):
        spec = (r.normal(size=f.shape) + 1j * r.normal(size=f.shape)) / f ** (alpha / 2)
        spec[0, 0] = 0
        planes.append(np.fft.irfft2(spec, s=(big_h, big_w)))
    img = np.stack(planes, -1) @ (r.normal(size=(3, 3)) * 0.3 + np.eye(3))
    img = (img - img.mean()) / img.std() * r.uniform(25, 55) + r.uniform(70, 170)
    img = np.ascontiguousarray(img, dtype=np.float32)
    for _ in range(int(r.integers(2, 8))):
        cv2.ellipse(
            img,
            (int(r.integers(0, big_w)), int(r.integers(0, big_h))),
            (int(r.integers(20, 200)), int(r.integers(20, 150))),
            float(r.uniform(0, 180)),
            0,
            360,
            r.uniform(0, 255, 3).tolist(),
            -1,
        )
    if r.random() < 0.4:  # a flat sky: where a mark shows first
        sky = np.linspace(r.uniform(150, 230), r.uniform(90, 160), big_h // 3)[:, None, None]
        img[: big_h // 3] = sky * np.array([0.8, 0.9, 1.0]) + img[: big_h // 3] * 0.05
    img = np.clip(img, 0, 255).astype(np.float32)
    vx, vy, zoom = r.uniform(-3, 3), r.uniform(-2, 2), r.uniform(-0.004, 0.004)
    grain = r.uniform(0, 4)
    colour = r.uniform(0, 255, 3).tolist()
    oy, ox = r.uniform(0.2, 0.8) * height, r.uniform(0.2, 0.8) * width
    ovx, ovy = r.uniform(-8, 8), r.uniform(-4, 4)
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        s = 1 + zoom * i
        m = np.array(
            [
                [s, 0, (big_w - width) / 2 + vx * i - (s - 1) * width / 2],
                [0, s, (big_h - height) / 2 + vy * i - (s - 1) * height / 2],
            ],
            np.float32,
        )
        frame = cv2.warpAffine(
            img, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        cv2.circle(frame, (int(ox + ovx * i), int(oy + ovy * i)), 40, colour, -1)
        frame = cv2.GaussianBlur(frame, (0, 0), 0.7)
        if grain:
            frame = frame + np.asarray(r.normal(0, grain, frame.shape), np.float32)
        out[i] = np.clip(frame, 0, 255)
    return out


def reencode(frames: Frames, crf: int, work: Path) -> Frames:
    """Encode with libx264 (preset medium) at ``crf`` and decode back to RGB."""
    import av

    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2  # yuv420p needs even sides
    path = work / "copy.mp4"
    encode_mp4(np.ascontiguousarray(frames[:, :h, :w]), path, fps=FPS, crf=crf)
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def downscale(frames: Frames) -> Frames:
    h, w = frames.shape[1:3]
    size = (w // 2, h // 2)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def crop(frames: Frames, r: np.random.Generator) -> Frames:
    h, w = frames.shape[1:3]
    ch, cw = int(h * 0.9), int(w * 0.9)
    y, x = int(r.integers(0, h - ch + 1)), int(r.integers(0, w - cw + 1))
    return frames[:, y : y + ch, x : x + cw]


Transform = Callable[[Frames, np.random.Generator, Path], Frames]
TRANSFORMS: dict[str, Transform] = {
    "none (our CRF 20)": lambda f, r, w: f,
    "0.5x, CRF 23": lambda f, r, w: reencode(downscale(f), 23, w),
    "crop 10 %, CRF 23": lambda f, r, w: reencode(crop(f, r), 23, w),
    "CRF 28": lambda f, r, w: reencode(f, 28, w),
    "crop + 0.5x + CRF 28": lambda f, r, w: reencode(downscale(crop(f, r)), 28, w),
}


def psnr(a: Frames, b: Frames) -> float:
    mse = float(np.mean((a.astype(np.float64) @ LUMA - b.astype(np.float64) @ LUMA) ** 2))
    return float(10 * np.log10(255**2 / mse))


def survive(
    clips: list[tuple[Frames, int]],
    embed: Callable[[Frames, int], Frames] | None,
    read: Callable[[Frames], WatermarkReading],
    work: Path,
    label: str,
) -> dict[str, Counter[str]]:
    """Per transformation: counts of 'right', 'wrong' (another id) and 'none'."""
    tally: dict[str, Counter[str]] = {name: Counter() for name in TRANSFORMS}
    SCORES.setdefault(label, {})
    for n, (frames, ident) in enumerate(clips):
        marked = embed(frames, ident) if embed is not None else frames
        ours = reencode(marked, 20, work)
        r = np.random.default_rng(10_000 + n)  # the same crops for every scheme
        for name, transform in TRANSFORMS.items():
            copy = transform(ours, r, work)
            reading = read(copy)
            SCORES[label].setdefault(name, []).append(reading.sync_z)
            right = reading.id == ident
            tally[name]["none" if not reading.likely_marked else "right" if right else "wrong"] += 1
        print(f"  {label} clip {n + 1}/{len(clips)}", end="\r", flush=True)
    print(" " * 60, end="\r")
    return tally


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cost(frames: Frames, runs: int) -> None:
    """Per-frame cost, tile against block, alternating on the same frames."""
    ident = 0x12345678
    tile_marked = embed_id(frames, ident, key=KEY)
    block_marked = embed_id_legacy(frames, ident, key=KEY)
    kinds = ("embed tile", "embed block", "read tile", "read block", "read unmarked")
    costs: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(runs):
        costs["embed tile"].append(timed(lambda: embed_id(frames, ident, key=KEY)))
        costs["embed block"].append(timed(lambda: embed_id_legacy(frames, ident, key=KEY)))
        costs["read tile"].append(timed(lambda: read_id(tile_marked, key=KEY)))
        # Today's block reader was this vote alone (read_id_legacy adds decoy keys now).
        costs["read block"].append(timed(lambda: bit_votes(block_marked, key=KEY)))
        # Nothing found: the tile reader, then the block reader with its decoys.
        costs["read unmarked"].append(timed(lambda: read_id(frames, key=KEY)))
    per = {k: statistics.median(v) / len(frames) * 1000 for k, v in costs.items()}
    h, w = frames.shape[1:3]
    print(f"per {w}x{h} frame, {len(frames)} frames, median of {runs} (ms):")
    for what in ("embed", "read"):
        tile, block = per[f"{what} tile"], per[f"{what} block"]
        print(f"  {what}: tile {tile:.1f}, block {block:.1f}, tile / block {tile / block:.2f}")
    both = (per["embed tile"] + per["read tile"]) / (per["embed block"] + per["read block"])
    print(f"  embed + read: tile / block {both:.2f}")
    print(f"  read of an unmarked clip (tile, then block with decoys): {per['read unmarked']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--legacy", type=int, default=10, help="clips for the old scheme")
    parser.add_argument("--tiny", type=int, default=0, help="tiny-model renders, apart")
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--runs", type=int, default=5, help="timing rounds")
    parser.add_argument("--cost-only", action="store_true", help="only time embed and read")
    args = parser.parse_args()
    if args.cost_only:
        cost(natural_clip(0, args.frames), int(args.runs))
        return
    work = Path(tempfile.mkdtemp(prefix="wm-bench-"))

    ids = np.random.default_rng(7).integers(0, 2**32, args.clips + args.tiny)
    clips = [(natural_clip(s, args.frames), int(ids[s])) for s in range(args.clips)]

    def tile_embed(f: Frames, i: int) -> Frames:
        return embed_id(f, i, key=KEY)

    def tile_read(f: Frames) -> WatermarkReading:
        return read_id(f, key=KEY)

    def block_embed(f: Frames, i: int) -> Frames:
        return embed_id_legacy(f, i, key=KEY)

    def block_read(f: Frames) -> WatermarkReading:
        return read_id_legacy(f, key=KEY)

    psnrs = [psnr(tile_embed(f, i), f) for f, i in clips]
    results = {
        "tile": survive(clips, tile_embed, tile_read, work, "tile"),
        "block (old)": survive(clips[: args.legacy], block_embed, block_read, work, "block"),
        "unmarked": survive(clips, None, tile_read, work, "unmarked"),
    }
    n = {"tile": args.clips, "block (old)": min(args.legacy, args.clips), "unmarked": args.clips}
    print(
        f"{args.clips} clips of {args.frames} frames at 832x480; old scheme on {n['block (old)']}"
    )
    head = ("transformation", "tile: right/wrong", "block: right", "unmarked: false")
    print(f"{head[0]:<22} {head[1]:>18} {head[2]:>13} {head[3]:>16}")
    for name in TRANSFORMS:
        t, b, f = (results[k][name] for k in ("tile", "block (old)", "unmarked"))
        print(
            f"{name:<22} {t['right'] / n['tile']:>12.0%} / {t['wrong']:<3}"
            f" {b['right'] / max(n['block (old)'], 1):>13.0%}"
            f" {f['right'] + f['wrong']:>9} of {n['unmarked']}"
        )
    print("sync peak z-score (accepted from 5.5): marked min / median, unmarked max")
    for name in TRANSFORMS:
        ms, us = SCORES["tile"][name], SCORES["unmarked"][name]
        print(f"  {name:<22} {min(ms):5.1f} / {statistics.median(ms):5.1f}   {max(us):5.1f}")
    print(f"luma PSNR of tile-marked frames: mean {np.mean(psnrs):.1f} dB, min {min(psnrs):.1f}")

    if args.tiny:
        from render.pipeline import load_pipeline
        from render.spec import RenderSpec, plan

        tiny = load_pipeline("tiny", device="cpu")
        renders = []
        for s in range(args.tiny):
            spec = RenderSpec(prompt=f"tiny render {s}", seed=s, seconds=2)
            renders.append((tiny.generate(plan(spec, tiny.family, 10), spec), int(ids[-1 - s])))
        tally = survive(renders, tile_embed, tile_read, work, "tiny")
        shape = renders[0][0].shape
        print(f"tiny model, {args.tiny} renders of {shape[0]} frames at {shape[2]}x{shape[1]}:")
        for name in TRANSFORMS:
            right, wrong = tally[name]["right"] / args.tiny, tally[name]["wrong"]
            print(f"  {name:<22} {right:.0%} right, {wrong} wrong")

    cost(clips[0][0], args.runs)


if __name__ == "__main__":
    main()
