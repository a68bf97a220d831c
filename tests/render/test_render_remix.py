"""A remix of a local clip conditions on the source's own frame, and says so in its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import local_account, rendered_video
from PIL import Image
from render_spy import SpyPipeline, spy_engine

from fedisora.models import Clip, MediaFile, RenderJob
from fedisora.services.posts import post_clip
from fedisora.work.runner import InProcessRunner
from render.encode import encode_mp4, middle_frame
from render.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
)
from render.service import submit_render


def test_middle_frame_is_the_middle_of_the_clip(tmp_path: Path, make_frames: Any) -> None:
    frames = make_frames(17, 112, 64)
    encode_mp4(frames, tmp_path / "c.mp4", fps=16)
    still = middle_frame(tmp_path / "c.mp4", tmp_path / "still.png")
    with Image.open(still) as image:
        got = np.asarray(image.convert("RGB")).astype(int)
    errors = [np.abs(got - f).mean() for f in frames.astype(int)]
    assert int(np.argmin(errors)) == 8 and errors[8] < 6  # frame 8 of 0..16, through H.264


# Nothing here depends on the backend (both are covered by the flow tests); one keeps
# the suite fast.
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_remix_conditions_on_the_local_source_frame(
    db: str, render_settings: Any, tiny: Any, make_frames: Any
) -> None:
    spy = SpyPipeline(tiny)
    engine = spy_engine(render_settings, spy)
    alice, bob = await local_account("alice"), await local_account("bob")
    media = await rendered_video(alice)
    source_frames = make_frames(17, 112, 64)
    source_file = render_settings.media_root / str(media.file)
    source_file.parent.mkdir(parents=True)
    encode_mp4(source_frames, source_file, fps=16)
    source = await post_clip(alice, media, caption="gradients")
    # The remix takes its prompt from the source's render job.
    made = await RenderJob.create(
        account=alice, state="published", spec={"prompt": "a sunrise of gradients"}
    )
    await Clip.filter(pk=source.pk).update(render_job_id=made.pk)

    async def remix() -> tuple[MediaFile, Any, np.ndarray | None]:
        job = await submit_render(
            bob, {"remix_of": source.pk, "seconds": 0.5}, settings=render_settings, engine=engine
        )
        await InProcessRunner(engine, queues=("render",), concurrency=1).drain(60)
        job = await RenderJob.get(pk=job.pk)
        assert job.state == "ready", job.last_error
        spec, still = spy.calls[-1]
        assert spec.kind == "remix" and spec.prompt == "a sunrise of gradients"
        return await MediaFile.get(pk=job.output_id), spec, still

    out, spec, still = await remix()
    # Image-to-video from the source's middle frame (9 of 17), fitted to the remix's size.
    assert spec.input_image.endswith("remix-source.png") and still is not None
    assert still.shape == (112, 64, 3)
    assert np.abs(still.astype(int) - source_frames[8]).mean() < 6
    claim = out.provenance["claim"]
    assert claim["remix_source"] == source.uri and claim["remix_frames"] is True
    assert claim["input_image"] is False  # no user still went in: the source's frame did
    assert out.provenance["digital_source_type"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA

    # The source's file gone: the remix falls back to its prompt alone, and says so.
    source_file.unlink()
    out, spec, still = await remix()
    assert spec.input_image is None and still is None
    assert out.provenance["claim"]["remix_frames"] is False
    assert out.provenance["claim"]["remix_source"] == source.uri
    assert out.provenance["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA

    # A remote source's frames are not on this instance's disk: prompt alone too.
    encode_mp4(source_frames, source_file, fps=16)
    await Clip.filter(pk=source.pk).update(local=False)
    out, spec, still = await remix()
    assert spec.input_image is None and out.provenance["claim"]["remix_frames"] is False
