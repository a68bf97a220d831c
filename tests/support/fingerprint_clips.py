"""A posted clip whose fingerprint is computed and indexed, for the lookup's API, page and
CLI tests (the worker's own path is tested in tests/fedisora/test_fingerprints.py)."""

from __future__ import annotations

from pathlib import Path

from benchlookup import encode, synthetic_clip
from factories import local_account, rendered_video
from tortoise.transactions import in_transaction

from fedisora.models import Clip, Fingerprint
from fedisora.services import fingerprints, posts
from render.fingerprint import fingerprint_file, hashes_to_hex


async def fingerprinted_clip(username: str, seed: int, folder: Path) -> tuple[Clip, Path]:
    """A public clip by a new local account *username*, its video (a moving pattern made
    from *seed*) written to *folder*, its fingerprint done and indexed."""
    account = await local_account(username)
    media = await rendered_video(account)
    frames, fps = synthetic_clip(seed)
    video = encode(frames, folder / f"{username}.mp4", fps)
    clip = await posts.post_clip(account, media, caption="a clip")
    hashes = hashes_to_hex(fingerprint_file(video).hashes)
    row = await Fingerprint.get(clip_id=clip.pk)
    async with in_transaction() as conn:
        await Fingerprint.filter(pk=row.pk).using_db(conn).update(state="done", hashes=hashes)
        await fingerprints.index(conn, row.pk, hashes)
    return clip, video
