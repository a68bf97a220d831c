"""Clips' perceptual fingerprints: computing them, indexing them, and naming a copy's origin.

Every local clip with a video gets a :class:`~fedisora.models.Fingerprint` row in the clip's own
transaction (:func:`request`, from :func:`fedisora.services.posts.post_clip`), ``pending``; a
worker of the render queue (it has PyAV and ``pdqhash``) hashes the video
(:func:`render.fingerprint.fingerprint_file`) and moves it to ``done`` with its index rows in
one transaction. A video that does not decode is retried with backoff for a day, then the row is
``failed``; a deleted clip or a missing file is ``skipped``: publishing never waits. A public or
unlisted clip whose fingerprint lands after its ``Create`` went out federates it with an
``Update`` of its Note (``clip.updated``). Remote clips bring theirs (the ``fingerprint``
extension property of the video, see :mod:`activitypub.objects`), stored ``done`` when the clip
is received (:func:`store_received`).

The index: multi-index hashing (Norouzi, Punjani and Fleet, "Fast search in Hamming space
with multi-index hashing", 2012; the PDQ reference implementation's index does the same).
Each indexed 256-bit hash (every variant of every second sample, four a second) is cut into 8
chunks of 32 bits; one row per (chunk position, chunk value, fingerprint) goes into
``fingerprint_chunks`` (``key`` = position << 32 | chunk, a bigint) with a B-tree index on
``(key, fingerprint_id)``. By the pigeonhole principle a hash within Hamming distance 7 of a
query shares at least one chunk exactly, and in practice farther ones do (the copy of a clip
has many frames, each hashed as it is, mirrored and its top part, against several indexed
samples and variants). A lookup is one indexed equality query (``key = ANY(...)``) over at
most 8 x 96 keys (24 key frames of the query in 4 forms): its cost is the B-tree's depth per
key plus the rows it finds. With 16-bit chunks (migration 0037) each key also held about one
unrelated row per 65,536 indexed hashes, a number that grows with the corpus (the index query
took 3.4x as long at 1 M clips as at 10 k); with 32-bit chunks that is one per 4.3 billion,
so the rows found are the copy's own clip's, at any size (``bench/lookup.py`` prints the
plan and the rows read at both sizes). The price: a 32-bit chunk survives fewer changed bits,
so a copy whose every frame lies 60 or more bits from its clip's (the tiny test model's
64x112 renders after a 0.5x resize or CRF 28: a grey field whose PDQ bits flip at a third of
the positions) finds no key in common; at real output sizes the invisible watermark names
our own renders there. Candidates are ranked by chunk hits and the best :data:`CANDIDATES`
are aligned in full (:func:`render.fingerprint.align`). A copy whose watermark reads (with
our key) another of our renders' id is not taken for a render it merely looks like.

A lookup that finds nothing asks the instances whose fingerprints this one holds
(:mod:`fedisora.federation.peer_lookup`): their matches say ``via``.

Why not a BK-tree: its search visits a share of the tree that grows with the corpus at
the radii PDQ needs (distances of 30 to 80 bits between a copy and its source), it lives in
memory (rebuilt at each start, per process) and does not sit in the database that every
process shares. faiss' binary multi-index is the same idea in memory, with a dependency.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from activitypub.objects import FingerprintInfo
from fedisora import urls
from fedisora.boundary.limits import LOOKUP_VIDEO_LIMIT
from fedisora.config import Settings
from fedisora.errors import FedisoraError, Invalid
from fedisora.media_store import media_store
from fedisora.models import (
    Account,
    Clip,
    Fingerprint,
    FingerprintChunk,
    MediaFile,
    Visibility,
    utcnow,
)
from fedisora.services import events
from fedisora.services.visibility import can_see_clip
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext
from fedisora.work.graph import State, StateGraph, exponential

__all__ = [
    "CANDIDATES",
    "FINGERPRINT_GRAPH",
    "LOOKUP_SIZE_LIMIT",
    "Match",
    "NotAVideo",
    "Unavailable",
    "candidates_query",
    "federated",
    "index",
    "lookup_file",
    "lookup_fingerprint",
    "lookup_print",
    "lookup_upload",
    "machines",
    "request",
    "store_received",
    "wake",
]

log = logging.getLogger("fedisora.fingerprints")

LOOKUP_SIZE_LIMIT = LOOKUP_VIDEO_LIMIT
"""The largest copy a lookup accepts (Loops' limit for a video; the request boundary's too)."""
CANDIDATES = 32
"""Fingerprints aligned in full per lookup: those with the most chunk hits."""
RETRY_SCHEDULE = exponential(timedelta(minutes=1), 2.0, timedelta(hours=2), timedelta(days=1))
FINGERPRINT_GRAPH = StateGraph(
    "fingerprint",
    [
        State(
            "pending",
            to=("done", "skipped"),
            retry=RETRY_SCHEDULE,
            max_attempts=len(RETRY_SCHEDULE) + 1,
        ),
        State("done", terminal=True),
        State("skipped", terminal=True),
        State("failed", terminal=True),
    ],
    initial="pending",
    failed="failed",
)
_TRUST = {"trusted": 0, "verified": 1, "valid": 2, "unverified": 3, "invalid": 4}


class NotAVideo(Invalid):
    """The file looked up is not a video this server can decode (422)."""


class Unavailable(FedisoraError):
    """This server cannot decode video (a web-only install, without the render extra)."""

    status = 503


@dataclass(frozen=True)
class Match:
    """A clip a copy was found to be, as the lookup answers it."""

    url: str
    uri: str
    status_id: str | None
    """The clip's id here; None for a clip a peer named that this instance has not received."""
    instance: str
    author: str
    provenance: str
    """The original's C2PA provenance as checked here, or by the peer that named it."""
    score: float
    via: str | None = None
    """The peer that named it (a local lookup found nothing): its answer, not ours."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- storing


async def request(conn: BaseDBAsyncClient, clip: Clip) -> Fingerprint:
    """Queue the fingerprint of a local *clip* in its transaction *conn*."""
    now = utcnow()
    row: Fingerprint = await Fingerprint.create(
        clip_id=clip.pk,
        state=FINGERPRINT_GRAPH.initial,
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
        using_db=conn,
    )
    return row


async def wake(clip: Clip) -> None:
    """Wake a worker for the fingerprint of *clip*, queued in its committed transaction
    (without an engine in this process, the render queue's next sweep finds it)."""
    from fedisora.federation.rows import wake_row

    row = await Fingerprint.get_or_none(clip_id=clip.pk, state="pending")
    if row is not None:
        await wake_row(Fingerprint, row)


async def index(conn: BaseDBAsyncClient, fingerprint_id: int, hashes_hex: str) -> int:
    """(Re)write the index rows of a fingerprint from its hashes; returns how many."""
    from render.fingerprint import chunk_keys, hashes_from_hex, indexed_hashes

    await FingerprintChunk.filter(fingerprint_id=fingerprint_id).using_db(conn).delete()
    keys = chunk_keys(indexed_hashes(hashes_from_hex(hashes_hex)))
    if keys:
        await FingerprintChunk.bulk_create(
            [FingerprintChunk(key=k, fingerprint_id=fingerprint_id) for k in keys],
            batch_size=1000,
            using_db=conn,
        )
    return len(keys)


async def store_received(
    clip: Clip, fingerprint: FingerprintInfo | None, conn: BaseDBAsyncClient | None = None
) -> Fingerprint | None:
    """Store (or replace) the fingerprint a remote *clip* was received with, in *conn* if
    given; nothing when it came without one, with one made otherwise than ours (another
    rate or variants: not comparable), or with the same one again."""
    from render.fingerprint import RATE, VARIANTS, hashes_from_hex

    if fingerprint is None or fingerprint.frame_rate != RATE or fingerprint.variants != VARIANTS:
        return None
    hashes_hex = fingerprint.pdq_hashes
    try:
        hashes_from_hex(hashes_hex)
    except ValueError:
        return None
    from fedisora.services.events import transaction

    existing = await Fingerprint.get_or_none(clip_id=clip.pk, using_db=conn)
    if existing is not None and existing.hashes == hashes_hex and existing.state == "done":
        return existing

    async def write(c: BaseDBAsyncClient) -> Fingerprint:
        now = utcnow()
        if existing is None:
            row = await Fingerprint.create(
                clip_id=clip.pk,
                state="done",
                state_changed_at=now,
                created_at=now,
                hashes=hashes_hex,
                origin="remote",
                computed_at=now,
                using_db=c,
            )
        else:
            await (
                Fingerprint.filter(pk=existing.pk)
                .using_db(c)
                .update(state="done", state_changed_at=now, hashes=hashes_hex, computed_at=now)
            )
            row = existing
        await index(c, row.pk, hashes_hex)
        return row

    if conn is not None:
        return await write(conn)
    async with transaction() as c:
        return await write(c)


async def federated(clip: Clip) -> FingerprintInfo | None:
    """The fingerprint a clip's Note carries: a public or unlisted clip's, once computed."""
    from render.fingerprint import RATE, VARIANTS

    if clip.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        return None
    row = await Fingerprint.get_or_none(clip_id=clip.pk, state="done")
    if row is None or not row.hashes:
        return None
    return FingerprintInfo(pdq_hashes=row.hashes, frame_rate=RATE, variants=VARIANTS)


# --------------------------------------------------------------------------- the machine


async def _compute(row: Fingerprint, ctx: WorkContext) -> Outcome:
    from render.errors import ProbeError
    from render.fingerprint import fingerprint_file, hashes_to_hex
    from render.instance import watermark_key

    settings: Settings = ctx.engine.context["settings"]
    clip = await Clip.get_or_none(pk=row.clip_id)
    media = await MediaFile.get_or_none(pk=clip.media_id) if clip and clip.media_id else None
    key = media.file if media is not None and media.file else None
    if clip is None or clip.deleted_at is not None or key is None:
        await ctx.move("skipped", last_error="the clip or its video was deleted")
        return "skipped"
    try:
        async with ctx.keep_lease(), media_store(settings).local_copy(key) as path:
            printed = await asyncio.to_thread(
                fingerprint_file, path, watermark_key=watermark_key(settings)
            )
    except FileNotFoundError:  # nothing to hash (its row says a file)
        name = key.rsplit("/", 1)[-1]
        await ctx.move("skipped", last_error=f"the clip's video file {name} is missing")
        return "skipped"
    except ProbeError as exc:
        # Our own signed file should decode: a copy still arriving on a shared volume, a disk
        # error. Tried again on the retry schedule, then failed (the clip stays posted).
        return Retry(f"the video does not decode: {exc}")
    hashes = hashes_to_hex(printed.hashes)
    async with ctx.transition("done") as conn:
        await (
            Fingerprint.filter(pk=row.pk)
            .using_db(conn)
            .update(hashes=hashes, watermark_id=printed.watermark_id, computed_at=utcnow())
        )
        await index(conn, row.pk, hashes)
        if clip.local and clip.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
            # Its Create went out without it: an Update carries it to the same audience.
            await events.emit(
                conn, "clip.updated", clip.account_id, clip_id=clip.pk, fingerprint=True
            )
    return "done"


def machines(settings: Settings) -> list[Machine]:
    """The provider listed in ``fedisora.work.machines.PROVIDERS``: on the render queue,
    whose workers have the render extra (PyAV, pdqhash)."""
    return [
        Machine(
            Fingerprint,
            FINGERPRINT_GRAPH,
            {"pending": _compute},
            queue="render",
            transaction=events.transaction,
        )
    ]


# --------------------------------------------------------------------------- lookup


def _check_available() -> None:
    for module in ("av", "pdqhash"):
        if importlib.util.find_spec(module) is None:
            raise Unavailable(
                "this server cannot look up videos: it is installed without the render extra "
                f"({module} is missing)"
            )


def candidates_query(keys: list[int]) -> Any:
    """The index query: fingerprints sharing the most chunks with *keys*, best first (a
    queryset of (fingerprint_id, hits); ``bench/lookup.py`` explains it)."""
    return (
        FingerprintChunk.filter(key__in=keys)
        .annotate(hits=Count("id"))
        .group_by("fingerprint_id")
        .order_by("-hits", "fingerprint_id")
        .limit(CANDIDATES)
        .values_list("fingerprint_id", "hits")
    )


async def _candidates(keys: list[int]) -> list[int]:
    """Fingerprints sharing the most chunks with the query's keys, best first."""
    if not keys:
        return []
    return [int(fid) for fid, _ in await candidates_query(keys)]


def _instance(account: Account) -> str:
    return account.domain or urls.current().base.split("://", 1)[1]


async def _match(clip: Clip, score: float) -> Match | None:
    if not await can_see_clip(None, clip):
        return None
    author = await Account.get(pk=clip.account_id)
    media = await MediaFile.get_or_none(pk=clip.media_id) if clip.media_id else None
    provenance = str((media.provenance or {}).get("state", "unverified")) if media else "unknown"
    instance = _instance(author)
    return Match(
        url=clip.url or clip.uri,
        uri=clip.uri,
        status_id=str(clip.pk),
        instance=instance,
        author=f"{author.username}@{instance}",
        provenance=provenance,
        score=round(min(1.0, max(0.0, score)), 4),
    )


def _marked_otherwise(clip: Clip, mark: int | None) -> bool:
    """Whether the copy's watermark (read with our key) names another render than *clip*, one
    of ours: then it is not *clip*, however alike they look (renders of the tiny test model
    are a grey field under the same visible mark, a few grey levels apart)."""
    if mark is None or not clip.local or clip.render_job_id is None:
        return False
    return bool(clip.render_job_id % (1 << 32) != mark)


async def lookup_file(
    path: Path, settings: Settings, *, limit: int = 10, ask_peers: bool = True
) -> list[Match]:
    """The visible clips the video at *path* is a copy of, best first (empty: unknown). When
    none is known here and *ask_peers*, the instances this one holds fingerprints from are
    asked (:func:`fedisora.federation.peer_lookup.ask_peers`): their matches say ``via``.

    Raises :class:`NotAVideo` when *path* does not decode as a video."""
    from render.errors import ProbeError
    from render.fingerprint import query_file
    from render.instance import watermark_key

    _check_available()
    try:
        query = await asyncio.to_thread(query_file, path, watermark_key=watermark_key(settings))
    except ProbeError as exc:
        raise NotAVideo(f"the file is not a video this server can read ({exc})") from exc
    found = await lookup_print(query, limit=limit)
    if not found and ask_peers:
        from fedisora.federation.peer_lookup import ask_peers as ask

        found = await ask(query, settings, limit=limit)
    return found


async def lookup_fingerprint(value: Any) -> list[Match]:
    """A peer's question (:func:`render.fingerprint.query_to_json`): the clips known here
    that the copy it fingerprinted is, without asking further peers. ``Invalid`` (422) for
    anything else."""
    from render.fingerprint import query_from_json

    try:
        query = query_from_json(value)
    except ValueError as exc:
        raise Invalid(f"fingerprint: {exc}") from exc
    return await lookup_print(query)


async def lookup_print(query: Any, *, limit: int = 10) -> list[Match]:
    """The visible clips known here that the copy fingerprinted as *query* (a
    :class:`render.fingerprint.QueryPrint`) is, best first."""
    from render.fingerprint import (
        MATCH_SCORE,
        align,
        chunk_keys,
        hashes_from_hex,
        query_key_hashes,
    )

    scores: dict[int, float] = {}
    rows = await Fingerprint.filter(
        pk__in=await _candidates(chunk_keys(query_key_hashes(query))), state="done"
    ).only("id", "clip_id", "hashes")
    for row in rows:
        try:
            hashes = hashes_from_hex(row.hashes)
        except ValueError:
            continue
        alignment = align(query, hashes)
        if alignment.score >= MATCH_SCORE:
            scores[row.clip_id] = max(scores.get(row.clip_id, 0.0), alignment.score)
    if query.watermark_id is not None:
        # Our own mark, read with our key: the render job's id names the clip.
        jobs = [query.watermark_id + (k << 32) for k in range(4)]  # ids modulo 2**32
        for marked in await Clip.filter(local=True, render_job_id__in=jobs):
            scores[marked.pk] = max(scores.get(marked.pk, 0.0), query.watermark_confidence)
    found: list[tuple[tuple[float, int, Any], Match]] = []
    for clip in await Clip.filter(pk__in=list(scores)):
        if _marked_otherwise(clip, query.watermark_id):
            continue
        score = scores[clip.pk]
        match = await _match(clip, score)
        if match is not None:
            rank = (-round(score, 2), _TRUST.get(match.provenance, 9), clip.created_at)
            found.append((rank, match))
    found.sort(key=lambda item: item[0])
    return [m for _, m in found[:limit]]


async def lookup_upload(upload: UploadFile, settings: Settings) -> list[Match]:
    """:func:`lookup_file` for an uploaded file: over :data:`LOOKUP_SIZE_LIMIT` is 413."""
    from fedisora.services.uploads import TooLarge

    _check_available()
    with tempfile.TemporaryDirectory(prefix="fedisora-lookup-") as tmp:
        path = Path(tmp) / "copy"
        size = 0
        with path.open("wb") as out:
            while chunk := await upload.read(1024 * 1024):
                size += len(chunk)
                if size > LOOKUP_SIZE_LIMIT:
                    raise TooLarge(
                        f"the file is larger than {LOOKUP_SIZE_LIMIT // (1024 * 1024)} MB, "
                        "the limit for a lookup"
                    )
                out.write(chunk)
        if size == 0:
            raise NotAVideo("the file is empty: send the video to look up as the field 'file'")
        return await lookup_file(path, settings)
