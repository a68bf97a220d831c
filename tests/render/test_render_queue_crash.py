"""A render worker SIGKILLed mid-render: another worker resumes the job within a lease and a
sweep interval and finishes it once, and the render slot it held comes free again.

Real ``fedisora worker`` processes on both executors: arq on Redis (where the dead job's
arq keys used to keep its id from running again for the 24 h job timeout) and the
in-process runner.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from worker_procs import LEASE, SLACK, start_worker, sweep_interval, wait_until, worker_env

from fedisora.models import MediaFile, Notification, NotificationType, RenderJob
from render.provenance import ValidationState, verify_mp4
from render.service import submit_render

STEPS = 40  # long enough for the second worker to start while the first renders


@pytest.mark.parametrize(
    ("db", "mode"),
    [("postgres", "arq"), ("postgres", "inprocess"), ("sqlite", "inprocess")],
    indirect=["db"],
)
async def test_worker_killed_mid_render_is_resumed_within_a_lease_and_a_sweep(
    db: str, mode: str, render_settings: Any, redis_url: str, tmp_path: Path
) -> None:
    settings = replace(render_settings, render_steps=STEPS, worker_lease_seconds=LEASE)
    alice, bob = await local_account(), await local_account()
    first = await submit_render(alice, {"prompt": "crash test", "seconds": 0.5}, settings=settings)
    # One render slot (the default): Bob's job waits for the slot the dead worker held.
    second = await submit_render(
        bob, {"prompt": "waits its turn", "seconds": 0.5}, settings=settings
    )
    env = worker_env(
        db,
        settings.data_dir,
        domain=settings.domain,
        secret_key=settings.secret_key,
        redis_url=redis_url if mode == "arq" else None,
        FEDISORA_RENDER_STEPS=str(STEPS),
    )
    victim = await start_worker(env, tmp_path / "victim.log")
    rescuer = None
    try:

        async def claimed() -> bool:
            row = await RenderJob.get(pk=first.pk)
            return row.state == "rendering" and row.lock_token is not None

        await wait_until(claimed, 60, "the first job claimed", workers=(victim,))
        # The second worker runs before the kill (it starts while the first one loads the
        # model, holding the job all the while): what is measured is a live worker's resume.
        rescuer = await start_worker(env, tmp_path / "rescuer.log")

        async def mid_render() -> bool:
            row = await RenderJob.get(pk=first.pk)
            return row.state == "rendering" and row.progress_step >= 1

        await wait_until(
            mid_render, 90, "the first job rendering", interval=0.02, workers=(victim, rescuer)
        )
        killed_at = await victim.kill()
        killed = await RenderJob.get(pk=first.pk)
        assert killed.state == "rendering" and killed.progress_step < STEPS
        assert killed.lock_token is not None and killed.locked_until is not None
        assert (await RenderJob.get(pk=second.pk)).state == "queued"  # behind the dead one

        async def resumed() -> bool:
            row = await RenderJob.get(pk=first.pk)
            return row.lock_token not in (None, killed.lock_token) or row.state != "rendering"

        bound = LEASE + sweep_interval(mode) + SLACK
        resumed_at = await wait_until(resumed, bound + 30, "the resume", workers=(rescuer,))
        assert resumed_at - killed_at <= bound, f"resumed {resumed_at - killed_at:.1f} s after"

        async def both_done() -> bool:
            return not await RenderJob.exclude(state__in=("ready", "failed")).exists()

        finished_at = await wait_until(both_done, 120, "both jobs done", workers=(rescuer,))
    finally:
        await victim.stop()
        if rescuer is not None:
            await rescuer.stop()
    jobs = {j.pk: j for j in await RenderJob.all()}
    done, after = jobs[first.pk], jobs[second.pk]
    assert (done.state, after.state) == ("ready", "ready"), (done.last_error, after.last_error)
    assert done.progress_step == STEPS
    # GPU time counted once: only the attempt that finished (the killed one never committed).
    assert 0 < done.gpu_seconds < finished_at - resumed_at

    # Exactly once: one media row and one pair of files per job, one notification each.
    media = await MediaFile.all()
    assert sorted(m.pk for m in media) == sorted([done.output_id, after.output_id])
    clips = settings.media_root / "clips"
    assert sorted(p.name for p in clips.iterdir()) == sorted(
        f"render-{pk}.{ext}" for pk in (first.pk, second.pk) for ext in ("jpg", "mp4")
    )  # no second output, no temporary leftovers
    assert not any((settings.media_root / "render-work").iterdir())
    for job in (done, after):
        finished = Notification.filter(render_job_id=job.pk, type=NotificationType.RENDER_FINISHED)
        assert await finished.count() == 1
    root_pem = (settings.data_dir / "provenance" / "root.pem").read_text()
    verified = verify_mp4(clips / f"render-{first.pk}.mp4", [root_pem])
    assert verified.state is ValidationState.TRUSTED


def _env(db: str, settings: Any, redis_url: str | None, **extra: str) -> dict[str, str]:
    return worker_env(
        db,
        settings.data_dir,
        domain=settings.domain,
        secret_key=settings.secret_key,
        redis_url=redis_url,
        FEDISORA_RENDER_STEPS=str(STEPS),
        **extra,
    )


async def _rendering_under(pk: int, worker: Any, other_than: str | None = None) -> RenderJob:
    """Wait until job *pk* is past its first denoising step under a lock token other than
    *other_than*, in *worker*; the row then."""

    async def rendering() -> bool:
        row = await RenderJob.get(pk=pk)
        return (
            row.state == "rendering"
            and row.lock_token not in (None, other_than)
            and row.progress_step >= 1
        )

    await wait_until(rendering, 90, f"job {pk} rendering", interval=0.02, workers=(worker,))
    return await RenderJob.get(pk=pk)


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_render_that_kills_its_worker_twice_fails_and_frees_its_slot(
    db: str, render_settings: Any, tmp_path: Path
) -> None:
    """The host's OOM killer takes the render worker down mid-render, twice: the job is not
    tried a third time (render/states.py) but fails, its owner is told once, and the job
    waiting behind it for the one render slot renders."""
    settings = replace(render_settings, render_steps=STEPS, worker_lease_seconds=LEASE)
    alice, bob = await local_account(), await local_account()
    poison = await submit_render(alice, {"prompt": "oom", "seconds": 0.5}, settings=settings)
    second = await submit_render(bob, {"prompt": "behind", "seconds": 0.5}, settings=settings)
    env = _env(db, settings, None)
    token = None
    for death in range(2):
        worker = await start_worker(env, tmp_path / f"worker{death}.log")
        try:
            row = await _rendering_under(poison.pk, worker, token)
            assert row.attempts == death  # the first takeover counted one
            token = row.lock_token
            await worker.kill()
        finally:
            await worker.stop()
    survivor = await start_worker(env, tmp_path / "survivor.log")
    try:

        async def settled() -> bool:
            return not await RenderJob.exclude(state__in=("ready", "failed")).exists()

        await wait_until(settled, 120, "both jobs settled", workers=(survivor,))
    finally:
        await survivor.stop()
    failed, after = await RenderJob.get(pk=poison.pk), await RenderJob.get(pk=second.pk)
    assert failed.state == "failed" and failed.attempts == 2, failed.last_error
    assert "the last: the runner working on it stopped" in failed.last_error
    assert failed.finished_at is not None and failed.output_id is None
    assert after.state == "ready", after.last_error
    notes = Notification.filter(render_job_id=poison.pk)
    assert [n.type for n in await notes] == [NotificationType.RENDER_FAILED]


@pytest.mark.parametrize(
    ("db", "mode"), [("postgres", "arq"), ("sqlite", "inprocess")], indirect=["db"]
)
async def test_a_worker_stopped_mid_render_gives_the_job_back_without_an_attempt(
    db: str, mode: str, render_settings: Any, redis_url: str, tmp_path: Path
) -> None:
    """SIGTERM (a restart, a deploy) mid-render: the worker cancels the step after its grace
    (none here: a tiny render would finish within the default) and gives the job back; the
    next worker takes it over when the lease runs out without counting an attempt (twice
    would fail it), and finishes it."""
    settings = replace(render_settings, render_steps=STEPS, worker_lease_seconds=LEASE)
    alice = await local_account()
    job = await submit_render(alice, {"prompt": "restart", "seconds": 0.5}, settings=settings)
    env = _env(
        db, settings, redis_url if mode == "arq" else None, FEDISORA_WORKER_STOP_GRACE_SECONDS="0"
    )
    token = None
    for restart in range(2):
        worker = await start_worker(env, tmp_path / f"worker{restart}.log")
        try:
            row = await _rendering_under(job.pk, worker, token)
            assert (row.attempts, row.last_error) == (0, "")
            token = row.lock_token
            worker.process.terminate()
            async with asyncio.timeout(30):
                assert await worker.process.wait() == 0, worker.output()
        finally:
            await worker.stop()
        given = await RenderJob.get(pk=job.pk)
        assert given.state == "rendering" and given.lock_token is None, given.last_error
        assert given.attempts == 0
    worker = await start_worker(env, tmp_path / "last.log")
    try:

        async def ready() -> bool:
            return (await RenderJob.get(pk=job.pk)).state == "ready"

        await wait_until(ready, 120, "the job ready", workers=(worker,))
    finally:
        await worker.stop()
    done = await RenderJob.get(pk=job.pk)
    assert done.progress_step == STEPS and done.last_error == ""
