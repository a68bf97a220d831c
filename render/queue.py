"""The render queue: RenderJob rows driven through ``render.states.GRAPH`` on queue "render".

Each stage is one handler; the row is the truth (see ``fedisora.work``):

- **rendering** runs the diffusers pipeline in a thread. ``on_step`` writes progress to the
  row (throttled) and raises when ``cancel_requested`` is set or our lease is gone; a
  heartbeat task keeps the lease alive through long steps and the VAE decode. The frames
  go to ``<media_root>/render-work/<job>/frames.npy`` under a temporary name, and the sound
  track a model with sound rendered with them (when the request kept ``audio`` on) to
  ``audio.npz`` beside them. A remix of a
  local clip whose file is still there renders image-to-video from the source's middle
  frame when the model has an image pipeline (``remix_frames`` in the spec and the claim).
- **encoding** stamps the visible mark (instance and creator) and the invisible id
  (mapping back to the job), writes the H.264 MP4 (with its AAC sound track, loudness-
  normalised and fitted to the clip) and poster, and refuses output that breaks the clip
  limits, before and after the encode: a sound track that would play past the last frame
  among them.
- **signing** signs the MP4 with the instance's C2PA chain, verifies it against the
  instance root, and creates the ``MediaFile`` in the same transaction as the move to
  ``ready``: a job resumed after a crash redoes the unfinished stage (rendering again
  from its seed, deterministically) but never creates a second media row.

A full media disk in any stage is a retry with a clear reason (:data:`DISK_FULL`), not an
error naming internal paths: the stage's retry schedule waits for room, and a render that
never finds any fails after the stage's attempts with that reason. Partial files are never
left (everything is written under a temporary name; a failed signing removes what it placed),
and the work directory goes with a failed job.

Each stage (rendering, encoding, signing) has a wall-clock bound (:func:`stage_timeout`,
``FEDISORA_RENDER_TIMEOUT_SECONDS``): a stage still running past it (a stuck GPU driver, a
deadlocked pipeline thread, while the worker's heartbeat keeps its lease) fails the job with
that reason, which frees its render slot. The threads of a stage run as daemon threads of
their own (:func:`_in_thread`); one still running a while after its stage timed out makes
this worker process unusable for rendering: its later jobs are given back to others, and the
worker is asked to restart (``engine.context["request_restart"]``, which ``fedisora worker``
sets: it exits for its supervisor to start it again).

The owner's "finished" or "failed" notification (and its outbox event) is written in the
transaction of the job's move to ``ready`` or ``failed`` (``_on_move``), whoever moves it:
a handler, or the engine failing a job whose attempts or time ran out.

torch is imported only when the pipeline is loaded (in a worker thread): importing this
module, as the web process does through ``PROVIDERS``, stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from fedisora.config import Settings
from fedisora.federation.likeness import discard_references
from fedisora.media_store import MediaStoreError, media_store
from fedisora.models import Account, Clip, MediaFile, MediaKind, NotificationType, RenderJob
from fedisora.models import utcnow as _utcnow
from fedisora.outages import disk_full
from fedisora.services import events
from fedisora.services.notify import notify
from fedisora.work import LeaseLost, Machine, Retry, WorkContext
from fedisora.work.engine import Outcome
from render import models
from render.catalogue import is_tiny
from render.consent import check_cameo_consent
from render.errors import ModelLoadError, RenderError
from render.fairness import admission, next_in_line, one_admission_at_a_time, select_due
from render.instance import load_credentials, record_roots, watermark_id, watermark_key
from render.spec import RenderPlan, RenderSpec, plan
from render.states import (
    CANCELLED,
    ENCODING,
    FAILED,
    GRAPH,
    QUEUED,
    READY,
    RENDERING,
    SIGNING,
)
from render.worker_report import WorkerReport

__all__ = [
    "QUEUE",
    "STUCK_GRACE",
    "PipelineLoader",
    "RenderCancelled",
    "build_render_machine",
    "clip_paths",
    "job_spec",
    "machines",
    "pipeline_for",
    "pipeline_options",
    "stage_timeout",
    "work_dir",
]

log = logging.getLogger("fedisora.render")

QUEUE = "render"

_ENCODED_META = "encoded.json"
"""Written last by the encoding stage: its presence means the stage finished."""

PipelineLoader = Callable[[Settings], Awaitable[Any]]

DISK_FULL = (
    "the server's media storage is full: the render is tried again when there is room, "
    "and fails if there is none after a few tries"
)


STORE_DOWN = "the media store could not take the finished clip; retrying"
"""The start of ``last_error`` while a render waits for the media store (S3) to come back."""


def _on_full_disk(
    handler: Callable[[RenderJob, WorkContext], Awaitable[Outcome]],
) -> Callable[[RenderJob, WorkContext], Awaitable[Outcome]]:
    """*handler*, with a full disk answered as a retry with :data:`DISK_FULL`."""

    async def run(job: RenderJob, ctx: WorkContext) -> Outcome:
        try:
            return await handler(job, ctx)
        except Exception as exc:
            if not disk_full(exc):
                raise
            log.warning("render job %s: the media disk is full in %s: %s", job.pk, job.state, exc)
            return Retry(DISK_FULL)

    return run


STUCK_GRACE = 10.0
"""Seconds a stage's thread has, once its stage timed out and was told to stop, to end before
the worker counts its render pipeline as stuck."""


class RenderCancelled(Exception):
    """Raised from ``on_step`` when the user asked to cancel."""


# --------------------------------------------------------------------------- pipeline cache

_PIPELINES: dict[tuple[str, ...], Any] = {}
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()
"""One generation at a time per process: a diffusers pipeline is not thread-safe (its
scheduler keeps per-call state), and one GPU gains nothing from interleaving renders."""


def pipeline_options(settings: Settings, *, cuda: bool) -> dict[str, Any]:
    """``load_pipeline``'s keyword arguments for *settings* (the FEDISORA_RENDER_* knobs)."""
    dtype = settings.render_dtype
    if dtype == "auto":
        dtype = "bfloat16" if cuda and not is_tiny(settings.render_model) else "float32"
    return {
        "family": settings.render_family or None,
        "dtype": dtype,
        "vae_tiling": settings.render_vae_tiling,
        "compile": settings.render_compile,
        "first_block_cache": settings.render_first_block_cache or None,
        "offload": settings.render_offload,
    }


def _pipeline_key(settings: Settings) -> tuple[Any, ...]:
    return (
        settings.render_model,
        settings.render_family,
        settings.render_dtype,
        settings.render_vae_tiling,
        settings.render_compile,
        settings.render_first_block_cache,
        settings.render_offload,
    )


def _load_sync(settings: Settings) -> Any:
    from render.pipeline import load_pipeline

    key = _pipeline_key(settings)
    with _LOAD_LOCK:
        if key not in _PIPELINES:
            import torch

            if _PIPELINES:  # another model was put in use: one model per process
                log.info("render model changed: unloading %s", list(_PIPELINES.values()))
                _PIPELINES.clear()
                _free_memory()

            options = pipeline_options(settings, cuda=torch.cuda.is_available())
            loaded = load_pipeline(settings.render_model, **options)
            _PIPELINES[key] = loaded
            log.info("loaded render pipeline %r with %s", loaded, options)
        return _PIPELINES[key]


async def pipeline_for(settings: Settings) -> Any:
    """The loaded pipeline for *settings* with the model in use applied (an admin's choice,
    :func:`render.models.effective`), loaded once per process (in a thread); a model put in
    use since replaces the one loaded before."""
    from render import models

    settings = await models.effective(settings)
    hit = _PIPELINES.get(_pipeline_key(settings))
    if hit is not None:
        return hit
    return await _in_thread(_load_sync, settings)


# --------------------------------------------------------------------------- stage threads

# The threads the stage running in this task started (see _bounded).
_STAGE_THREADS: ContextVar[list[threading.Thread] | None] = ContextVar(
    "render_stage_threads", default=None
)
_STUCK: set[threading.Thread] = set()
"""Threads of stages that timed out and did not end: this process cannot render any more."""


async def _in_thread(func: Callable[..., Any], /, *args: Any) -> Any:
    """``func(*args)`` in a daemon thread of its own, as ``asyncio.to_thread`` would in its
    pool: a thread that never returns (a stuck driver) then holds no pool worker and does
    not keep the process from exiting (the pool's threads are joined at exit). The thread
    is recorded for the stage running in this task, which watches it if it times out."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(error: BaseException | None, value: Any) -> None:
        if future.done():  # the stage was cancelled (timed out, the worker stopping)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        error: BaseException | None = None
        value = None
        try:
            value = context.run(func, *args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error, value)

    name = getattr(func, "__name__", "stage")
    thread = threading.Thread(target=run, name=f"render {name}", daemon=True)
    threads = _STAGE_THREADS.get()
    if threads is not None:
        threads.append(thread)
    thread.start()
    return await future


def _stuck() -> bool:
    """Whether a thread of a stage that timed out still runs in this process."""
    for thread in [t for t in _STUCK if not t.is_alive()]:
        _STUCK.discard(thread)
    return bool(_STUCK)


def stage_timeout(settings: Settings) -> float:
    """The longest one stage of a render may take (``FEDISORA_RENDER_TIMEOUT_SECONDS``; by
    default generous against the slowest renders known: a 5 s clip of Wan 2.1 1.3B takes
    about 4 minutes unoptimised on an RTX 4090, 14B models several times that)."""
    if settings.render_timeout_seconds:
        return settings.render_timeout_seconds
    if is_tiny(settings.render_model):
        return 600.0
    return max(600.0, 360.0 * settings.max_clip_seconds)


def _request_restart(ctx: WorkContext, reason: str) -> None:
    log.error("render worker: %s", reason)
    restart = ctx.engine.context.get("request_restart")
    if restart is not None:
        restart(reason)
    else:
        log.error("this process cannot render any more: restart it")


# --------------------------------------------------------------------------- paths and specs


def work_dir(settings: Settings, job_id: int) -> Path:
    """Where a job's intermediate files live until it is ready."""
    return settings.media_root / "render-work" / str(job_id)


def clip_paths(job_id: int) -> tuple[str, str]:
    """The final video and poster, relative to ``media_root``; fixed per job, so a retried
    stage overwrites its own earlier attempt instead of leaving a second file."""
    return f"clips/render-{job_id}.mp4", f"clips/render-{job_id}.jpg"


def job_spec(
    job: RenderJob,
    settings: Settings,
    consent_refs: tuple[str, ...] = (),
    references: tuple[str, ...] = (),
) -> RenderSpec:
    """The ``RenderSpec`` a stored job asks for (input image resolved under ``media_root``).

    *consent_refs* and *references* come from the consent check made right before the
    render: the consent ids and the reference stills (local paths) of the likenesses in a
    cameo, which condition the render (see ``render.pipeline``). The consent ids go on to
    the clip's C2PA manifest; the stills' paths are never stored (private files)."""
    s = job.spec
    image = s.get("input_image")
    return RenderSpec(
        prompt=s["prompt"],
        seed=int(s["seed"]),
        negative_prompt=s.get("negative_prompt", ""),
        seconds=float(s["seconds"]),
        aspect=s.get("aspect", "9:16"),
        kind=s.get("kind", "text"),
        input_image=str(settings.media_root / image) if image else None,
        remix_source=s.get("remix_source"),
        cameo_refs=consent_refs,
        references=references,
        audio=bool(s.get("audio", False)),
    )


def _stored_plan(job: RenderJob) -> RenderPlan:
    return RenderPlan(**job.spec["plan"])


def _remove_parts(directory: Path, prefix: str = "") -> None:
    """Delete temporary files a killed attempt left behind (``atomic_path`` names)."""
    if directory.is_dir():
        for part in directory.glob(f".{prefix}*.part"):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- stage helpers


async def _finish(job: RenderJob, ctx: WorkContext, target: str, error: str) -> str:
    """Move to a terminal state (failed / cancelled) with a message, fenced on our lease."""
    async with ctx.transition(target) as conn:  # (finished_at: see _on_move)
        await RenderJob.filter(pk=job.pk).using_db(conn).update(last_error=error[:10000])
    return target


async def _add_gpu_seconds(job: RenderJob, ctx: WorkContext, seconds: float) -> None:
    """Count GPU time spent on an attempt that did not finish (quotas see it)."""
    await RenderJob.filter(pk=job.pk, lock_token=ctx.token).update(
        gpu_seconds=F("gpu_seconds") + seconds
    )


class _Progress:
    """Bridges the pipeline thread's ``on_step`` and the row (through the event loop)."""

    def __init__(self, job: RenderJob, ctx: WorkContext, loop: asyncio.AbstractEventLoop) -> None:
        self.job, self.ctx, self.loop = job, ctx, loop
        self.stop: BaseException | None = None  # set by the heartbeat: cancel or lease lost

    async def write(self, done: int, total: int) -> None:
        updated = await RenderJob.filter(pk=self.job.pk, lock_token=self.ctx.token).update(
            progress_step=done,
            progress_total=total,
            locked_until=self.ctx.now() + self.ctx.engine.lease,
        )
        if updated != 1:
            raise LeaseLost(f"render_jobs:{self.job.pk}")
        await self.check_cancel()

    async def check_cancel(self) -> None:
        flags = await RenderJob.filter(pk=self.job.pk).values_list("cancel_requested", flat=True)
        if flags and flags[0]:
            raise RenderCancelled("cancelled by its owner")

    def on_step(self, done: int, total: int) -> None:
        """Called in the pipeline thread after every denoising step (diffusers'
        ``callback_on_step_end``); raising aborts it. Every step is written before the next
        one starts, so the row (and the progress stream reading it) moves one step at a time;
        the write also checks for a cancel. (One UPDATE and one SELECT: milliseconds, where a
        real model's step takes seconds.)"""
        if self.stop is not None:
            raise self.stop
        asyncio.run_coroutine_threadsafe(self.write(done, total), self.loop).result(60)

    async def heartbeat(self, interval: float) -> None:
        """Extend the lease and watch for cancellation while the thread works."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.ctx.heartbeat()
                await self.check_cancel()
            except (LeaseLost, RenderCancelled) as exc:
                self.stop = exc
                return
            except Exception:  # a database hiccup: the lease still has two intervals left
                log.warning("render job %s: heartbeat failed", self.job.pk, exc_info=True)


def _generate(pipe: Any, p: RenderPlan, spec: RenderSpec, progress: _Progress) -> Any:
    """The pipeline's ``Rendered`` (frames and sound); a loader's pipeline that only has
    ``generate`` (frames) renders silent clips."""
    from render.pipeline import Rendered

    with _GENERATE_LOCK:
        if progress.stop is not None:
            raise progress.stop
        render = getattr(pipe, "render", None)
        if render is not None:
            return render(p, spec, progress.on_step)
        if p.audio:
            raise RenderError("this render pipeline renders no sound")
        return Rendered(pipe.generate(p, spec, progress.on_step))


Stage = Callable[[RenderJob, WorkContext], Awaitable[Outcome]]


def _bounded(settings: Settings, stage: str, handler: Stage) -> Stage:
    """*handler* with the stage's wall-clock bound (see the module docstring)."""

    async def run(job: RenderJob, ctx: WorkContext) -> Outcome:
        if _stuck():
            _request_restart(ctx, "a render stage that timed out is still running")
            return Retry(
                "this worker's render pipeline is stuck: another worker (or this one, started "
                "again) takes the job",
                after=ctx.engine.lease,
                counts=False,
            )
        bound = stage_timeout(settings)
        threads: list[threading.Thread] = []
        token = _STAGE_THREADS.set(threads)
        timeout = asyncio.timeout(bound)
        try:
            async with timeout:
                return await handler(job, ctx)
        except TimeoutError:
            if not timeout.expired():
                raise
        finally:
            _STAGE_THREADS.reset(token)
        log.error("render job %s: %s did not finish within %.0f s", job.pk, stage, bound)
        outcome = await _finish(
            job,
            ctx,
            FAILED,
            f"{stage} did not finish within {bound:.0f} s (FEDISORA_RENDER_TIMEOUT_SECONDS): "
            "the render pipeline may be stuck",
        )
        await _wake_next(ctx)  # the slot it held is free
        await _watch(ctx, threads)
        return outcome

    return run


async def _watch(ctx: WorkContext, threads: list[threading.Thread]) -> None:
    """Give the threads of a stage that timed out (told to stop: a pipeline at its next
    step) :data:`STUCK_GRACE` seconds to end; one that does not makes this process unusable
    for rendering (it holds the pipeline, and the GPU with it)."""
    deadline = time.monotonic() + STUCK_GRACE
    for thread in threads:  # (a bounded join, in the pool)
        await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))
    alive = [t for t in threads if t.is_alive()]
    if alive:
        _STUCK.update(alive)
        _request_restart(ctx, f"{len(alive)} thread(s) of a render stage that timed out still run")


def _save_frames(frames: Any, dst: Path) -> None:
    import numpy as np

    from render.encode import atomic_path

    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, frames, allow_pickle=False)


_AUDIO = "audio.npz"


def _save_rendered(rendered: Any, out_dir: Path) -> None:
    """The sound (if any) to ``audio.npz``, then the frames to ``frames.npy``, each atomically.

    The encoding stage starts from the frames: written last, after the files of an earlier
    attempt are gone, they are never found beside another attempt's sound or without this
    one's (a worker killed in between leaves no frames, and the job renders again)."""
    import numpy as np

    from render.encode import atomic_path

    for stale in ("frames.npy", _AUDIO):
        (out_dir / stale).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rendered.audio is not None:
        with atomic_path(out_dir / _AUDIO) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, samples=rendered.audio, rate=np.int64(rendered.sample_rate))
    _save_frames(rendered.frames, out_dir / "frames.npy")


def _load_audio(out_dir: Path) -> tuple[Any, int] | None:
    import numpy as np

    path = out_dir / _AUDIO
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["samples"], int(data["rate"])


def _encode(
    frames_path: Path, out_dir: Path, p: RenderPlan, settings: Settings, job_id: int, creator: str
) -> None:
    import numpy as np

    from render.encode import atomic_path, encode_mp4, probe
    from render.spec import check_output, check_sound
    from render.watermark import apply_visible_mark, embed_id

    frames = np.load(frames_path, allow_pickle=False)
    count, height, width, _ = frames.shape
    check_output(count, p.fps, width, height, p.family, settings.max_clip_seconds)
    sound = _load_audio(out_dir) if p.audio else None
    if p.audio and sound is None:
        raise RenderError("the render asked for sound and the pipeline made none")
    marked = apply_visible_mark(frames, instance=settings.domain, creator=creator)
    marked = embed_id(marked, watermark_id(job_id), key=watermark_key(settings))
    encoded = encode_mp4(
        marked,
        out_dir / "encoded.mp4",
        fps=p.fps,
        poster=out_dir / "poster.jpg",
        audio=None if sound is None else sound[0],
        sample_rate=None if sound is None else sound[1],
    )
    # What players will see: the container's own numbers (encode_mp4 wrote it atomically).
    info = probe(encoded.path, decode=False)
    check_output(
        info.frames, round(info.fps), info.width, info.height, p.family, settings.max_clip_seconds
    )
    track = None if info.audio is None else (info.audio.start - info.start, info.audio.duration)
    check_sound(p.audio, p.fps, info.frames, track)
    with atomic_path(out_dir / _ENCODED_META) as tmp:
        tmp.write_text(json.dumps({"blurhash": encoded.blurhash}))


def _sign(
    settings: Settings, job: RenderJob, creator_uri: str, consent_refs: tuple[str, ...]
) -> dict[str, Any]:
    """Sign, verify and place the final files; return the MediaFile's values."""
    from render.encode import atomic_path, probe, sha256_file
    from render.provenance import (
        ProvenanceClaim,
        ValidationState,
        prompt_sha256,
        sign_mp4,
        verify_mp4,
    )

    root_pem, chain_pem, key_pem = load_credentials(settings)
    try:  # the root history keeps every root clips were signed under, even one put by hand
        record_roots(settings, root_pem)
    except (OSError, ValueError) as exc:
        log.warning("could not keep the provenance root in the root history: %s", exc)
    src_dir = work_dir(settings, job.pk)
    video_rel, poster_rel = clip_paths(job.pk)
    # Placed where the media store takes finished files from (for the local store, their
    # final place); ``signing`` hands them over.
    store = media_store(settings)
    video, poster = store.staging(video_rel), store.staging(poster_rel)
    video.parent.mkdir(parents=True, exist_ok=True)
    _remove_parts(video.parent, f"render-{job.pk}.")
    spec = job.spec
    model = settings.render_model
    claim = ProvenanceClaim(
        instance=settings.domain,
        job_id=str(job.pk),
        model=model if is_tiny(model) else Path(model).name,
        seed=int(spec["seed"]),
        prompt_sha256=prompt_sha256(spec["prompt"]),
        creator=creator_uri,
        remix_source=spec.get("remix_source"),
        consent_refs=consent_refs,
        input_image=bool(spec.get("input_image")),
        remix_frames=bool(spec.get("remix_frames")),
        audio=bool(spec.get("plan", {}).get("audio")),
    )
    try:
        signed = sign_mp4(
            src_dir / "encoded.mp4",
            video,
            chain_pem=chain_pem,
            key_pem=key_pem,
            claim=claim,
            title=f"{settings.domain} render {job.pk}",
        )
        result = verify_mp4(video, [root_pem])
        if result.state is not ValidationState.TRUSTED or result.claim != claim:
            raise RenderError(
                f"the signed clip does not verify against this instance's root: {result.state} "
                f"{', '.join(result.failures)}"
            )
        with atomic_path(poster) as tmp:
            shutil.copyfile(src_dir / "poster.jpg", tmp)
        blurhash = json.loads((src_dir / _ENCODED_META).read_text())["blurhash"]
        info = probe(video, decode=False)
    except BaseException:  # a full disk, or a refused signature: no clip without its media row
        video.unlink(missing_ok=True)
        poster.unlink(missing_ok=True)
        raise
    return {
        "file": video_rel,
        "poster_file": poster_rel,
        "content_type": "video/mp4",
        "width": info.width,
        "height": info.height,
        "duration": round(info.frames / info.fps, 3) if info.fps else info.duration,
        "fps": info.fps,
        "frames": info.frames,
        "size": signed.size,
        "sha256": sha256_file(video),
        "blurhash": blurhash,
        "provenance": {
            "state": "trusted",
            "local": True,
            "manifest_digest": signed.manifest_digest,
            "digital_source_type": claim.digital_source_type,
            "signer": result.signer,
            "claim": claim.to_assertion(),
            "watermark_id": watermark_id(job.pk),
        },
    }


async def _remix_still(
    job: RenderJob, settings: Settings, pipe: Any, spec: RenderSpec, out_dir: Path
) -> Path | None:
    """The remixed clip's middle frame, to condition the remix on, where that is possible.

    Only a local source whose file is still there gives one, and only when the model has an
    image-to-video pipeline; otherwise (a remote source, a deleted file, a text-only model)
    the remix renders from the prompt alone. Extracted again on every attempt: the work
    directory of a resumed job may be gone.
    """
    from render.encode import middle_frame
    from render.errors import ProbeError

    if not pipe.supports(replace(spec, input_image="remix source")):
        return None
    clip_id = job.spec.get("remix_clip_id")
    clip = await Clip.get_or_none(pk=clip_id, deleted_at=None) if clip_id else None
    if clip is None or not clip.local or clip.media_id is None:
        return None
    media = await MediaFile.get_or_none(pk=clip.media_id)
    if media is None or not media.file:
        return None
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    try:
        async with media_store(settings).local_copy(media.file) as source:
            return await asyncio.to_thread(middle_frame, source, out_dir / "remix-source.png")
    except FileNotFoundError:
        return None
    except ProbeError as exc:
        log.warning("render job %s: remix source unreadable, text only: %s", job.pk, exc)
        return None


async def _local_input(
    settings: Settings, job: RenderJob, spec: RenderSpec, out_dir: Path
) -> RenderSpec:
    """*spec* with its input still on local disk: a store other than media_root's disk
    (S3) has it copied into the job's work directory first. A still that is gone is left
    to fail as it does on local disk (the pipeline cannot read it)."""
    image = job.spec.get("input_image")
    store = media_store(settings)
    if not image or store.backend == "local":
        return spec
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    local = out_dir / ("input-" + Path(str(image)).name)
    try:
        await store.fetch(str(image), local)
    except FileNotFoundError:
        return spec
    return replace(spec, input_image=str(local))


# --------------------------------------------------------------------------- the machine


_ADMISSION_POLL = timedelta(seconds=1)


class _NoSlot(Exception):
    """Raised inside the move to rendering when the job must wait: rolls the move back."""

    def __init__(self, ahead: int) -> None:
        super().__init__(f"{ahead} ahead")
        self.ahead = ahead


async def _wake_next(ctx: WorkContext) -> None:
    """A render slot may have freed: make the next queued job due and wake a runner for it."""
    try:
        row = await next_in_line()
        if row is None:
            return
        now = ctx.now()
        await RenderJob.filter(pk=row.pk, state=QUEUED, next_attempt_at__gt=now).update(
            next_attempt_at=now
        )
        row = await RenderJob.get(pk=row.pk)
        await ctx.engine.wake(ctx.machine, row)
    except Exception:  # the retry schedule and the sweeps find it anyway
        log.warning("waking the next render job failed", exc_info=True)


def build_render_machine(settings: Settings, *, load: PipelineLoader = pipeline_for) -> Machine:
    """The render machine for *settings*; *load* returns the pipeline (tests inject one)."""

    async def queued(job: RenderJob, ctx: WorkContext) -> Outcome:
        if job.cancel_requested:
            return await _finish(job, ctx, CANCELLED, "cancelled by its owner")
        try:
            # Counted and moved in one transaction, one admission at a time: two jobs
            # checked side by side (two workers, or one worker's concurrent jobs) used to
            # both see the last slot free and render at once.
            async with ctx.transition(RENDERING) as conn:
                await one_admission_at_a_time(conn)
                waiting = await admission(job, settings.render_slots, conn)
                if waiting:
                    raise _NoSlot(waiting)  # rolls the move back
        except _NoSlot as no_slot:
            # Counts as an attempt of "queued" (which has no limit); a freed slot wakes the
            # next job at once (``_wake_next``), so this delay only bounds lost wake-ups.
            return Retry(
                f"waiting for a render slot ({no_slot.ahead} ahead)", after=_ADMISSION_POLL
            )
        return RENDERING

    async def rendering(job: RenderJob, ctx: WorkContext) -> Outcome:
        # The heartbeat keeps the lease from the claim on, through the model load (minutes
        # for a real model, the first time) as much as the steps: a live worker's job is
        # never taken over, a dead worker's is resumed within a lease.
        progress = _Progress(job, ctx, asyncio.get_running_loop())
        beat = asyncio.create_task(
            progress.heartbeat(max(0.5, ctx.engine.lease.total_seconds() / 3))
        )
        try:
            return await _rendering(job, ctx, progress)
        finally:
            # A remote owner's stills serve this one job: gone once it rendered, failed or
            # was cancelled (fedisora.federation.likeness.fetch_references).
            await asyncio.to_thread(discard_references, settings, job.pk)
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            await _wake_next(ctx)

    async def _rendering(job: RenderJob, ctx: WorkContext, progress: _Progress) -> Outcome:
        if job.cancel_requested:
            return await _finish(job, ctx, CANCELLED, "cancelled by its owner")
        cameos = [int(i) for i in job.spec.get("cameos") or ()]
        decision = await check_cameo_consent(job, cameos, publish=False, settings=settings)
        if not decision.allowed:
            return await _finish(job, ctx, FAILED, f"cameo refused: {decision.reason}")
        try:
            pipe = await load(settings)
        except ModelLoadError as exc:  # the detail names server paths: logs only
            log.error("render job %s: the render model cannot be loaded: %s", job.pk, exc)
            return await _finish(job, ctx, FAILED, ModelLoadError.PUBLIC)
        spec = job_spec(job, settings, decision.refs, decision.references)
        try:
            spec = await _local_input(settings, job, spec, work_dir(settings, job.pk))
        except MediaStoreError as exc:
            log.warning("render job %s: %s", job.pk, exc.detail)
            return Retry(f"{STORE_DOWN}: {exc}")
        try:
            p = plan(
                spec, pipe.family, settings.max_clip_seconds, steps=settings.render_steps or None
            )
        except RenderError as exc:  # limits changed since the request was accepted
            return await _finish(job, ctx, FAILED, str(exc))

        out_dir = work_dir(settings, job.pk)
        _remove_parts(out_dir)
        remix_frames = False
        if spec.kind == "remix" and spec.input_image is None:
            still = await _remix_still(job, settings, pipe, spec, out_dir)
            if still is not None:
                spec, remix_frames = replace(spec, input_image=str(still)), True
        started = time.monotonic()
        try:
            rendered = await _in_thread(_generate, pipe, p, spec, progress)
            await _in_thread(_save_rendered, rendered, out_dir)
        except LeaseLost:
            raise
        except asyncio.CancelledError:
            # The worker is stopping: the thread cannot be cancelled, so make its next step
            # raise. The row keeps its lease until it expires, then another worker resumes.
            progress.stop = LeaseLost("worker shutting down")
            raise
        except RenderCancelled:
            await _add_gpu_seconds(job, ctx, time.monotonic() - started)
            return await _finish(job, ctx, CANCELLED, "cancelled by its owner while rendering")
        except Exception as exc:
            await _add_gpu_seconds(job, ctx, time.monotonic() - started)
            if _is_oom(exc):
                _free_memory()
                return await _finish(
                    job,
                    ctx,
                    FAILED,
                    f"out of memory while rendering ({type(exc).__name__}: {exc}); try a "
                    "shorter clip or a smaller aspect",
                )
            if isinstance(exc, RenderError) and not disk_full(exc):
                return await _finish(job, ctx, FAILED, str(exc))
            raise  # unexpected: the engine retries, then fails the job with this error
        elapsed = time.monotonic() - started
        spec_json = {
            **job.spec,
            "plan": asdict(p),
            "consent_refs": list(decision.refs),
            "remix_frames": remix_frames,
        }
        async with ctx.transition(ENCODING) as conn:
            await (
                RenderJob.filter(pk=job.pk)
                .using_db(conn)
                .update(
                    gpu_seconds=F("gpu_seconds") + elapsed,
                    progress_step=p.steps,
                    progress_total=p.steps,
                    spec=spec_json,
                )
            )
        return ENCODING

    async def encoding(job: RenderJob, ctx: WorkContext) -> str:
        if job.cancel_requested:
            return await _finish(job, ctx, CANCELLED, "cancelled by its owner")
        out_dir = work_dir(settings, job.pk)
        frames = out_dir / "frames.npy"
        if not frames.is_file() or "plan" not in job.spec:
            log.warning("render job %s: frames are gone, rendering again", job.pk)
            return RENDERING
        _remove_parts(out_dir)
        account = await Account.get(pk=job.account_id)
        try:
            async with ctx.keep_lease():
                await _in_thread(
                    _encode, frames, out_dir, _stored_plan(job), settings, job.pk, account.username
                )
        except RenderError as exc:  # a limit-breaking output is never published
            if disk_full(exc):  # not the output's fault: retried (_on_full_disk)
                raise
            return await _finish(job, ctx, FAILED, f"output refused: {exc}")
        return SIGNING

    async def signing(job: RenderJob, ctx: WorkContext) -> Outcome:
        if job.cancel_requested:
            return await _finish(job, ctx, CANCELLED, "cancelled by its owner")
        out_dir = work_dir(settings, job.pk)
        if not all(
            (out_dir / name).is_file() for name in ("encoded.mp4", "poster.jpg", _ENCODED_META)
        ):
            return ENCODING
        account = await Account.get(pk=job.account_id)
        refs = tuple(str(r) for r in job.spec.get("consent_refs") or ())
        try:
            async with ctx.keep_lease():
                in_use = await models.effective(settings)  # the model named in the manifest
                values = await _in_thread(_sign, in_use, job, account.uri, refs)
        except RenderError as exc:
            if disk_full(exc):
                raise
            return await _finish(job, ctx, FAILED, f"provenance: {exc}")
        store = media_store(settings)
        try:  # the clip and its poster, each whole or not at all; then the row that names them
            async with ctx.keep_lease():  # (a large clip to a slow store)
                await store.commit(values["file"], values["poster_file"])
        except MediaStoreError as exc:
            log.warning("render job %s: %s", job.pk, exc.detail)
            await _forget(store, values["file"], values["poster_file"])
            return Retry(f"{STORE_DOWN}: {exc}")
        async with ctx.transition(READY) as conn:
            media = await MediaFile.create(
                account_id=job.account_id, kind=MediaKind.VIDEO, using_db=conn, **values
            )
            await RenderJob.filter(pk=job.pk).using_db(conn).update(output_id=media.pk)
        return READY

    async def on_transition(job: RenderJob, source: str, target: str) -> None:
        if target in (READY, FAILED, CANCELLED):
            await asyncio.to_thread(shutil.rmtree, work_dir(settings, job.pk), True)
        if target == CANCELLED and job.output_id is not None:
            await _discard_output(settings, job)

    return Machine(
        model=RenderJob,
        graph=GRAPH,
        handlers={
            QUEUED: queued,
            RENDERING: _bounded(settings, "rendering", _on_full_disk(rendering)),
            ENCODING: _bounded(settings, "encoding", _on_full_disk(encoding)),
            SIGNING: _bounded(settings, "signing", _on_full_disk(signing)),
        },
        queue=QUEUE,
        select_due=select_due,
        on_transition=on_transition,
        on_move=_on_move,
        transaction=events.transaction,
        light=False,  # GPU work, one row at a time, in select_due's order: never claimed ahead
        report=WorkerReport(settings),  # the model and GPU, in the worker's heartbeat
    )


async def _on_move(job: RenderJob, source: str, target: str, conn: BaseDBAsyncClient) -> None:
    """In the transaction of every move of a job (see ``Machine.on_move``), whoever makes it:
    a job that ends gets its ``finished_at``, and its owner is told that it is ready or
    failed, committed with the move (a kill right after it loses neither)."""
    if target in (READY, FAILED, CANCELLED):
        await (
            RenderJob.filter(pk=job.pk, finished_at=None)
            .using_db(conn)
            .update(finished_at=_utcnow())
        )
    if target in (READY, FAILED):
        owner = await Account.get(pk=job.account_id, using_db=conn)
        kind = (
            NotificationType.RENDER_FINISHED if target == READY else NotificationType.RENDER_FAILED
        )
        await notify(owner, kind, dedupe_key=f"render:{job.pk}", render_job=job)


async def _discard_output(settings: Settings, job: RenderJob) -> None:
    """A ready clip the owner cancelled: remove its media unless something posted it."""
    media = await MediaFile.get_or_none(pk=job.output_id)
    if media is None or await Clip.filter(media_id=media.pk).exists():
        return
    await RenderJob.filter(pk=job.pk).update(output_id=None)
    await media.delete()
    try:
        await media_store(settings).delete([media.file, media.poster_file])
    except MediaStoreError as exc:  # the row is gone: media_gc cannot find these again
        log.error(
            "render job %s: the cancelled clip's files stay in the store: %s", job.pk, exc.detail
        )


async def _forget(store: Any, *keys: str) -> None:
    """A clip that could not be stored: its staged files and whatever part of it the store
    took (the video without its poster) are removed, so nothing of it is ever served."""
    for key in keys:
        with contextlib.suppress(OSError):
            store.staging(key).unlink(missing_ok=True)
    with contextlib.suppress(MediaStoreError):
        await store.delete(keys)


def machines(settings: Settings) -> list[Machine]:
    """The provider listed in ``fedisora.work.machines.PROVIDERS``."""
    return [build_render_machine(settings)]
