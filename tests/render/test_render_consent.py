"""Cameo consent at every gate of the render queue: at request time, before rendering and
before publishing; the owner told of each use; revocation cancelling jobs; an owner removing
themselves from a clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from likenesses import verified_likeness

from fedisora.errors import Forbidden
from fedisora.models import (
    Cameo,
    Clip,
    ConsentCheck,
    LikenessGrant,
    LikenessUse,
    MediaFile,
    Notification,
    NotificationType,
    RenderJob,
)
from fedisora.services import likeness as svc
from fedisora.work.runner import InProcessRunner
from render.consent import check_cameo_consent
from render.errors import RenderLimitError
from render.provenance import verify_mp4
from render.service import publish_render, submit_render


def all_files(paths: Any) -> bool:
    return all(Path(p).is_file() for p in paths)


def any_exists(paths: Any) -> bool:
    return any(Path(p).exists() for p in paths)


async def drain(engine: Any) -> None:
    await InProcessRunner(engine, queues=("render",), concurrency=1).drain(60)


async def kinds(owner_id: int) -> list[str]:
    return [u.kind for u in await LikenessUse.filter(owner_id=owner_id).order_by("id")]


async def test_cameo_with_consent_renders_publishes_and_tells_the_owner(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    owner, bob = await local_account("owner"), await local_account("bob")
    await verified_likeness(owner, render_settings, audience="everyone")
    job = await submit_render(
        bob,
        {"prompt": "owner waving", "seconds": 0.5, "cameos": [owner.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    assert await kinds(owner.pk) == ["requested"]
    # The worker's check names the private reference images and the consent.
    decision = await check_cameo_consent(job, [owner.pk], publish=False, settings=render_settings)
    assert decision.allowed and len(decision.references) == 2
    assert all_files(decision.references)
    assert all(
        render_settings.media_root.resolve() not in Path(p).parents for p in decision.references
    )
    grant = await LikenessGrant.get(owner_id=owner.pk, grantee_id=bob.pk)
    assert decision.refs == (grant.uri,) and grant.basis == "policy"

    await drain(render_engine)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready", job.last_error
    assert job.spec["consent_refs"] == [grant.uri]
    media = await MediaFile.get(pk=job.output_id)
    report = verify_mp4(render_settings.media_root / media.file)
    assert report.claim is not None and report.claim.consent_refs == (grant.uri,)
    clip = await publish_render(bob, job, engine=render_engine)
    cameo = await Cameo.get(clip_id=clip.pk)
    assert cameo.account_id == owner.pk and cameo.consent_uri == grant.uri
    assert await kinds(owner.pk) == ["requested", "draft", "published"]
    notes = await Notification.filter(
        recipient_id=owner.pk, type=NotificationType.LIKENESS_USE
    ).order_by("id")
    assert len(notes) == 3 and notes[-1].clip_id == clip.pk
    assert all(n.from_account_id == bob.pk for n in notes)
    stages = [c.stage for c in await ConsentCheck.filter(owner_id=owner.pk).order_by("id")]
    assert stages[0] == "request" and "render" in stages and stages[-1] == "publish"

    # The owner removes themselves: the clip is deleted (its Delete goes out as usual).
    use = await LikenessUse.get(owner_id=owner.pk, kind="published")
    removed = await svc.remove_from_clip(owner, use.pk, engine=render_engine)
    assert removed.removed_at is not None
    assert (await Clip.get(pk=clip.pk)).deleted_at is not None


async def test_request_time_refusals_name_the_reason_and_store_no_job(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    owner, bob = await local_account("owner"), await local_account("bob")
    with pytest.raises(RenderLimitError, match="has not registered a likeness"):
        await submit_render(
            bob,
            {"prompt": "x", "seconds": 0.5, "cameos": [owner.pk]},
            settings=render_settings,
            engine=render_engine,
        )
    await verified_likeness(owner, render_settings)  # audience nobody
    with pytest.raises(RenderLimitError, match="lets nobody use"):
        await submit_render(
            bob,
            {"prompt": "x", "seconds": 0.5, "cameos": [owner.pk]},
            settings=render_settings,
            engine=render_engine,
        )
    assert await RenderJob.all().count() == 0
    # The owner is told of the refusal of their likeness (none to tell of before it existed).
    assert await kinds(owner.pk) == ["refused"]
    assert await ConsentCheck.filter(allowed=False).count() == 2


async def test_policy_narrowed_while_queued_fails_before_rendering(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    owner, carol = await local_account("owner"), await local_account("carol")
    await verified_likeness(owner, render_settings, audience="everyone")
    job = await submit_render(
        carol,
        {"prompt": "dance", "seconds": 0.5, "cameos": [owner.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    await svc.update_policy(owner, audience="me")
    await drain(render_engine)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "failed" and "cameo refused" in job.last_error
    assert job.gpu_seconds == 0 and job.output_id is None
    assert await kinds(owner.pk) == ["requested", "refused"]


async def test_drafts_only_renders_but_never_publishes(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    owner, dan = await local_account("owner"), await local_account("dan")
    await verified_likeness(owner, render_settings, audience="everyone", drafts_only=True)
    job = await submit_render(
        dan,
        {"prompt": "draft", "seconds": 0.5, "cameos": [owner.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    await drain(render_engine)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready", job.last_error
    with pytest.raises(Forbidden, match="drafts only"):
        await publish_render(dan, job, engine=render_engine)
    assert await Clip.all().count() == 0
    assert (await RenderJob.get(pk=job.pk)).state == "ready"
    assert await kinds(owner.pk) == ["requested", "draft", "refused"]


async def test_revoking_cancels_queued_jobs_and_takes_clips_down(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    owner, erin = await local_account("owner"), await local_account("erin")
    await verified_likeness(owner, render_settings, audience="approved")
    row = await svc.grant(owner, erin)
    first = await submit_render(
        erin,
        {"prompt": "one", "seconds": 0.5, "cameos": [owner.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    await drain(render_engine)
    clip = await publish_render(erin, await RenderJob.get(pk=first.pk), engine=render_engine)
    queued = await submit_render(
        erin,
        {"prompt": "two", "seconds": 0.5, "cameos": [owner.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    await svc.revoke_grant(owner, row.pk, take_down=True, engine=render_engine)
    queued = await RenderJob.get(pk=queued.pk)
    assert queued.state == "cancelled" and "revoked" in queued.last_error
    assert (await Clip.get(pk=clip.pk)).deleted_at is not None
    with pytest.raises(RenderLimitError, match="revoked"):
        await submit_render(
            erin,
            {"prompt": "three", "seconds": 0.5, "cameos": [owner.pk]},
            settings=render_settings,
            engine=render_engine,
        )


async def test_approval_required_serves_one_job(
    db: str, render_settings: Any, render_engine: Any
) -> None:
    owner, fay = await local_account("owner"), await local_account("fay")
    await verified_likeness(owner, render_settings, audience="everyone", approval_required=True)
    request = await svc.request_use(fay, owner)
    await svc.approve_request(owner, request.pk)
    spec = {"prompt": "once", "seconds": 0.5, "cameos": [owner.pk]}
    job = await submit_render(fay, spec, settings=render_settings, engine=render_engine)
    with pytest.raises(RenderLimitError, match="approval was for another use"):
        await submit_render(fay, spec, settings=render_settings, engine=render_engine)
    await drain(render_engine)
    assert (await RenderJob.get(pk=job.pk)).state == "ready"
