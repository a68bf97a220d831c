"""``fedisora render``, ``fedisora verify`` and ``fedisora model``.

``render`` runs one job through the same queue as everyone else's (a RenderJob row, the
render machine's handlers) with an in-process runner for the render queue, so what an
admin tries from the shell is exactly what users get. ``verify`` needs no database: it
reads a file's C2PA manifest, validates it against the trusted instance roots and reads the
invisible watermark.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from fedisora.config import Settings, load_settings
from fedisora.errors import Invalid, NotFound
from render.errors import RenderError
from render.instance import trusted_roots, watermark_key

__all__ = ["Verification", "cmd_model", "cmd_render", "cmd_verify", "model_lines", "verify_file"]


@dataclass(frozen=True)
class Verification:
    """What ``verify_file`` found, and its printable summary."""

    state: str
    trusted: bool
    lines: tuple[str, ...]


def verify_file(path: Path, settings: Settings) -> Verification:
    """Manifest, validation state against trusted roots, and the watermark id of *path*."""
    import numpy as np

    from render.encode import probe
    from render.errors import ProbeError
    from render.provenance import ValidationState, verify_mp4
    from render.watermark import read_id

    if not path.is_file():
        raise Invalid(f"{path} does not exist")
    roots = trusted_roots(settings)
    try:
        result = verify_mp4(path, roots)
    except RenderError as exc:
        raise Invalid(str(exc)) from exc
    lines = [f"file: {path}"]
    if result.state is ValidationState.MISSING:
        lines.append("manifest: none (no C2PA provenance in this file)")
    else:
        lines.append(f"manifest: sha256 {result.manifest_digest}")
        verdict = {
            ValidationState.TRUSTED: "signed by a trusted instance root",
            ValidationState.VALID: "intact, but the signer is not in the trusted roots",
            ValidationState.INVALID: "altered or badly signed",
        }[result.state]
        lines.append(f"validation: {result.state.value} ({verdict}; {len(roots)} trusted roots)")
        lines.append(f"signer: {result.signer or '-'}")
        lines.append(f"source type: {result.digital_source_type or '-'}")
        if result.created_tracks:
            lines.append(f"generated tracks: {', '.join(result.created_tracks)}")
        if result.failures:
            lines.append(f"failures: {', '.join(result.failures)}")
        claim = result.claim
        if claim is not None:
            lines.append(
                f"claim: instance {claim.instance}, job {claim.job_id}, model {claim.model}, "
                f"seed {claim.seed}, prompt sha256 {claim.prompt_sha256}"
            )
            lines.append(
                f"creator: {claim.creator or '-'}; remix source: {claim.remix_source or '-'}; "
                f"consent refs: {', '.join(claim.consent_refs) or '-'}"
            )
    try:
        info = probe(path)
        if info.audio is not None:
            lines.append(
                f"sound: {info.audio.codec} {info.audio.sample_rate} Hz, {info.audio.channels} "
                f"channel(s), {info.audio.duration:.3f} s from {info.audio.start:.3f} s "
                f"(picture: {info.duration:.3f} s)"
            )
        import av

        with av.open(str(path)) as container:
            frames = np.stack(
                [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            ).astype(np.uint8)
        reading = read_id(frames, key=watermark_key(settings))
        if reading.likely_marked:
            mark = (
                f"watermark: id {reading.id}, confidence {reading.confidence:.2f}, present "
                f"({reading.scheme} scheme)"
            )
        else:
            mark = f"watermark: not found (sync peak {reading.sync_z:.1f} sd: unmarked level)"
        if reading.likely_marked and result.claim is not None:
            same = str(reading.id) == str(int(result.claim.job_id) % (1 << 32))
            mark += "; matches the claim's job" if same else "; does NOT match the claim's job"
        lines.append(mark)
    except (ProbeError, ValueError) as exc:
        lines.append(f"watermark: unreadable ({exc})")
    return Verification(result.state.value, result.trusted, tuple(lines))


async def cmd_verify(args: argparse.Namespace) -> int:
    settings = load_settings()
    report = await asyncio.to_thread(verify_file, Path(args.file), settings)
    print("\n".join(report.lines))
    return 0 if report.trusted else 1


async def cmd_render(args: argparse.Namespace) -> int:
    from fedisora import urls
    from fedisora.db import close_db, init_db, migrate
    from fedisora.media_store import media_store
    from fedisora.models import Account, MediaFile, RenderJob, User
    from fedisora.work.machines import build_engine
    from fedisora.work.runner import InProcessRunner
    from render.service import render_progress, submit_render
    from render.states import OVER, READY

    settings = load_settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    try:
        if args.user:
            account = await Account.get_or_none(username=args.user, domain=None)
            if account is None:
                raise NotFound(f"no local user @{args.user}")
        else:
            admin = await User.filter(is_admin=True).order_by("id").first()
            if admin is None:
                raise NotFound("no admin user: run `fedisora init` or pass --user")
            account = await Account.get(pk=admin.account_id)
        spec: dict[str, object] = {"prompt": args.prompt, "seconds": args.seconds}
        if args.aspect:
            spec["aspect"] = args.aspect
        if args.seed is not None:
            spec["seed"] = args.seed
        if getattr(args, "audio", None) is not None:
            spec["audio"] = args.audio
        engine = build_engine(settings, providers=["render.queue:machines"])
        try:
            job = await submit_render(
                account, spec, settings=settings, engine=engine, priority=10, enforce_quota=False
            )
        except RenderError as exc:
            raise Invalid(str(exc)) from exc
        print(f"render job {job.pk}: seed {job.spec['seed']}", flush=True)
        runner = InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.5)
        runner.start()
        shown = ""
        try:
            while job.state not in OVER:
                await asyncio.sleep(0.5)
                job = await RenderJob.get(pk=job.pk)
                p = await render_progress(job)
                line = f"{p['state']} {p['step']}/{p['total']} ({p['percent']}%)"
                if line != shown:
                    print(line, flush=True)
                    shown = line
        finally:
            await runner.stop()
        if job.state != READY or job.output_id is None:
            raise Invalid(f"render job {job.pk} {job.state}: {job.last_error}")
        media = await MediaFile.get(pk=job.output_id)
        store = media_store(settings)
        async with store.local_copy(str(media.file)) as stored:
            path = stored
            if args.out:
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(stored, out)
                path = out
            print(f"output: {path if store.backend == 'local' or args.out else media.file}")
            report = await asyncio.to_thread(verify_file, path, settings)
        print("\n".join(report.lines))
        return 0 if report.trusted else 1
    finally:
        await close_db()


# --------------------------------------------------------------------------- fedisora model


def model_lines(settings: Settings, in_use: str) -> list[str]:
    """``fedisora model list``: every catalogue model with what it needs and whether it is
    installed or in use, the built-in tiny models, and installed directories the catalogue
    does not name."""
    from render.catalogue import CATALOGUE, TINY_MODELS
    from render.models import installed
    from render.spec import FAMILIES

    here = installed(settings)

    def state(name: str, built_in: bool = False) -> str:
        words = ["built in" if built_in else "installed" if name in here else "not installed"]
        if name == in_use:
            words.append("IN USE")
        return ", ".join(words)

    lines = [f"models directory: {settings.models_dir}", f"in use: {in_use}", ""]
    for tiny in TINY_MODELS.values():
        lines.append(f"{tiny.name:<18} {tiny.family:<15} {state(tiny.name, True)}: {tiny.note}")
    lines.append("")
    for entry in CATALOGUE.values():
        fam = FAMILIES.get(entry.family)
        supported = "" if fam is not None else " (family not supported by this version)"
        lines.append(
            f"{entry.name:<18} {entry.family + supported:<15} {state(entry.name)}: {entry.title}"
        )
        lines.append(f"    hub: {entry.repo_id}  licence: {entry.licence}")
        lines.append(
            f"    needs: about {entry.disk_gb:g} GB of disk, at least {entry.min_vram_gb} GB "
            "of GPU memory" + (" (renders cameos)" if entry.cameos else "")
        )
        fps = fam.fps if fam is not None else 24
        for gpu in (entry.gpu24, entry.gpu80):
            if gpu is not None:
                lines.append(f"    {gpu.describe(fps)}")
        if entry.gpu24 is None:
            lines.append("    24 GB: does not fit")
        if entry.note:
            lines.append(f"    note: {entry.note}")
    others = [m for name, m in here.items() if name not in CATALOGUE]
    if others:
        lines.append("")
        for model in others:
            lines.append(
                f"{model.name:<18} {model.family:<15} {state(model.name)}: "
                f"{model.pipeline_class} (not from the catalogue)"
            )
    return lines


async def cmd_model(args: argparse.Namespace) -> int:
    """``fedisora model list|pull|use``: see :mod:`render.models`."""
    from fedisora.db import close_db, init_db, migrate
    from fedisora.services import audit
    from render import models

    settings = load_settings()
    if args.action == "pull":
        # Files only: no database, so a model can be pulled before the instance runs.
        source = Path(args.source) if args.source else None
        where = f"from {source}" if source else "from the Hugging Face hub"
        print(f"pulling {args.name} {where} into {settings.models_dir}", flush=True)
        done = await asyncio.to_thread(
            models.pull, settings, args.name, source=source, show_progress=True
        )
        print(
            f"installed {done.name}: {done.pipeline_class} ({done.family}), "
            f"{done.size / 1e9:.1f} GB at {done.path}; put it in use with "
            f"`fedisora model use {done.name}`"
        )
        return 0
    await migrate(settings)  # (as createuser does: the choice is a row of the database)
    await init_db(settings)
    try:
        effective = await models.effective(settings)
        if args.action == "list":
            print("\n".join(model_lines(effective, models.in_use(settings))))
            return 0
        value = await models.use(settings, args.name, audit.CLI)
    finally:
        await close_db()
    print(f"render model in use: {value} (workers load it for their next render)")
    return 0
