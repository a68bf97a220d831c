"""A real (tiny) render, published, fingerprinted by the render queue's worker and found again:
its invisible watermark, read with the instance's key, names the clip too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from benchlookup import transform_file
from factories import local_account

from fedisora.models import Fingerprint, FingerprintChunk, MediaFile, RenderJob
from fedisora.services import fingerprints
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.fingerprint import MATCH_SCORE
from render.instance import watermark_id
from render.service import publish_render, submit_render


async def test_a_published_render_is_found_by_its_fingerprint_and_watermark(
    db: str, render_settings: Any, render_engine: Any, tmp_path: Path
) -> None:
    alice = await local_account("alice")
    job = await submit_render(
        alice,
        {"prompt": "a kite over the dunes", "seconds": 2.0, "seed": 3},
        settings=render_settings,
        engine=render_engine,
    )
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready", job.last_error
    clip = await publish_render(alice, job, engine=render_engine)

    engine = Engine(
        fingerprints.machines(render_settings),
        lease=timedelta(seconds=30),
        context={"settings": render_settings},
    )
    row = await Fingerprint.get(clip_id=clip.pk)
    assert await engine.advance("fingerprints", row.pk) == "moved"
    row = await Fingerprint.get(pk=row.pk)
    assert row.state == "done" and row.watermark_id == watermark_id(job.pk)

    media = await MediaFile.get(pk=job.output_id)
    video = render_settings.media_root / media.file
    stripped = transform_file(video, tmp_path / "stripped.mp4", "strip")
    trimmed = transform_file(video, tmp_path / "trimmed.mp4", "trim", seed=1)
    for copy, least in ((video, 1.0), (stripped, 1.0), (trimmed, MATCH_SCORE)):
        found = await fingerprints.lookup_file(copy, render_settings)
        assert [m.status_id for m in found] == [str(clip.pk)], copy
        assert found[0].provenance == "trusted" and found[0].score >= least

    # Its watermark alone names it: a clip whose frames were never indexed (its fingerprint
    # failed) is still found by the mark it carries, read with this instance's key.
    await FingerprintChunk.filter(fingerprint_id=row.pk).delete()
    (match,) = await fingerprints.lookup_file(stripped, render_settings)
    assert match.status_id == str(clip.pk) and match.score >= 0.8
