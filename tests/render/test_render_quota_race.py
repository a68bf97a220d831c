"""Simultaneous requests by one account cannot both pass a quota (on both backends)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from factories import local_account

from fedisora.models import RenderJob, RenderQuotaGuard
from render.service import RenderQuotaError, submit_render

_OK = {"prompt": "a kite over a hill", "seconds": 1}


async def _race(account: Any, settings: Any, n: int) -> tuple[list[Any], list[str]]:
    results = await asyncio.gather(
        *(submit_render(account, dict(_OK), settings=settings) for _ in range(n)),
        return_exceptions=True,
    )
    jobs = [r for r in results if isinstance(r, RenderJob)]
    refused = [r.quota for r in results if isinstance(r, RenderQuotaError)]
    assert len(jobs) + len(refused) == n, results  # nothing else went wrong
    return jobs, refused


async def test_simultaneous_submits_respect_concurrent_jobs(db: str, render_settings: Any) -> None:
    alice, bob = await local_account(), await local_account()
    settings = replace(render_settings, render_concurrent_jobs=2, render_clips_per_day=100)
    jobs, refused = await _race(alice, settings, 6)
    assert len(jobs) == 2 and refused == ["concurrent_jobs"] * 4
    assert await RenderJob.filter(account_id=alice.pk).count() == 2
    guard = await RenderQuotaGuard.get(account_id=alice.pk)
    assert guard.submits == 2  # refused requests rolled back their increment
    # Another account's burst is not held up by alice's guard, and gets its own share.
    jobs, refused = await _race(bob, settings, 3)
    assert len(jobs) == 2 and refused == ["concurrent_jobs"]


async def test_simultaneous_submits_respect_clips_per_day(db: str, render_settings: Any) -> None:
    alice = await local_account()
    settings = replace(render_settings, render_concurrent_jobs=50, render_clips_per_day=3)
    jobs, refused = await _race(alice, settings, 7)
    assert len(jobs) == 3 and refused == ["clips_per_day"] * 4
    assert await RenderJob.filter(account_id=alice.pk).count() == 3
    # Admin tools skip the quota (and the guard) altogether.
    extra = await submit_render(alice, dict(_OK), settings=settings, enforce_quota=False)
    assert extra.state == "queued"
