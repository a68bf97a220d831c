"""A render worker SIGKILLed mid-render: the job is picked up again and finished once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from factories import local_account

from fedisora.models import MediaFile, RenderJob
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.provenance import ValidationState, verify_mp4
from render.queue import build_render_machine
from render.service import submit_render

ROOT = Path(__file__).resolve().parents[2]
LEASE = 5  # the smallest FEDISORA_WORKER_LEASE_SECONDS allows
STEPS = 20

WORKER = """
import asyncio
from fedisora import urls
from fedisora.config import load_settings
from fedisora.db import init_db
from fedisora.work.machines import build_engine
from fedisora.work.runner import InProcessRunner

async def main():
    settings = load_settings()
    urls.configure(settings)
    await init_db(settings)
    engine = build_engine(settings, providers=["render.queue:machines"])
    runner = InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.1)
    await runner.run()

asyncio.run(main())
"""


async def test_worker_killed_mid_render_is_finished_by_another(
    db: str, render_settings: Any, tiny_loader: Any, tmp_path: Path
) -> None:
    settings = replace(render_settings, render_steps=STEPS, worker_lease_seconds=LEASE)
    alice = await local_account()
    job = await submit_render(alice, {"prompt": "crash test", "seconds": 0.5}, settings=settings)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")},
        "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        "FEDISORA_DATABASE_URL": db,
        "FEDISORA_DATA_DIR": str(settings.data_dir),
        "FEDISORA_DOMAIN": settings.domain,
        "FEDISORA_SECRET_KEY": settings.secret_key,
        "FEDISORA_RENDER_STEPS": str(STEPS),
        "FEDISORA_WORKER_LEASE_SECONDS": str(LEASE),
        "FEDISORA_LOG_LEVEL": "warning",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as stderr:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, cwd=ROOT, env=env, stderr=stderr
        )
    try:
        async with asyncio.timeout(60):
            while True:
                row = await RenderJob.get(pk=job.pk)
                if row.state == "rendering" and row.progress_step >= 1:
                    break
                assert worker.returncode is None, log.read_text()
                await asyncio.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        if worker.returncode is None:
            worker.kill()
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    killed = await RenderJob.get(pk=job.pk)
    assert killed.state == "rendering" and killed.progress_step < STEPS
    assert killed.lock_token is not None and killed.locked_until is not None

    engine = Engine(
        [build_render_machine(settings, load=tiny_loader)],
        lease=timedelta(seconds=LEASE),
        context={"settings": settings},
    )
    # drain waits out the dead worker's lease, then runs the job from its seed again.
    await InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.1).drain(60)
    done = await RenderJob.get(pk=job.pk)
    assert done.state == "ready", done.last_error
    assert done.gpu_seconds > 0 and done.progress_step == STEPS

    media = await MediaFile.all()
    assert [m.pk for m in media] == [done.output_id]
    clips = settings.media_root / "clips"
    assert sorted(p.name for p in clips.iterdir()) == [
        f"render-{job.pk}.jpg",
        f"render-{job.pk}.mp4",
    ]  # no second output, no temporary leftovers
    assert not (settings.media_root / "render-work" / str(job.pk)).exists()
    root_pem = (settings.data_dir / "provenance" / "root.pem").read_text()
    assert verify_mp4(clips / f"render-{job.pk}.mp4", [root_pem]).state is ValidationState.TRUSTED
