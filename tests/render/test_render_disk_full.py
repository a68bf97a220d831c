"""A render that meets a full media disk (a real small tmpfs, or a loop ext4) in any stage is
retried with a clear reason on its stage's schedule, finishes once there is room, and fails
with that reason (leaving no file) if there never is: never an error naming internal paths,
never a crash of the worker, never a partial file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from throwaway import fill_filesystem, small_filesystem

from fedisora.models import MediaFile, RenderJob, utcnow
from fedisora.work.engine import AdvanceResult
from render.queue import DISK_FULL
from render.service import submit_render
from render.states import GRAPH

QUICK = {"prompt": "a paper boat", "seconds": 0.25}
FILLER = ".filler"
TABLE = "render_jobs"


@pytest.fixture
def media(render_settings: Any) -> Iterator[Path]:
    root: Path = render_settings.media_root
    with small_filesystem(root, 8 * 1024 * 1024):
        yield root


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != FILLER
    }


async def _due(job_id: int) -> None:
    """The retry's delay has passed."""
    await RenderJob.filter(pk=job_id).update(next_attempt_at=utcnow())


@pytest.mark.parametrize("stage", ["rendering", "encoding", "signing"])
async def test_a_full_disk_is_retried_with_a_clear_reason_and_the_render_finishes(
    db: str, render_settings: Any, render_engine: Any, media: Path, stage: str
) -> None:
    alice = await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=render_engine)
    while job.state != stage:
        assert await render_engine.advance(TABLE, job.pk) is AdvanceResult.MOVED
        job = await RenderJob.get(pk=job.pk)
    before = _files(media)

    fill_filesystem(media / FILLER)
    assert await render_engine.advance(TABLE, job.pk) is AdvanceResult.RETRY
    job = await RenderJob.get(pk=job.pk)
    assert (job.state, job.attempts, job.last_error) == (stage, 1, DISK_FULL)
    assert job.locked_until is None and job.next_attempt_at > utcnow()
    assert _files(media) == before  # nothing half-written
    assert await MediaFile.all().count() == 0

    (media / FILLER).unlink()  # room again
    await _due(job.pk)
    while job.state != "ready":
        assert await render_engine.advance(TABLE, job.pk) is AdvanceResult.MOVED
        job = await RenderJob.get(pk=job.pk)
    media_row = await MediaFile.get(pk=job.output_id)
    assert (media / media_row.file).is_file() and (media / str(media_row.poster_file)).is_file()


async def test_a_disk_that_stays_full_fails_the_render_with_that_reason(
    db: str, render_settings: Any, render_engine: Any, media: Path
) -> None:
    alice = await local_account()
    job = await submit_render(alice, QUICK, settings=render_settings, engine=render_engine)
    assert await render_engine.advance(TABLE, job.pk) is AdvanceResult.MOVED  # to rendering
    fill_filesystem(media / FILLER)
    results = []
    while (await RenderJob.get(pk=job.pk)).state == "rendering":
        results.append(await render_engine.advance(TABLE, job.pk))
        await _due(job.pk)
    tries = GRAPH["rendering"].max_attempts
    assert tries is not None and tries >= 2
    assert results == [AdvanceResult.RETRY] * (tries - 1) + [AdvanceResult.FAILED]
    job = await RenderJob.get(pk=job.pk)
    assert (job.state, job.last_error) == ("failed", DISK_FULL)
    assert _files(media) == set()
    assert not (media / "render-work" / str(job.pk)).exists()
