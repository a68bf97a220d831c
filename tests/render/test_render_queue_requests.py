"""Requests refused before any row exists: clip limits, bad input images, models, quotas."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from PIL import Image

from fedisora.models import RenderJob, utcnow
from render.errors import ModelLoadError, RenderLimitError
from render.service import RenderQuotaError, submit_render


@pytest.mark.parametrize(
    ("spec", "limit", "message"),
    [
        ({"prompt": ""}, "prompt", "must not be empty"),
        ({"prompt": "x" * 2001}, "prompt", "at most 2000"),
        ({"prompt": "ok", "seconds": 11}, "seconds", "at most 10"),
        ({"prompt": "ok", "seconds": "lots"}, "seconds", "must be a number"),
        ({"prompt": "ok", "aspect": "4:3"}, "aspect", "allowed: 9:16, 1:1, 16:9"),
        ({"prompt": "ok", "seed": -1}, "seed", "from 0 to 4294967295"),
        ({"prompt": "ok", "colour": "red"}, "spec", "unknown field(s) colour"),
        ({"prompt": "ok", "cameos": [1, 2, 3, 4, 5]}, "cameo_refs", "at most 4"),
    ],
)
async def test_limits_are_refused_at_request_time(
    db: str, render_settings: Any, spec: dict[str, Any], limit: str, message: str
) -> None:
    alice = await local_account()
    with pytest.raises(RenderLimitError) as caught:
        await submit_render(alice, spec, settings=render_settings)
    assert caught.value.limit == limit
    assert message in str(caught.value)
    assert await RenderJob.all().count() == 0


async def test_instance_may_lower_the_duration_cap(db: str, render_settings: Any) -> None:
    alice = await local_account()
    lowered = replace(render_settings, max_clip_seconds=3.0)
    with pytest.raises(RenderLimitError, match="at most 3, got 4"):
        await submit_render(alice, {"prompt": "ok", "seconds": 4}, settings=lowered)
    job = await submit_render(alice, {"prompt": "ok", "seconds": 3}, settings=lowered)
    assert job.progress_total == 2 and job.spec["seconds"] == 3.0


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not an image at all", "not a readable image"),
        (_png((64, 64))[:-40], "not a readable image"),  # truncated: corrupt
        (b"\x89PNG" + b"\0" * (21 * 1024 * 1024), "at most 20 MB"),
        (_png((8, 200)), "at least 16"),
        ("GIF", "allowed formats"),
        ("huge", "at most 40,000,000 pixels"),
    ],
)
async def test_bad_input_images_are_refused(
    db: str, render_settings: Any, tmp_path: Path, data: bytes | str, message: str
) -> None:
    if data == "GIF":
        buf = io.BytesIO()
        Image.new("RGB", (32, 32)).save(buf, format="GIF")
        data = buf.getvalue()
    elif data == "huge":
        # A tiny file claiming 10000x5000 pixels: refused from the header, never decoded.
        buf = io.BytesIO()
        Image.new("1", (10000, 5000)).save(buf, format="PNG")
        data = buf.getvalue()
    alice = await local_account()
    with pytest.raises(RenderLimitError) as caught:
        await submit_render(alice, {"prompt": "ok"}, settings=render_settings, image=data)
    assert caught.value.limit == "input_image"
    assert message in str(caught.value)
    assert await RenderJob.all().count() == 0
    assert not (render_settings.media_root / "render-inputs").exists()


async def test_model_directory_that_does_not_load_is_refused(
    db: str, render_settings: Any, tmp_path: Path
) -> None:
    alice = await local_account()
    broken = tmp_path / "model"
    broken.mkdir()
    settings = replace(render_settings, render_model=str(broken))
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        await submit_render(alice, {"prompt": "ok"}, settings=settings)
    (broken / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelLoadError, match="supported: CogVideoX"):
        await submit_render(alice, {"prompt": "ok"}, settings=settings)
    assert await RenderJob.all().count() == 0


async def test_quotas(db: str, render_settings: Any) -> None:
    alice, bob = await local_account(), await local_account()
    settings = replace(
        render_settings,
        render_concurrent_jobs=2,
        render_clips_per_day=3,
        render_gpu_seconds_per_day=100.0,
    )
    ok = {"prompt": "ok", "seconds": 0.5}
    first = await submit_render(alice, ok, settings=settings)
    await submit_render(alice, ok, settings=settings)
    with pytest.raises(RenderQuotaError) as caught:
        await submit_render(alice, ok, settings=settings)
    assert caught.value.quota == "concurrent_jobs" and caught.value.status == 429
    assert "at most 2 at a time" in str(caught.value)
    await submit_render(bob, ok, settings=settings)  # quotas are per user

    await RenderJob.filter(pk=first.pk).update(state="ready")
    await submit_render(alice, ok, settings=settings)  # the third clip today
    await RenderJob.filter(account_id=alice.pk).update(state="published")
    with pytest.raises(RenderQuotaError, match="requested 3 clips in the last 24 hours"):
        await submit_render(alice, ok, settings=settings)
    # Failed and cancelled requests do not count as clips, but their GPU time does.
    await RenderJob.filter(account_id=alice.pk).update(state="failed", gpu_seconds=40.0)
    with pytest.raises(RenderQuotaError) as caught:
        await submit_render(alice, ok, settings=settings)
    assert caught.value.quota == "gpu_seconds_per_day"
    assert "used 120 of 100 GPU-seconds" in str(caught.value)
    # Yesterday's usage no longer counts.
    await RenderJob.filter(account_id=alice.pk).update(
        created_at=utcnow().replace(year=utcnow().year - 1)
    )
    job = await submit_render(alice, ok, settings=settings)
    assert job.state == "queued"
    # Admin tools may skip quotas.
    await submit_render(alice, ok, settings=settings, enforce_quota=False)
    await submit_render(alice, ok, settings=settings, enforce_quota=False)
    assert await RenderJob.filter(account_id=alice.pk, state="queued").count() == 3


def test_importing_the_queue_does_not_import_torch() -> None:
    from fedisora.work.machines import PROVIDERS

    assert "render.queue:machines" in PROVIDERS
    code = (
        "import sys, json\n"
        "import render.queue, render.service, render.http, render.consent, render.cli\n"
        "import fedisora.work.machines as m\n"
        "from fedisora.config import Settings\n"
        "m.build_machines(Settings(), [p for p in m.PROVIDERS if p.startswith('render.')])\n"
        "heavy = ('torch', 'diffusers', 'transformers', 'av', 'c2pa')\n"
        "print(json.dumps([h for h in heavy if h in sys.modules]))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
