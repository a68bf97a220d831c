"""The RemoteMediaCheck machine: a remote clip's video, fetched once and its provenance checked.

Remote clips are played through the media proxy (:mod:`fedisora.federation.media_proxy`)
once this check has fetched their video. When one is stored, a :class:`RemoteMediaCheck`
row is created with it (:func:`request_check`); this machine downloads the video with
:meth:`PeerClient.download <fedisora.federation.http.PeerClient.download>` (SSRF guard,
pinned connections, a size limit, timeouts) into a temporary file, checks it and deletes
the file. The label lands in the media's ``provenance``: ``verified``, ``unverified`` or
``invalid`` with a short public reason (what a failed fetch met is logged, and kept in the
row's ``last_error`` while it is retried, never in the reason) and ``checked_at`` (the
rules are in :mod:`fedisora.federation.provenance_check`).

``pending`` -> ``verified`` | ``unverified`` | ``invalid`` (the label), or ``skipped`` when the
clip was deleted first, or its host's media is rejected by a domain block (nothing is fetched:
:mod:`fedisora.services.domain_blocks`; the peer client's guard refuses it too). Network
trouble (the peer is down, answers 5xx, times out) is retried
with exponential backoff for about a day, then the row is ``failed`` and the clip stays
``unverified``, saying why. A refused URL, a 4xx answer or a file over the limit is not
retried: the clip is ``unverified`` at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from tortoise.transactions import in_transaction

from fedisora.config import Settings
from fedisora.federation.context import get_federation
from fedisora.federation.hostcap import LocalHostCap
from fedisora.federation.http import (
    DownloadResult,
    FetchError,
    PeerClient,
    TooLarge,
    UnsafeURL,
)
from fedisora.federation.provenance_check import (
    CHECK_GAVE_UP,
    FETCH_FAILED,
    NO_C2PA_DATA,
    Expected,
    Label,
    Verdict,
    has_c2pa_box,
    judge_file,
    judge_manifest,
    origin_of,
    sha256_of_multibase,
)
from fedisora.federation.provenance_root import peer_roots
from fedisora.federation.rows import create_row
from fedisora.models import Account, Clip, MediaFile, RemoteMediaCheck, utcnow
from fedisora.outages import disk_full
from fedisora.services import domain_blocks, events
from fedisora.services.entity_versions import bump_media
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext
from fedisora.work.graph import State, StateGraph, exponential
from render.errors import ProvenanceError
from render.instance import trusted_roots
from render.provenance import ValidationState, VerificationResult, verify_mp4

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "MAX_REMOTE_VIDEO_BYTES",
    "REMOTE_MEDIA_GRAPH",
    "RETRY_SCHEDULE",
    "TooLarge",
    "download",
    "machines",
    "request_check",
]

log = logging.getLogger("fedisora.federation")

MAX_REMOTE_VIDEO_BYTES = 100 * 1024 * 1024
"""The largest remote video this instance accepts (and downloads to check): Loops' limit."""
DOWNLOAD_TIMEOUT = 300.0
"""Seconds for a whole download (each read has the PeerClient's own shorter timeout)."""
# Downloads per origin host at once, in this process. Deliberately not the deliveries' cap
# (fedisora.federation.hostcap): a download holds its slot for minutes, longer than that
# cap's Redis lease (sized for inbox POSTs), and would starve time-sensitive deliveries to a
# host; videos often come from a media host that is not the inbox's host anyway.
PER_HOST_DOWNLOADS = 2
HEARTBEAT_SECONDS = 15.0
DISK_FULL = "no room on this server's disk to download the clip for its check; tried again later"
RETRY_SCHEDULE = exponential(timedelta(minutes=1), 2.0, timedelta(hours=6), timedelta(days=1))
REMOTE_MEDIA_GRAPH = StateGraph(
    "remote_media_check",
    [
        State(
            "pending",
            to=("verified", "unverified", "invalid", "skipped"),
            retry=RETRY_SCHEDULE,
            max_attempts=len(RETRY_SCHEDULE) + 1,
        ),
        State("verified", terminal=True),
        State("unverified", terminal=True),
        State("invalid", terminal=True),
        State("skipped", terminal=True),
        State("failed", terminal=True),
    ],
    initial="pending",
    failed="failed",
)

_download_slots = LocalHostCap(PER_HOST_DOWNLOADS)  # per process; see PER_HOST_DOWNLOADS


async def request_check(media: MediaFile, clip_uri: str, author: Account) -> RemoteMediaCheck:
    """Queue the provenance check of a remote clip's video (*media*, just stored)."""
    row: RemoteMediaCheck = await create_row(
        RemoteMediaCheck,
        REMOTE_MEDIA_GRAPH.initial,
        media=media,
        clip_uri=clip_uri,
        url=media.remote_url or "",
        origin=origin_of(author.uri),
    )
    return row


# --- downloading -----------------------------------------------------------------------------


async def download(
    client: PeerClient,
    url: str,
    dest: Path,
    *,
    max_bytes: int = MAX_REMOTE_VIDEO_BYTES,
    total_timeout: float = DOWNLOAD_TIMEOUT,
    heartbeat: Callable[[], Awaitable[None]] | None = None,
) -> DownloadResult:
    """Download the video at *url* into *dest* (:meth:`PeerClient.download`, which raises
    :class:`TooLarge` past *max_bytes*, :class:`UnsafeURL` for a refused URL and
    :class:`FetchError` for anything else). *heartbeat* is awaited every
    :data:`HEARTBEAT_SECONDS` while bytes keep coming, so a long download keeps its lease."""
    beat_at = time.monotonic() + HEARTBEAT_SECONDS

    async def progress(size: int) -> None:
        nonlocal beat_at
        if heartbeat is not None and time.monotonic() > beat_at:
            await heartbeat()
            beat_at = time.monotonic() + HEARTBEAT_SECONDS

    return await client.download(
        url,
        dest,
        max_bytes=max_bytes,
        total_timeout=total_timeout,
        accept="video/*, */*;q=0.1",
        progress=progress if heartbeat is not None else None,
    )


def _permanent(exc: FetchError) -> bool:
    """Errors retrying will not fix: the label is decided now."""
    if isinstance(exc, UnsafeURL | TooLarge):
        return True
    return exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429)


# --- checking --------------------------------------------------------------------------------


def _details(result: VerificationResult) -> dict[str, Any]:
    details: dict[str, Any] = {
        "file_manifest_digest": result.manifest_digest,
        "signer": result.signer,
        "digital_source_type": result.digital_source_type,
    }
    if result.claim is not None:
        details["claim"] = result.claim.to_assertion()
    if result.failures:
        details["failures"] = list(result.failures)
    return details


async def _examine(
    client: PeerClient,
    row: RemoteMediaCheck,
    expected: Expected,
    settings: Settings,
    beat: Callable[[], Awaitable[None]],
) -> tuple[Verdict, dict[str, Any]]:
    """Download, check and delete the file; :class:`FetchError` when that cannot be done."""
    folder = settings.data_dir / "tmp" / "remote-media"
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    path = folder / f"{row.pk}-{uuid.uuid4().hex}.mp4"
    try:
        async with _download_slots.slot(origin_of(row.url)):
            got = await download(client, row.url, path, heartbeat=beat)
        # What was checked, so that the media proxy can tell a file changed since.
        fetched = {"file_size": got.size, "file_sha256": got.sha256_hex}
        mismatch = judge_file(got.size, got.sha256_hex, expected)
        if mismatch is not None:
            return mismatch, fetched
        # Not this instance's retired roots: those vouch only for its own clips.
        roots = await asyncio.to_thread(trusted_roots, settings, retired=False)
        origin_roots: str | None = None
        asked_at = peer_roots.clock()
        signed = await asyncio.to_thread(has_c2pa_box, path)
        if signed:
            origin_roots = await peer_roots.get(client, expected.author_uri)
        try:
            result = await asyncio.to_thread(verify_mp4, path, [*roots, origin_roots or ""])
            if signed and result.state is ValidationState.VALID:
                # Sound but not under the roots we had: if they came from the cache, the
                # origin may have replaced its root since. Ask it again (once per check).
                fresh = await peer_roots.get(client, expected.author_uri, fetched_since=asked_at)
                if fresh is not None and fresh != origin_roots:
                    result = await asyncio.to_thread(verify_mp4, path, [*roots, fresh])
        except ProvenanceError as exc:
            log.info("%s: %s (%s)", row.clip_uri, NO_C2PA_DATA, exc)
            label = Label.INVALID if expected.manifest_digest else Label.UNVERIFIED
            return Verdict(label, NO_C2PA_DATA), fetched
        return judge_manifest(result, expected), {**_details(result), **fetched}
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


async def _check(row: RemoteMediaCheck, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    media = await MediaFile.get_or_none(pk=row.media_id)
    clip = await Clip.get_or_none(uri=row.clip_uri)
    if media is None or media.account_id is None or (clip and clip.deleted_at is not None):
        return "skipped"
    if (await domain_blocks.policy(urlsplit(row.url).hostname or "", settings)).reject_media:
        return "skipped"  # its media is not fetched from that domain
    if importlib.util.find_spec("c2pa") is None:  # a web-only host: a render worker checks it
        return Retry("c2pa is not installed in this process", after=timedelta(hours=1))
    author = await Account.get(pk=media.account_id)
    before = dict(media.provenance or {})
    expected = Expected(
        origin=row.origin,
        author_uri=author.uri,
        manifest_digest=before.get("manifest_digest") or None,
        sha256_hex=sha256_of_multibase(before.get("digest_multibase")),
        size=media.size,
    )
    fed = get_federation(settings)
    try:
        # The lease is renewed while the download waits for its slot, the origin's roots
        # are fetched and the file is verified in a thread, not only while bytes come.
        async with ctx.keep_lease():
            verdict, details = await _examine(fed.client, row, expected, settings, ctx.heartbeat)
    except FetchError as exc:
        if not _permanent(exc):
            return Retry(str(exc))
        log.info("%s: %s: %s", row.clip_uri, FETCH_FAILED, exc)  # the why is not public
        verdict, details = Verdict(Label.UNVERIFIED, FETCH_FAILED), {}
    except OSError as exc:  # our disk, not the clip: tried again on the schedule
        if not disk_full(exc):
            raise
        log.warning("%s: no room to download the clip for its check: %s", row.clip_uri, exc)
        return Retry(DISK_FULL)
    provenance = {
        **before,
        **details,
        "state": verdict.label.value,
        "reason": verdict.reason[:500],
        "checked_at": utcnow().isoformat(),
    }
    # The event commits with the transition (the outer transaction): streams show the label.
    async with events.transaction(), ctx.transition(verdict.label.value) as conn:
        await MediaFile.filter(pk=media.pk).using_db(conn).update(provenance=provenance)
        await bump_media(media.pk, conn)  # the label its entity shows: cached ones go
        if clip is not None:
            await events.emit(conn, "clip.updated", clip.account_id, clip_id=clip.pk)
    log.info("%s: provenance %s (%s)", row.clip_uri, verdict.label.value, verdict.reason)
    return verdict.label.value


async def _on_transition(row: RemoteMediaCheck, source: str, target: str) -> None:
    """A check that gave up leaves the clip ``unverified``, saying why."""
    if target != REMOTE_MEDIA_GRAPH.failed:
        return
    media = await MediaFile.get_or_none(pk=row.media_id)
    if media is None:
        return
    provenance = {
        **(media.provenance or {}),
        "state": Label.UNVERIFIED.value,
        "reason": CHECK_GAVE_UP,  # the row's last_error says why, for the admin
        "checked_at": utcnow().isoformat(),
    }
    async with in_transaction() as conn:
        await MediaFile.filter(pk=media.pk).using_db(conn).update(provenance=provenance)
        await bump_media(media.pk, conn)


def machines(settings: Settings) -> list[Machine]:
    return [
        Machine(
            RemoteMediaCheck,
            REMOTE_MEDIA_GRAPH,
            {"pending": _check},
            on_transition=_on_transition,
        )
    ]
