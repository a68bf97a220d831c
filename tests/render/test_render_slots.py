"""The render slots are a hard limit: jobs admitted side by side never share the last one."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from factories import local_account

from fedisora.models import RenderJob
from fedisora.work import Engine
from render.queue import build_render_machine
from render.service import submit_render
from render.states import FAILED, QUEUED, RENDERING


async def test_jobs_checked_side_by_side_never_share_the_last_slot(
    db: str, render_settings: Any, tiny_loader: Any
) -> None:
    """Two workers (engines of their own) run the queued steps of jobs from different users
    at the same moment, many times over: at most one job holds the one render slot. The
    count of rendering jobs and the move used to be separate statements, so both jobs could
    count the slot free before either moved."""
    settings = replace(render_settings, render_slots=1, render_concurrent_jobs=50)
    engines = [
        Engine([build_render_machine(settings, load=tiny_loader)], context={"settings": settings})
        for _ in range(2)
    ]
    users = [await local_account() for _ in range(3)]
    for _ in range(15):
        jobs = [
            await submit_render(user, {"prompt": "slot", "seconds": 0.25}, settings=settings)
            for user in users
        ]
        await asyncio.gather(
            *(engines[i % 2].advance("render_jobs", job.pk) for i, job in enumerate(jobs))
        )
        states = [j.state for j in await RenderJob.filter(pk__in=[j.pk for j in jobs])]
        assert states.count(RENDERING) == 1, states
        assert states.count(QUEUED) == 2, states
        # Make room for the next round.
        await RenderJob.filter(pk__in=[j.pk for j in jobs]).update(
            state=FAILED, next_attempt_at=None, locked_until=None, lock_token=None
        )
