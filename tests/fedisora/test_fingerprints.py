"""Clips' fingerprints (fedisora.services.fingerprints): queued with the clip, computed by the
render queue's worker as durable work (retried, never blocking the post), indexed, federated
by an Update, and found again from a transformed copy; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from benchlookup import encode, synthetic_clip, transform_file
from factories import local_account, rendered_video

from fedisora.config import Settings, load_settings
from fedisora.models import (
    Clip,
    Fingerprint,
    FingerprintChunk,
    MediaFile,
    OutboxEvent,
    Visibility,
    utcnow,
)
from fedisora.services import fingerprints, posts
from fedisora.work import Engine
from render.fingerprint import INDEX_EVERY, VARIANTS, chunk_keys, hashes_from_hex


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
        }
    )


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return Engine(
        fingerprints.machines(settings),
        lease=timedelta(seconds=30),
        context={"settings": settings},
    )


async def _posted(
    settings: Settings, username: str, seed: int, visibility: str = "public"
) -> tuple[Clip, Path]:
    """A clip of *username*'s whose video is a real MP4 (a moving pattern)."""
    account = await local_account(username)
    media = await rendered_video(account)
    video = settings.media_root / str(media.file)
    video.parent.mkdir(parents=True, exist_ok=True)
    frames, fps = synthetic_clip(seed)
    encode(frames, video, fps)
    clip = await posts.post_clip(account, media, caption="waves", visibility=visibility)
    return clip, video


async def test_published_clip_is_fingerprinted_indexed_and_federated(
    db: str, settings: Settings, engine: Engine
) -> None:
    clip, _ = await _posted(settings, "alice", 21)
    row = await Fingerprint.get(clip_id=clip.pk)
    assert (row.state, row.hashes, row.origin) == ("pending", "", "local")  # the post waits not

    assert await engine.advance("fingerprints", row.pk) == "moved"
    row = await Fingerprint.get(pk=row.pk)
    assert row.state == "done" and row.computed_at is not None
    hashes = hashes_from_hex(row.hashes)
    assert hashes.shape[1:] == (VARIANTS, 32) and len(hashes) >= 20  # 3 s or more at 8 per s
    keys = await FingerprintChunk.filter(fingerprint_id=row.pk).values_list("key", flat=True)
    assert sorted(keys) == chunk_keys(hashes[::INDEX_EVERY])
    # Its Create went out before: an Update carries the fingerprint to the same audience.
    updates = await OutboxEvent.filter(kind="clip.updated").values_list("data", flat=True)
    assert [d.get("fingerprint") for d in updates] == [True]


async def test_lookup_names_the_clip_of_a_transformed_copy(
    db: str, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    clip, video = await _posted(settings, "bob", 22)
    other, _ = await _posted(settings, "carol", 23)
    hidden, hidden_video = await _posted(settings, "dave", 24, visibility="private")
    for c in (clip, other, hidden):
        assert await engine.advance("fingerprints", (await Fingerprint.get(clip_id=c.pk)).pk)

    for name in ("mirror", "trim", "resize"):
        copy = transform_file(video, tmp_path / f"{name}.mp4", name, seed=2)
        matches = await fingerprints.lookup_file(copy, settings)
        assert [m.status_id for m in matches] == [str(clip.pk)], name
        found = matches[0]
        assert found.uri == clip.uri and found.url == clip.url
        assert (found.author, found.instance) == ("bob@fedisora.test", "fedisora.test")
        assert found.provenance == "trusted" and 0.35 <= found.score <= 1

    # A private clip is never named to a stranger, and an unknown clip is not known.
    assert await fingerprints.lookup_file(hidden_video, settings) == []
    frames, fps = synthetic_clip(999)
    unknown = encode(frames, tmp_path / "unknown.mp4", fps)
    assert await fingerprints.lookup_file(unknown, settings) == []
    # A deleted clip is not named either.
    await posts.delete_clip(await clip.account, await Clip.get(pk=clip.pk))
    assert await fingerprints.lookup_file(video, settings) == []

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(fingerprints.NotAVideo) as refused:
        await fingerprints.lookup_file(junk, settings)
    assert refused.value.status == 422


async def test_a_failed_computation_is_retried_and_then_done(
    db: str, settings: Settings, engine: Engine
) -> None:
    clip, video = await _posted(settings, "erin", 25)
    row = await Fingerprint.get(clip_id=clip.pk)
    kept = video.read_bytes()
    video.write_bytes(kept[: len(kept) // 3])  # a copy still arriving on a shared volume
    assert await engine.advance("fingerprints", row.pk) == "retry"
    row = await Fingerprint.get(pk=row.pk)
    assert row.state == "pending" and row.attempts == 1
    assert row.last_error.startswith("the video does not decode")
    assert row.next_attempt_at is not None and row.next_attempt_at > utcnow()
    assert await Clip.filter(pk=clip.pk, deleted_at=None).exists()  # posted all the same

    video.write_bytes(kept)
    await Fingerprint.filter(pk=row.pk).update(next_attempt_at=utcnow())
    assert await engine.advance("fingerprints", row.pk) == "moved"
    assert (await Fingerprint.get(pk=row.pk)).state == "done"


async def test_a_deleted_clip_or_a_missing_file_is_skipped(
    db: str, settings: Settings, engine: Engine
) -> None:
    clip, _ = await _posted(settings, "frank", 26)
    account = await clip.account
    await posts.delete_clip(account, clip)
    row = await Fingerprint.get(clip_id=clip.pk)
    assert await engine.advance("fingerprints", row.pk) == "moved"
    assert (await Fingerprint.get(pk=row.pk)).state == "skipped"

    other, video = await _posted(settings, "gina", 28)
    video.unlink()
    row = await Fingerprint.get(clip_id=other.pk)
    assert await engine.advance("fingerprints", row.pk) == "moved"
    row = await Fingerprint.get(pk=row.pk)
    assert row.state == "skipped" and "missing" in row.last_error


async def test_only_public_and_unlisted_fingerprints_federate(
    db: str, settings: Settings, engine: Engine
) -> None:
    from fedisora.federation.render import clip_note

    shown: dict[str, Any] = {}
    for visibility in (Visibility.PUBLIC, Visibility.UNLISTED, Visibility.FOLLOWERS):
        clip, _ = await _posted(settings, f"v{visibility.value}", 27, visibility.value)
        row = await Fingerprint.get(clip_id=clip.pk)
        note = await clip_note(clip)
        assert "fingerprint" not in note["attachment"][0]  # not computed yet
        await engine.advance("fingerprints", row.pk)
        note = await clip_note(await Clip.get(pk=clip.pk))
        shown[visibility.value] = note["attachment"][0].get("fingerprint")
        hashes = (await Fingerprint.get(pk=row.pk)).hashes
        if visibility != Visibility.FOLLOWERS:
            assert shown[visibility.value] == {
                "type": "VideoFingerprint",
                "frameRate": 8.0,
                "variants": VARIANTS,
                "pdqHashes": hashes,
            }
            terms = note["@context"][1]
            for term in ("VideoFingerprint", "fingerprint", "frameRate", "variants", "pdqHashes"):
                assert terms[term] == f"fedisora:{term}"
    assert shown["private"] is None
    assert (await MediaFile.all().count()) == 3
