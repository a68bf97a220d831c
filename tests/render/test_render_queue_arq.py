"""The render queue under arq on a real Redis: ``fedisora worker`` with FEDISORA_REDIS_URL."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from typing import Any

import pytest
from arq.connections import create_pool
from factories import local_account
from render_spy import SpyPipeline, spy_engine

from fedisora.models import MediaFile, RenderJob
from fedisora.work.arq_worker import ArqWaker, build_worker, queue_name, redis_settings
from render.queue import QUEUE
from render.service import submit_render


# The arq path does not depend on the database backend (claims are tested on both elsewhere).
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_arq_worker_renders_fairly(
    db: str, render_settings: Any, tiny: Any, redis_url: str
) -> None:
    """arq runs wake-ups first come, first served; the admission gate still takes turns."""
    spy = SpyPipeline(tiny)
    render_engine = spy_engine(render_settings, spy)
    prefix = f"fedisora-test-{secrets.token_hex(4)}"
    pool = await create_pool(redis_settings(redis_url))
    render_engine.add_waker(ArqWaker(pool, prefix))
    worker = build_worker(render_engine, redis_url, QUEUE, prefix=prefix, max_jobs=4)
    alice, bob = await local_account(), await local_account()
    kw: dict[str, Any] = {
        "settings": replace(render_settings, render_concurrent_jobs=5),
        "engine": render_engine,
    }
    many = [
        await submit_render(alice, {"prompt": prompt, "seconds": 0.25}, **kw)
        for prompt in ("alice 1", "alice 2")
    ]
    job = await submit_render(bob, {"prompt": "bob 1", "seconds": 0.25}, **kw)
    # The wake-ups are on Redis before any worker runs: the rows and the messages agree.
    assert await pool.zcard(queue_name(QUEUE, prefix)) == 3
    task = asyncio.create_task(worker.async_run())
    try:
        async with asyncio.timeout(60):
            while True:
                if not await RenderJob.exclude(state__in=("ready", "failed")).exists():
                    break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(worker.close(), return_exceptions=True)
        keys = await pool.keys(f"{prefix}*")
        if keys:
            await pool.delete(*keys)
        await pool.aclose()
    jobs = await RenderJob.all().order_by("id")
    assert [j.state for j in jobs] == ["ready"] * 3, [j.last_error for j in jobs]
    assert [j.pk for j in jobs] == [many[0].pk, many[1].pk, job.pk]
    # Bob's job reached the GPU second, not behind all of Alice's as arq's own order would
    # have it. (Finishing order would not show this: a job admitted later may finish
    # encoding first.)
    assert [spec.prompt for spec, _ in spy.calls] == ["alice 1", "bob 1", "alice 2"]
    row = jobs[2]
    media = await MediaFile.get(pk=row.output_id)
    assert media.provenance["state"] == "trusted"
    assert (render_settings.media_root / media.file).is_file()
