"""Prompt to published clip through the render queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import local_account
from PIL import Image

from fedisora.errors import Conflict, Forbidden, NotFound
from fedisora.models import Clip, MediaFile, Notification, NotificationType, RenderJob
from fedisora.work.runner import InProcessRunner
from render.instance import watermark_id, watermark_key
from render.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    ValidationState,
    prompt_sha256,
    verify_mp4,
)
from render.service import publish_render, render_progress, submit_render
from render.watermark import read_id


def _decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


async def test_prompt_to_published_clip(db: str, render_settings: Any, render_engine: Any) -> None:
    alice = await local_account("alice")
    job = await submit_render(
        alice,
        {"prompt": "a lighthouse in a storm", "seconds": 1.0, "seed": 7},
        settings=render_settings,
        engine=render_engine,
    )
    assert job.state == "queued"
    before = await render_progress(job)
    assert (before["state"], before["percent"], before["queue_position"]) == ("queued", 0, 1)

    runner = InProcessRunner(render_engine, queues=("render",), concurrency=1)
    await runner.drain(60)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready", job.last_error
    assert job.gpu_seconds > 0 and job.finished_at is not None
    progress = await render_progress(job)
    assert progress["percent"] == 100 and progress["step"] == progress["total"] == 2

    media = await MediaFile.get(pk=job.output_id)
    video = render_settings.media_root / media.file
    assert video.is_file() and (render_settings.media_root / media.poster_file).is_file()
    assert (media.frames, media.width, media.height, media.fps) == (17, 64, 112, 16.0)
    assert media.blurhash and len(media.sha256) == 64 and media.size == video.stat().st_size
    prov = media.provenance
    assert prov["state"] == "trusted" and prov["local"] is True
    assert prov["watermark_id"] == watermark_id(job.pk)
    assert prov["claim"]["job_id"] == str(job.pk) and prov["claim"]["seed"] == 7
    assert prov["claim"]["prompt_sha256"] == prompt_sha256("a lighthouse in a storm")
    assert prov["claim"]["creator"] == alice.uri
    assert prov["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA

    root = (render_settings.data_dir / "provenance" / "root.pem").read_text()
    check = verify_mp4(video, [root])
    assert check.state is ValidationState.TRUSTED
    assert check.manifest_digest == prov["manifest_digest"]
    reading = read_id(_decode(video), key=watermark_key(render_settings))
    assert reading.id == watermark_id(job.pk) and reading.likely_marked
    # Intermediate files are gone once the job is ready.
    assert not (render_settings.media_root / "render-work" / str(job.pk)).exists()

    notes = await Notification.filter(recipient_id=alice.pk).values_list("type", flat=True)
    assert list(notes) == [NotificationType.RENDER_FINISHED]

    clip = await publish_render(alice, job, caption="storm #sea", engine=render_engine)
    assert clip.media_id == media.pk and clip.render_job_id == job.pk
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "published" and job.locked_until is None
    with pytest.raises(Conflict):
        await publish_render(alice, job, engine=render_engine)
    assert await Clip.filter(media_id=media.pk).count() == 1

    # A remix takes the source's prompt, links to it in the manifest and in the post.
    bob = await local_account("bob")
    remix = await submit_render(
        bob, {"remix_of": clip.pk, "seconds": 0.5}, settings=render_settings, engine=render_engine
    )
    assert remix.spec["kind"] == "remix" and remix.spec["prompt"] == "a lighthouse in a storm"
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    remix = await RenderJob.get(pk=remix.pk)
    assert remix.state == "ready", remix.last_error
    remix_media = await MediaFile.get(pk=remix.output_id)
    assert remix_media.provenance["claim"]["remix_source"] == clip.uri
    remixed = await publish_render(bob, remix, caption="my take", engine=render_engine)
    assert remixed.remix_of_id == clip.pk
    assert (await Clip.get(pk=clip.pk)).remixes_count == 1


async def test_image_to_video_is_composite(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    bob = await local_account("bob")
    still = io.BytesIO()
    Image.new("RGB", (120, 90), (200, 40, 40)).save(still, format="JPEG")
    job = await submit_render(
        bob,
        {"prompt": "the red card flies away", "seconds": 0.5},
        settings=render_settings,
        engine=render_engine,
        image=still.getvalue(),
    )
    assert job.spec["kind"] == "image" and job.spec["input_image"].endswith(".png")
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready", job.last_error
    media = await MediaFile.get(pk=job.output_id)
    assert media.provenance["digital_source_type"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert media.provenance["claim"]["input_image"] is True


async def test_cameo_is_refused_before_rendering_and_owner_told(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    from likenesses import verified_likeness

    from fedisora.services.likeness import update_policy

    carol = await local_account("carol")
    dave = await local_account("dave")
    await verified_likeness(dave, render_settings, audience="everyone")
    job = await submit_render(
        carol,
        {"prompt": "dave dancing", "seconds": 0.5, "cameos": [dave.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    await update_policy(dave, audience="nobody")  # consent taken back while the job waits
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "failed" and job.output_id is None
    assert "cameo refused" in job.last_error and "lets nobody use" in job.last_error
    assert job.gpu_seconds == 0  # refused before the pipeline ran
    note = await Notification.get(recipient_id=carol.pk, type=NotificationType.RENDER_FAILED)
    assert note.type == NotificationType.RENDER_FAILED and note.render_job_id == job.pk
    assert await MediaFile.all().count() == 0
    with pytest.raises(Conflict):
        await publish_render(carol, job, engine=render_engine)


async def test_publish_refusals(db: str, render_settings: Any, render_engine: Any) -> None:
    erin, frank = await local_account("erin"), await local_account("frank")
    job = await submit_render(
        erin, {"prompt": "mine", "seconds": 0.5}, settings=render_settings, engine=render_engine
    )
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    job = await RenderJob.get(pk=job.pk)
    with pytest.raises(NotFound):
        await publish_render(frank, job, engine=render_engine)
    # Consent is asked again at publishing time: a likeness whose consent is gone by then
    # (here: a cameo recorded on the job, which the check refuses) keeps the clip unposted.
    await RenderJob.filter(pk=job.pk).update(spec={**job.spec, "cameos": [frank.pk]})
    with pytest.raises(Forbidden, match="cameo refused"):
        await publish_render(erin, await RenderJob.get(pk=job.pk), engine=render_engine)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready" and job.lock_token is None
    assert await Clip.all().count() == 0
