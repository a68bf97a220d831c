"""Finding the origin of a copy: recall, false matches and index scaling of the clip lookup.

Corpus: ``--clips`` synthetic moving-pattern clips (a random low-frequency colour field
panning under moving shapes, each clip its own seed, size, frame rate and length) plus
``--renders`` real renders of the tiny random-weight model brought to 480x832 (the size a
real family renders at 9:16) and marked there as the render queue marks them (visible mark,
invisible id), each encoded with libx264 and fingerprinted from the file as publishing does
(:func:`render.fingerprint.fingerprint_file`), then stored and indexed through
:mod:`fedisora.services.fingerprints` in a scratch PostgreSQL database. ``--native-renders``
more renders at the tiny model's own 64x112 are indexed and queried too, and reported apart:
a grey field under the visible mark, two of them a couple of grey levels apart (less than two
frames of one), too small for the watermark after a 0.5x resize (its chips become 1 px) and
with PDQ bits that flip at a third of the positions under a resize or CRF 28; the bench used
to count them, where they were all of the misses (see below).

Queries: ``--queries`` clips of the corpus per transformation, each transformed file
looked up through the service (:func:`fedisora.services.fingerprints.lookup`), as the API
does:

* ``reencode``: libx264 at CRF 28 (our encoder uses 20), preset veryfast;
* ``resize``: 0.5x in each dimension;
* ``crop``: 5 % cut from each edge (the copy keeps 90 % of the width and height);
* ``trim``: 20-40 % of the clip cut from the start and 10-20 % from the end;
* ``mirror``: flipped left to right;
* ``strip``: remuxed without metadata and without the C2PA manifest (same frames);
* ``caption``: a text caption burned into the bottom fifth of every frame.

Recall is the share of queries whose best match is their source clip. False matches:
``--unrelated`` fresh clips that are not in the index, each looked up as it is and
re-encoded; every match returned for one is false. Their rate is given per lookup and per
comparison (one lookup compares the query with every indexed clip; the decision rule
applied to all pairs of unrelated queries and corpus clips, outside the index, gives the
per-comparison rate over the whole cross product).

Scaling: lookups of the transformed queries timed with ``--small`` indexed clips (the
corpus plus synthetic random fingerprints) and again after growing the index to
``--large`` with random fingerprints inserted in bulk (``--random-hashes`` indexed hashes
each, i.e. that many seconds of clip). Printed: the whole lookup (decode, hash, index,
alignment) and the index query alone, median, and their ratios large / small.

Run: ``PYTHONPATH=. .venv/bin/python bench/lookup.py`` (``--quick`` for a smaller run).

Measured (``--clips 1976 --renders 24``: 2,000 indexed clips, plus 6 native renders; 66
queries per transformation, 60 synthetic and 6 renders; PostgreSQL 15, a 2-core machine
under a load of about 10 from other work: 48 minutes; recall at 10 k indexed clips):

==============  =======  =========  ============  ==========================
transformation  overall  synthetic  renders       64x112 renders, apart
==============  =======  =========  ============  ==========================
reencode        100 %    100 %      6 of 6        0 of 6
resize          100 %    100 %      6 of 6        0 of 6
crop            100 %    100 %      6 of 6        6 of 6
trim            100 %    100 %      6 of 6        6 of 6
mirror          100 %    100 %      6 of 6        6 of 6
strip           100 %    100 %      6 of 6        6 of 6
caption         100 %    100 %      6 of 6        1 of 6
==============  =======  =========  ============  ==========================

False matches: none in 200 lookups of unrelated clips; 2 in 401,200 comparisons (5.0e-6,
target 1e-4); none for 6 unrelated renders (not indexed; their watermark names a render
that is not the one they look like). Lookup time, median of 50: the whole lookup 96.4 ms
at 10 k, 87.7 ms at 1 M (x0.91); the index query alone 5.01 ms -> 5.56 ms (x1.11, target
x1.5). The index query reads a median of 34 rows (at most 196, then 197) at both sizes:
the plan is an index scan on ``(key, fingerprint_id)`` (a bitmap index scan at 10 k) and
2,265 shared buffers either way. Recall of the timed queries at 1 M: 50 of 50.

The run before (16-bit chunks, migration 0037; renders at 64x112 counted): resize 93.9 %
(the 4 misses all tiny renders), reencode 97.0 %, caption 98.5 %, the rest 100 %; the
index query 7.7 ms -> 25.9 ms (x3.4), each of its 768 keys holding one unrelated row per
65,536 indexed hashes (16 rows a key at 1 M). With 32-bit chunks the 64x112 renders lose
what their 16-bit keys found after CRF 28 (4 of 6 then), a 0.5x resize (2 of 6) and a
caption (5 of 6): their copies lie 60 to 80 bits from every frame of their clip, past what
a 32-bit chunk survives. The random fingerprints that grow the index have one indexed hash
each (8 rows), not the 60 of a 15-second clip: at that density the arithmetic stays (about
0.01 unrelated rows a key at 1 M clips) but the B-tree gains a level, not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

Frames = npt.NDArray[np.uint8]

CROP = float(os.environ.get("LOOKUP_CROP", "0.05"))
TRANSFORMS = ("reencode", "resize", "crop", "trim", "mirror", "strip", "caption")


# --------------------------------------------------------------------------- clips


def synthetic_clip(seed: int) -> tuple[Frames, int]:
    """A moving-pattern clip of its own: (frames (T, H, W, 3), fps)."""
    rng = np.random.default_rng(seed)
    w, h = [(160, 96), (128, 96), (96, 128), (128, 128), (144, 80)][seed % 5]
    fps = int(rng.choice([8, 12, 16, 24]))
    count = int(rng.integers(2 * fps, 4 * fps + 1))
    cells = rng.integers(3, 7)
    small = rng.integers(0, 256, (cells, cells + 1, 3), dtype=np.uint8)
    field = np.asarray(
        Image.fromarray(small).resize((2 * w, 2 * h), Image.Resampling.BICUBIC), dtype=np.uint8
    )
    path = rng.uniform(0, 1, (2, 2))  # start and end of the pan, in units of the free range
    path[1] = path[0] + (path[1] - path[0]) * 0.5  # a slow pan: half the range at most
    shapes = [
        (
            rng.uniform(0, w, 2),
            rng.uniform(-30, 30, 2) / fps,  # pixels per frame: at most 30 px/s
            rng.uniform(6, max(w, h) / 4),
            tuple(int(c) for c in rng.integers(0, 256, 3)),
            bool(rng.integers(0, 2)),
        )
        for _ in range(int(rng.integers(3, 7)))
    ]
    out = np.empty((count, h, w, 3), dtype=np.uint8)
    for i in range(count):
        s = i / max(count - 1, 1)
        x0, y0 = (path[0] * (1 - s) + path[1] * s) * (w, h)
        frame = Image.fromarray(field[int(y0) : int(y0) + h, int(x0) : int(x0) + w])
        draw = ImageDraw.Draw(frame)
        for (cx, cy), (vx, vy), r, colour, square in shapes:
            x, y = (cx + vx * i) % w, (cy + vy * i) % h
            box = (x - r, y - r, x + r, y + r)
            (draw.rectangle if square else draw.ellipse)(box, fill=colour)
        out[i] = np.asarray(frame)
    return out, fps


RENDER_SIZE = (480, 832)
"""(width, height) the bench's renders are brought to: what a real family renders at 9:16."""


def tiny_renders(
    count: int, key: bytes, seed: int = 0, *, size: tuple[int, int] | None = RENDER_SIZE
) -> list[tuple[Frames, int]]:
    """Two-second clips of the tiny random-weight model, brought to *size* (a real family's
    output size; None keeps the tiny model's own 64x112) and marked as the render queue marks
    them (visible mark, then the invisible id 1000 + seed + i under *key*)."""
    from render.pipeline import load_pipeline
    from render.spec import RenderSpec, plan
    from render.watermark import apply_visible_mark, embed_id

    pipe = load_pipeline("tiny", device="cpu")
    clips = []
    for i in range(count):
        spec = RenderSpec(prompt=f"a bench clip number {seed + i}", seed=seed + i, seconds=2.0)
        p = plan(spec, pipe.family, 10)
        frames = pipe.generate(p, spec)
        if size is not None:
            frames = np.stack(
                [
                    np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BICUBIC))
                    for f in frames
                ]
            )
        frames = apply_visible_mark(frames, instance="bench.example", creator=f"user{seed + i}")
        clips.append((embed_id(frames, 1000 + seed + i, key=key), p.fps))
    return clips


def encode(frames: Frames, dst: Path, fps: int, *, crf: int = 20, preset: str = "veryfast") -> Path:
    """H.264 yuv420p MP4 (even sizes), as render.encode writes it."""
    import av

    _, h, w, _ = frames.shape
    frames = frames[:, : h - h % 2, : w - w % 2]
    with av.open(str(dst), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return dst


def decode(path: Path) -> tuple[Frames, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = round(float(stream.average_rate or 16))
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    frames: Frames = np.asarray(np.stack(decoded), dtype=np.uint8)
    return frames, fps


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):
        return ImageFont.load_default()


def _caption(frames: Frames, seed: int) -> Frames:
    h, w = frames.shape[1:3]
    words = ["so real", "wait for it", "no way", "AI did this?", "look at that", "again!"]
    text = words[seed % len(words)]
    font = _font(max(8, h // 8))
    out = frames.copy()
    for i, frame in enumerate(out):
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        draw.text(
            (w // 2, h - h // 10),
            text,
            font=font,
            fill=(255, 255, 255),
            stroke_width=2,
            stroke_fill=(0, 0, 0),
            anchor="mm",
        )
        out[i] = np.asarray(image)
    return out


def _strip(src: Path, dst: Path) -> None:
    """Copy the video packets into a new MP4: no metadata, no C2PA manifest box."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)


def transform_file(src: Path, dst: Path, name: str, *, seed: int = 0) -> Path:
    """Apply the transformation *name* (see the module doc) to the video *src*."""
    if name == "strip":
        _strip(src, dst)
        return dst
    frames, fps = decode(src)
    rng = np.random.default_rng(seed)
    crf = 20
    t, h, w, _ = frames.shape
    if name == "reencode":
        crf = 28
    elif name == "resize":
        frames = np.stack(
            [
                np.asarray(Image.fromarray(f).resize((max(2, w // 2), max(2, h // 2))))
                for f in frames
            ]
        )
    elif name == "crop":
        dy, dx = round(h * CROP), round(w * CROP)
        frames = frames[:, dy : h - dy, dx : w - dx]
    elif name == "trim":
        start = int(t * rng.uniform(0.2, 0.4))
        end = t - int(t * rng.uniform(0.1, 0.2))
        frames = frames[start:end]
    elif name == "mirror":
        frames = frames[:, :, ::-1]
    elif name == "caption":
        frames = _caption(frames, seed)
    else:
        raise ValueError(f"unknown transformation {name!r}")
    return encode(np.ascontiguousarray(frames), dst, fps, crf=crf)


# --------------------------------------------------------------------------- the run


def _corpus_clip(job: tuple[int, Path]) -> tuple[int, Path]:
    """(process pool) Synthetic clip number *i*, encoded under *folder*."""
    i, folder = job
    frames, fps = synthetic_clip(i)
    return i, encode(frames, folder / f"c{i}.mp4", fps)


def _fingerprint(job: tuple[int, Path, bytes]) -> tuple[int, str, int | None]:
    """(process pool) What the render queue's worker computes for a clip."""
    from render.fingerprint import fingerprint_file, hashes_to_hex

    i, path, key = job
    printed = fingerprint_file(path, watermark_key=key)
    return i, hashes_to_hex(printed.hashes), printed.watermark_id


def _transform(job: tuple[Path, Path, str, int]) -> Path:
    src, dst, name, seed = job
    return transform_file(src, dst, name, seed=seed)


def _unrelated(job: tuple[int, Path]) -> list[Path]:
    """(process pool) A clip not in the index, as it is and re-encoded."""
    i, folder = job
    frames, fps = synthetic_clip(i)
    plain = encode(frames, folder / f"u{i}.mp4", fps)
    return [plain, transform_file(plain, folder / f"u{i}-reencode.mp4", "reencode", seed=i)]


async def _scratch_database(admin: str) -> tuple[str, Any]:
    import secrets

    import asyncpg

    name = f"fedisora_lookup_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin.replace("postgres://", "postgresql://", 1))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin.rsplit("/", 1)[0] + "/" + name, name


async def _drop_database(admin: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin.replace("postgres://", "postgresql://", 1))
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def _fill_random(url: str, start: int, stop: int, hashes_each: int) -> None:
    """Clips start..stop with random fingerprints of *hashes_each* indexed samples, in bulk:
    one account, the clips, their done fingerprints (random hex) and their index rows
    (:data:`~render.fingerprint.CHUNKS` random chunks per indexed hash), the chunk indexes
    dropped and built again around it."""
    import asyncpg

    from render.fingerprint import CHUNK_BITS, CHUNKS, HASH_BYTES, INDEX_EVERY, VARIANTS

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        account = await conn.fetchval("SELECT id FROM accounts ORDER BY id LIMIT 1")
        hex_len = hashes_each * INDEX_EVERY * VARIANTS * HASH_BYTES * 2
        await conn.execute(
            """
            INSERT INTO clips (id, account_id, uri, url, caption, content, visibility, local,
                               sensitive, spoiler_text, likes_count, comments_count,
                               boosts_count, remixes_count, views_count, completions_count,
                               skips_count, pinned, created_at)
            SELECT (1800000000000::bigint + g) << 16, $3, 'https://random.example/c/' || g,
                   'https://random.example/c/' || g, '', '', 'public', false, false, '',
                   0, 0, 0, 0, 0, 0, 0, false, now()
            FROM generate_series($1::bigint, $2::bigint - 1) AS g
            """,
            start,
            stop,
            account,
        )
        await conn.execute(
            """
            INSERT INTO fingerprints (state, state_changed_at, attempts, last_error, created_at,
                                      clip_id, rate, hashes, origin)
            SELECT 'done', now(), 0, '', now(), (1800000000000::bigint + g) << 16, 8,
                   left(repeat(md5(g::text) || md5((g + 1)::text), $3), $4), 'remote'
            FROM generate_series($1::bigint, $2::bigint - 1) AS g
            """,
            start,
            stop,
            hex_len // 64 + 1,
            hex_len,
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'fingerprint_chunks' "
            "AND indexname NOT LIKE '%pkey'"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        await conn.execute(
            """
            INSERT INTO fingerprint_chunks (key, fingerprint_id)
            SELECT ((c % $4::int)::bigint << $5::int)
                   | floor(random() * (1::bigint << $5::int))::bigint,
                   f.id
            FROM fingerprints f
            JOIN clips ON clips.id = f.clip_id
            CROSS JOIN generate_series(0, $3::int * $4::int - 1) AS c
            WHERE clips.id >= (1800000000000::bigint + $1) << 16
              AND clips.id < (1800000000000::bigint + $2) << 16
            """,
            start,
            stop,
            hashes_each,
            CHUNKS,
            CHUNK_BITS,
        )
        for row in indexes:
            await conn.execute(row["indexdef"])
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def _could_match(query: Any, stacked: Frames, owners: Any) -> list[int]:
    """The corpus clips with at least one sample within a match's median distance of one of
    the query's hashes (any variant, either orientation): an alignment can only reach
    MATCH_SCORE with such a pair, so the others need no alignment."""
    from render.fingerprint import MATCH_SCORE

    limit = (1 - MATCH_SCORE) * 128
    kinds = [query.hashes, query.mirrored, query.upper, query.upper_mirrored]
    q = np.concatenate([k for k in kinds if k is not None])
    near = np.zeros(len(stacked), dtype=bool)
    for start in range(0, len(stacked), 512):
        chunk = stacked[start : start + 512]
        x = np.bitwise_xor(q[:, None, None, :], chunk[None, :, :, :])
        d = _POPCOUNT[x].sum(axis=3, dtype=np.uint16).min(axis=(0, 2))
        near[start : start + 512] = d <= limit
    return sorted({int(i) for i in owners[near]})


def _pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f} % ({hits}/{total})" if total else "   -"


async def run(args: argparse.Namespace) -> int:
    import multiprocessing

    from tortoise.transactions import in_transaction

    from fedisora import urls
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db, migrate
    from fedisora.models import Clip, Fingerprint, MediaFile, MediaKind, RenderJob
    from fedisora.services import fingerprints, posts
    from fedisora.services.accounts import create_local_account
    from render.fingerprint import MATCH_SCORE, align, hashes_from_hex, query_file
    from render.instance import watermark_key

    started = time.monotonic()
    admin = os.environ.get("FEDISORA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
    url, db_name = await _scratch_database(admin)
    work = Path(tempfile.mkdtemp(prefix="fedisora-lookup-bench-"))
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "bench.example",
            "FEDISORA_DATA_DIR": str(work / "data"),
            "FEDISORA_SECRET_KEY": "b" * 40,
            "FEDISORA_DATABASE_URL": url,
        }
    )
    key = watermark_key(settings)
    media_dir = settings.media_root / "bench"
    media_dir.mkdir(parents=True)
    pool = multiprocessing.get_context("fork").Pool(args.jobs)
    try:
        await migrate(settings)
        await init_db(settings)
        urls.configure(settings)
        accounts = [
            await create_local_account(f"maker{i}", f"maker{i}@bench.example", "x" * 16)
            for i in range(8)
        ]

        # -- the corpus: synthetic clips and tiny renders, posted and fingerprinted
        print(f"corpus: {args.clips} synthetic clips and {args.renders} tiny renders", flush=True)
        files = dict(pool.map(_corpus_clip, [(i, media_dir) for i in range(args.clips)]))
        made = tiny_renders(args.renders + args.unrelated_renders, key)
        for j, (frames, fps) in enumerate(made[: args.renders]):
            files[args.clips + j] = encode(frames, media_dir / f"r{j}.mp4", fps)
        stray = [
            encode(frames, work / f"stray{j}.mp4", fps)
            for j, (frames, fps) in enumerate(made[args.renders :])
        ]
        # The tiny model's own 64x112 renders: reported apart (see the module doc).
        native_from = args.clips + args.renders
        native = tiny_renders(args.native_renders, key, seed=len(made), size=None)
        for j, (frames, fps) in enumerate(native):
            files[native_from + j] = encode(frames, media_dir / f"n{j}.mp4", fps)
        printed = pool.map(_fingerprint, [(i, p, key) for i, p in files.items()])
        clip_of: dict[int, int] = {}
        for i, hashes, _mark in printed:
            account = accounts[i % len(accounts)]
            media = await MediaFile.create(
                account=account,
                kind=MediaKind.VIDEO,
                file=str(files[i].relative_to(settings.media_root)),
                content_type="video/mp4",
                provenance={"state": "trusted", "local": True},
            )
            clip = await posts.post_clip(account, media)
            clip_of[i] = clip.pk
            if i >= args.clips:  # a render: its job's id is the watermark id it carries
                mark = 1000 + (i - args.clips if i < native_from else len(made) + i - native_from)
                job = await RenderJob.create(id=mark, account=account, spec={}, state="published")
                await Clip.filter(pk=clip.pk).update(render_job_id=job.pk)
            row = await Fingerprint.get(clip_id=clip.pk)
            async with in_transaction() as conn:
                await (
                    Fingerprint.filter(pk=row.pk).using_db(conn).update(state="done", hashes=hashes)
                )
                await fingerprints.index(conn, row.pk, hashes)
        corpus = {i: hashes_from_hex(h) for i, h, _ in printed}
        print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
        total = len(files)
        if args.small > total:
            await close_db()
            await _fill_random(url, 0, args.small - total, args.random_hashes)
            await init_db(settings)
        indexed = await Fingerprint.filter(state="done").count()

        # -- recall per transformation
        step = max(1, native_from // args.queries)
        sources = list(range(0, native_from, step))[: args.queries]
        renders = list(range(args.clips, native_from))[: max(1, args.queries // 10)]
        sources = sorted(set(sources) | set(renders) | set(range(native_from, total)))
        qdir = work / "queries"
        qdir.mkdir()
        jobs = [
            (files[i], qdir / f"{name}-{i}.mp4", name, i) for name in TRANSFORMS for i in sources
        ]
        paths = pool.map(_transform, jobs)
        counted = len(sources) - len(native)
        print(f"recall at {indexed} indexed clips ({counted} queries each):", flush=True)
        timings: list[tuple[Path, int]] = []
        for name in TRANSFORMS:
            hits = {"synthetic": [0, 0], "render": [0, 0], "native": [0, 0]}
            for (_src, _dst, kind_of, i), path in zip(jobs, paths, strict=True):
                if kind_of != name:
                    continue
                matches = await fingerprints.lookup_file(path, settings, ask_peers=False)
                kind = "synthetic" if i < args.clips else "render" if i < native_from else "native"
                hits[kind][1] += 1
                hits[kind][0] += bool(matches) and matches[0].status_id == str(clip_of[i])
                if kind != "native":
                    timings.append((path, clip_of[i]))
            both = [
                hits["synthetic"][0] + hits["render"][0],
                hits["synthetic"][1] + hits["render"][1],
            ]
            print(
                f"  {name:9s} {_pct(*both)}   synthetic {_pct(*hits['synthetic'])}"
                f"   renders {_pct(*hits['render'])}   (64x112 renders, apart: "
                f"{hits['native'][0]} of {hits['native'][1]})",
                flush=True,
            )

        # -- false matches against unrelated clips
        unrelated = [
            p
            for pair in pool.map(
                _unrelated, [(10_000_000 + i, qdir) for i in range(args.unrelated)]
            )
            for p in pair
        ]
        false = 0
        for path in unrelated:
            false += len(await fingerprints.lookup_file(path, settings, ask_peers=False))
        pairs = pair_false = 0
        owners = np.concatenate([np.full(len(h), i) for i, h in corpus.items()])
        stacked = np.concatenate(list(corpus.values()))
        for path in unrelated:
            query = query_file(path)
            pairs += len(corpus)
            for i in _could_match(query, stacked, owners):  # the others cannot reach it
                pair_false += align(query, corpus[i]).score >= MATCH_SCORE
        print(
            f"false matches: {false} in {len(unrelated)} lookups of unrelated clips "
            f"({indexed} indexed); per comparison {pair_false} in {pairs} "
            f"({pair_false / max(pairs, 1):.2e}, target <= 1.0e-04)",
            flush=True,
        )
        stray_false = [
            len(await fingerprints.lookup_file(p, settings, ask_peers=False)) for p in stray
        ]
        if stray:
            print(
                f"  unrelated tiny renders (not indexed): {sum(stray_false)} matches in "
                f"{len(stray)} lookups, {sum(1 for n in stray_false if n)} of them matched",
                flush=True,
            )

        # -- lookup time, small and large
        timed = timings[:: max(1, len(timings) // args.timed)][: args.timed]

        async def time_lookups(explain: bool = False) -> tuple[float, float]:
            from tortoise import connections

            from fedisora.models import FingerprintChunk
            from render.fingerprint import chunk_keys, query_key_hashes

            whole, index, rows = [], [], []
            for path, _clip in timed:
                t0 = time.perf_counter()
                await fingerprints.lookup_file(path, settings, ask_peers=False)
                whole.append(time.perf_counter() - t0)
                keys = chunk_keys(query_key_hashes(query_file(path)))
                t0 = time.perf_counter()
                await fingerprints._candidates(keys)
                index.append(time.perf_counter() - t0)
                if explain:
                    rows.append(await FingerprintChunk.filter(key__in=keys).count())
            if explain:
                # The plan of the last query, and the index rows the queries read (all keys).
                sql = fingerprints.candidates_query(keys).sql(params_inline=True)
                conn = connections.get("default")
                _, plan = await conn.execute_query(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                lines = [r["QUERY PLAN"] for r in plan]
                print(
                    "  " + "\n  ".join(ln if len(ln) < 160 else ln[:150] + " ..." for ln in lines)
                )
                print(
                    f"  index rows read per lookup: median {statistics.median(rows):.0f}, "
                    f"max {max(rows)} ({len(keys)} keys in the last)"
                )
            return statistics.median(whole), statistics.median(index)

        await time_lookups(explain=True)  # warm the caches
        small = await time_lookups()
        await close_db()
        fill_started = time.monotonic()
        await _fill_random(url, args.small, args.large, args.random_hashes)
        await init_db(settings)
        grown = await Fingerprint.filter(state="done").count()
        print(f"grown to {grown} indexed clips in {time.monotonic() - fill_started:.0f} s")
        await time_lookups(explain=True)
        large = await time_lookups()
        still = 0
        for path, clip_id in timed:
            matches = await fingerprints.lookup_file(path, settings, ask_peers=False)
            still += bool(matches) and matches[0].status_id == str(clip_id)
        print(
            f"lookup time, median of {len(timed)}: whole lookup {small[0] * 1000:.1f} ms at "
            f"{indexed} -> {large[0] * 1000:.1f} ms at {grown} (x{large[0] / small[0]:.2f}); "
            f"index query {small[1] * 1000:.2f} ms -> {large[1] * 1000:.2f} ms "
            f"(x{large[1] / small[1]:.2f}); target x1.5"
        )
        print(f"recall of the timed queries at {grown}: {_pct(still, len(timed))}")
        print(f"total {time.monotonic() - started:.0f} s")
    finally:
        pool.close()
        pool.join()
        await close_db()
        await _drop_database(admin, db_name)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--clips", type=int, default=2000, help="synthetic clips indexed")
    parser.add_argument("--renders", type=int, default=24, help="tiny renders indexed")
    parser.add_argument("--queries", type=int, default=60, help="source clips per transform")
    parser.add_argument("--unrelated", type=int, default=100, help="unrelated clips looked up")
    parser.add_argument(
        "--unrelated-renders", type=int, default=6, help="tiny renders looked up, not indexed"
    )
    parser.add_argument(
        "--native-renders",
        type=int,
        default=6,
        help="tiny renders at the model's own 64x112, indexed and queried, reported apart",
    )
    parser.add_argument("--small", type=int, default=10_000, help="indexed clips, first timing")
    parser.add_argument("--large", type=int, default=1_000_000, help="indexed, second timing")
    parser.add_argument("--random-hashes", type=int, default=1, help="per random fingerprint")
    parser.add_argument("--timed", type=int, default=50, help="queries timed at each size")
    parser.add_argument("--jobs", type=int, default=2, help="processes making clips")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.renders, args.queries, args.unrelated_renders = 300, 6, 20, 3
        args.native_renders = 2
        args.unrelated, args.small, args.large, args.timed = 30, 1_000, 100_000, 20
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
