"""``fedisora media migrate --to s3``: an instance's media files, from local disk into its S3
bucket, each verified by checksum; resumable.

Every file under ``media_root`` (scratch work and temporary names left out) is uploaded under
its key, read back and hashed: only an object whose SHA-256 matches the file's counts as
moved, and is written to the journal (``<media_root>/.media-migrate.journal``, one
``key sha256`` line each, flushed as it goes). A run that is interrupted (killed, the store
unreachable) loses nothing: the local files stay until every one of them is in the bucket,
and the next run skips what the journal (and the bucket) already hold, verified again
against the bucket's size. Only when all files are in, the local copies are removed (unless
``--keep-local``), then the journal. The instance then runs with
``FEDISORA_MEDIA_BACKEND=s3``; media written by a still-running local instance meanwhile is
picked up by running the command again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fedisora.media_store import LocalStore, MediaStore, MediaStoreError, sha256_of

__all__ = ["JOURNAL", "MigrateError", "Migration", "migrate_media"]

JOURNAL = ".media-migrate.journal"


class MigrateError(Exception):
    """The migration stopped; the message says why and what was kept."""


@dataclass
class Migration:
    total: int = 0
    copied: int = 0
    already: int = 0  # in the bucket from an earlier run (verified)
    removed: int = 0
    bytes: int = 0


def _read_journal(path: Path) -> dict[str, str]:
    done: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, digest = line.rpartition(" ")
            if key and len(digest) == 64:  # a line cut by a kill is ignored
                done[key] = digest
    return done


async def migrate_media(
    source: LocalStore,
    target: MediaStore,
    *,
    keep_local: bool = False,
    say: Callable[[str], None] = print,
) -> Migration:
    """Move every file of *source* into *target* (see the module docstring)."""
    journal_path = source.root / JOURNAL
    done = await asyncio.to_thread(_read_journal, journal_path)
    keys = [k async for k in source.keys()]
    result = Migration(total=len(keys))
    if done:
        say(f"resuming: {len(done)} files were moved by an earlier run")
    journal = await asyncio.to_thread(open, journal_path, "a", encoding="utf-8")
    try:
        for number, key in enumerate(keys, 1):
            path = source.path(key)
            digest, size = await asyncio.to_thread(_digest_and_size, path)
            try:
                info = await target.info(key)
                if info is not None and info.size == size and done.get(key) == digest:
                    result.already += 1  # moved and verified by an earlier run
                    continue
                if not (info is not None and info.size == size and info.sha256 == digest):
                    await target.put_file(key, path, consume=False)
                    result.copied += 1
                    result.bytes += size
                else:
                    result.already += 1  # uploaded by a run killed before its journal line
                read_back = await target.checksum(key)
            except MediaStoreError as exc:
                raise MigrateError(
                    f"{exc.detail}\nstopped after {number - 1} of {len(keys)} files; nothing was "
                    "removed from local disk. Run the same command again to go on."
                ) from exc
            if read_back != digest:
                raise MigrateError(
                    f"{key}: the object in the bucket does not match the file (SHA-256 "
                    f"{read_back} instead of {digest}); nothing was removed from local disk. "
                    "Run the same command again to upload it anew."
                )
            await asyncio.to_thread(_append, journal, f"{key} {digest}\n")
            done[key] = digest
            say(f"{number}/{len(keys)} {key} ({size:,} bytes) verified")
    finally:
        journal.close()
    if not keep_local:
        for key in keys:
            await source.delete([key])
            result.removed += 1
    await asyncio.to_thread(journal_path.unlink, missing_ok=True)
    return result


def _digest_and_size(path: Path) -> tuple[str, int]:
    return sha256_of(path), path.stat().st_size


def _append(journal: TextIO, line: str) -> None:
    journal.write(line)
    journal.flush()
    os.fsync(journal.fileno())
