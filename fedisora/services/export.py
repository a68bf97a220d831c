"""Exporting one's clips: a ZIP archive of every clip's video, byte for byte as rendered
here (its signed C2PA manifest and watermark intact, so each file still verifies), with an
index of captions, dates and links.

The archive is written while it is sent (``ZIP_STORED``: the videos are compressed already),
a chunk at a time, so an account with thousands of clips costs the server one chunk of
memory, not the archive.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fedisora import urls
from fedisora.config import Settings
from fedisora.media_store import media_store
from fedisora.models import Account, Clip, MediaFile

__all__ = ["export_clips", "export_name"]

CHUNK = 1024 * 1024
BATCH = 200
"""Clips read from the database at a time."""

README = """\
Your clips from {instance}, exported on {when} UTC.

clips/<id>.mp4   each clip's video exactly as this server rendered it: its C2PA manifest
                 (digitalSourceType trainedAlgorithmicMedia) is signed by this server and
                 its frames carry an invisible watermark. Check one with any C2PA tool,
                 for example `c2patool clips/<id>.mp4`; the certificate root of this
                 server's signatures is at {root}.
clips.json       one entry per clip: its caption, date, visibility, links, the clip it
                 remixes and the SHA-256 of its video file.
"""


class _Sink(io.RawIOBase):
    """Where the archive is written: keeps what was written since the last :meth:`take`.
    Not seekable, so :mod:`zipfile` writes data descriptors instead of seeking back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def export_name(account: Account, now: datetime) -> str:
    return f"{account.username}-clips-{now.strftime('%Y%m%d')}.zip"


def _entry(clip: Clip, media: MediaFile | None, file_name: str | None) -> dict[str, Any]:
    return {
        "id": str(clip.pk),
        "uri": clip.uri,
        "url": clip.url,
        "caption": clip.caption,
        "content_warning": clip.spoiler_text or None,
        "sensitive": clip.sensitive,
        "visibility": clip.visibility.value,
        "language": clip.language,
        "created_at": clip.created_at.isoformat(),
        "edited_at": clip.edited_at.isoformat() if clip.edited_at else None,
        "remix_of": clip.remix_of_uri,
        "file": file_name,
        "sha256": media.sha256 if media is not None and file_name else None,
        "duration": media.duration if media is not None else None,
        "description": media.description if media is not None else "",
    }


async def export_clips(account: Account, settings: Settings, now: datetime) -> AsyncIterator[bytes]:
    """The ZIP archive of *account*'s clips (not deleted ones), in chunks."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED)
    index: list[dict[str, Any]] = []
    root = f"{urls.current().base}/.well-known/fedisora/provenance-root.pem"
    readme = README.format(instance=settings.domain, when=now.strftime("%Y-%m-%d %H:%M"), root=root)
    archive.writestr("README.txt", readme)
    yield sink.take()
    last = 0
    while True:
        clips = (
            await Clip.filter(account_id=account.pk, local=True, deleted_at=None, id__gt=last)
            .order_by("id")
            .limit(BATCH)
        )
        if not clips:
            break
        last = clips[-1].pk
        media_ids = [c.media_id for c in clips if c.media_id is not None]
        media = {m.pk: m for m in await MediaFile.filter(pk__in=media_ids)}
        for clip in clips:
            row = media.get(clip.media_id) if clip.media_id is not None else None
            name = None
            if row is not None and row.file:
                store = media_store(settings)
                chunks = store.stream(row.file)
                try:
                    first: bytes | None = await anext(chunks, b"")
                except OSError:
                    first = None  # the file is gone: listed in the index without it
                if first is not None:
                    name = f"clips/{clip.pk}.mp4"
                    with archive.open(name, "w", force_zip64=True) as target:
                        target.write(first)
                        yield sink.take()
                        async for chunk in chunks:
                            target.write(chunk)
                            yield sink.take()
                await chunks.aclose()
            index.append(_entry(clip, row, name))
            yield sink.take()
    archive.writestr("clips.json", json.dumps({"account": account.uri, "clips": index}, indent=2))
    archive.close()
    yield sink.take()
