"""Collection of media no clip holds (the ``media_gc`` chore): old unattached uploads and
renders go with their files; posted clips, drafts and young media stay; the removal is fenced
against a clip taking the media at the same moment."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from chores import Clock, engine_for, run_chore
from factories import local_account, rendered_video
from tortoise.transactions import in_transaction

from fedisora.config import Settings, load_settings
from fedisora.errors import Invalid
from fedisora.models import Account, Clip, MediaFile, MediaKind, RenderJob
from fedisora.services import media_gc, posts, retention
from fedisora.services.media_gc import attach_media
from fedisora.work.housekeeping import ensure_chores

DAY = timedelta(hours=25)  # past MEDIA_UNATTACHED_HOURS (24)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
        }
    )


async def video(settings: Settings, owner: Account) -> MediaFile:
    """A rendered video with its file and poster on disk."""
    media = await rendered_video(owner)
    media.poster_file = f"{media.file}.jpg"
    await media.save()
    for rel in (media.file, media.poster_file):
        assert rel is not None
        path = settings.media_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 100)
    return media


def on_disk(settings: Settings, media: MediaFile) -> bool:
    files = [settings.media_root / rel for rel in (media.file, media.poster_file) if rel]
    present = {p.exists() for p in files}
    assert len(present) == 1, "a media's files go together"
    return present.pop()


async def test_old_unattached_media_goes_and_what_is_needed_stays(
    db: str, settings: Settings
) -> None:
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    ann = await local_account("ann")
    upload = await video(settings, ann)  # uploaded, never posted
    posted = await video(settings, ann)
    draft = await video(settings, ann)  # a render ready to publish, however old
    deleted = await video(settings, ann)  # its clip was deleted
    clip = await posts.post_clip(ann, posted)
    gone = await posts.post_clip(ann, deleted)
    await posts.delete_clip(ann, gone)
    await RenderJob.create(account=ann, state="ready", output=draft, spec={})
    await MediaFile.create(
        account=ann, kind=MediaKind.IMAGE, file="uploads/still.png", content_type="image/png"
    )
    (settings.media_root / "uploads").mkdir(parents=True)
    (settings.media_root / "uploads/still.png").write_bytes(b"png")

    clock.passed = timedelta(hours=23)
    await run_chore(engine, "media_gc")
    assert await MediaFile.all().count() == 5  # none is a day old yet

    clock.passed = DAY
    chore = await run_chore(engine, "media_gc")
    assert chore.progress["last"]["counts"] == {"media_removed": 3}
    left = {m.pk for m in await MediaFile.all()}
    assert left == {posted.pk, draft.pk}
    assert on_disk(settings, posted) and on_disk(settings, draft)
    assert not on_disk(settings, upload) and not on_disk(settings, deleted)
    assert not (settings.media_root / "uploads/still.png").exists()
    assert (await Clip.get(pk=clip.pk)).media_id == posted.pk


async def test_media_being_removed_cannot_be_posted(db: str, settings: Settings) -> None:
    ann = await local_account("ann")
    media = await video(settings, ann)
    await MediaFile.filter(pk=media.pk).update(doomed_at=media.created_at)
    with pytest.raises(Invalid, match="removed"):
        await posts.post_clip(ann, media)
    assert not await Clip.exists()  # the clip's transaction rolled back


async def test_the_removal_is_fenced_against_a_concurrent_post(db: str, settings: Settings) -> None:
    """A clip takes old unattached media while the collection runs: the collection waits for
    the clip's transaction (PostgreSQL: the media row's lock) and then leaves the media."""
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    ann = await local_account("ann")
    media = await video(settings, ann)
    clock.passed = DAY
    attached = asyncio.Event()

    async def collect() -> None:
        await attached.wait()
        await run_chore(engine, "media_gc")

    # Started outside the transaction, so that it does not run its queries in it.
    collecting = asyncio.create_task(collect())
    async with in_transaction() as conn:
        await attach_media(media.pk, conn)  # the first statement of storing a clip
        attached.set()
        await asyncio.sleep(0.5)
        if db.startswith("postgres"):  # waiting on the row the post holds
            assert not collecting.done()
        clip = Clip(account=ann, uri="https://fedisora.test/c/1", media=media)
        await clip.save(using_db=conn, force_create=True)
    await collecting
    assert await MediaFile.exists(pk=media.pk)
    assert on_disk(settings, media)
    assert (await Clip.get(pk=clip.pk)).media_id == media.pk


async def test_a_pass_is_walked_in_bounded_steps(
    db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media_gc, "BATCH", 2)
    monkeypatch.setattr(retention, "BATCH", 2)
    clock = Clock()
    engine = engine_for(settings, clock)
    await ensure_chores()
    ann = await local_account("ann")
    kept = await video(settings, ann)
    await posts.post_clip(ann, kept)
    for _ in range(4):
        await video(settings, ann)
    clock.passed = DAY
    left = []
    for _ in range(4):
        await run_chore(engine, "media_gc")
        left.append(await MediaFile.all().count())
    # Two rows examined a step (the posted one is not a candidate): the pass ends at step 3.
    assert left == [3, 1, 1, 1]
