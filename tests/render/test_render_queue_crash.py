"""A render worker SIGKILLed mid-render: another worker resumes the job within a lease and a
sweep interval and finishes it once, and the render slot it held comes free again.

Real ``fedisora worker`` processes on both executors: arq on Redis (where the dead job's
arq keys used to keep its id from running again for the 24 h job timeout) and the
in-process runner.
"""

from __future__ import annotations

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
