"""Media uploads (``POST /api/v1/media``, ``/api/v2/media``), ``GET``/``PUT /api/v1/media/:id``
and the ``/media/...`` file server.

fedisora is AI-only: every clip is rendered by a fedisora render queue. Uploads are therefore
limited to two kinds of file, recognised by their bytes (never by the declared content type):

- a JPEG, PNG or WebP **image**, decoded completely with Pillow, as the input still of an
  image-to-video render. A clean copy without metadata (EXIF location and the like) is kept;
  the attachment has Mastodon's type ``image``. Images are never posted as statuses.
- an MP4 **video** that carries a C2PA manifest from a fedisora render queue whose chain ends
  at a root this instance trusts (its own, or one an admin installed). Anything else that looks
  like a video is refused with 422 and an error naming the AI-only rule.

Everything else (audio, documents, unknown bytes, an empty file) is 422; a file over the size
limits the instance advertises is 413. Uploads are processed synchronously, so both API versions
answer 200 with the finished attachment. A full disk answers 507 and leaves no file and no row.
The checks and storing are :func:`fedisora.services.uploads.store_upload`, which the web's
create form calls too.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.transactions import in_transaction

from fedisora.api.entities import media_entity
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.config import Settings
from fedisora.errors import Invalid, NotFound
from fedisora.media_store import MediaStore, MediaStoreError, check_key, media_store
from fedisora.models import MediaFile, MediaKind
from fedisora.services.entity_versions import bump_media
from fedisora.services.uploads import (
    AI_ONLY_RULE,
    MIN_IMAGE_SIDE,
    TooLarge,
    discard,
    store_image,
    store_upload,
)

__all__ = [
    "AI_ONLY_RULE",
    "DESCRIPTION_LIMIT",
    "MIN_IMAGE_SIDE",
    "MediaFiles",
    "StoredMedia",
    "TooLarge",
    "discard",
    "media_files",
    "parse_focus",
    "routes",
    "store_image",
]

log = logging.getLogger(__name__)

DESCRIPTION_LIMIT = 1500
# Hidden names are temporary files (``atomic_path``); ``render-work`` holds unfinished renders.
_PRIVATE_TOP = ("render-work",)

# --------------------------------------------------------------------------- parameters


def parse_focus(raw: str | None) -> dict[str, float] | None:
    """Mastodon's focal point ``"x,y"`` with both in [-1, 1]; None when absent."""
    if raw is None or not raw.strip():
        return None
    parts = raw.split(",")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise Invalid('focus must be two numbers between -1.0 and 1.0, as "x,y"') from None
    if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in (x, y)):
        raise Invalid('focus must be two numbers between -1.0 and 1.0, as "x,y"')
    return {"x": x, "y": y}


def _description(ctx: Ctx) -> str | None:
    return ctx.params.text("description", max_length=DESCRIPTION_LIMIT)


def _upload(ctx: Ctx) -> UploadFile:
    value = ctx.params.raw("file")
    if not isinstance(value, UploadFile):
        raise Invalid("file is required: send the media as multipart/form-data field 'file'")
    return value


# --------------------------------------------------------------------------- entities


def _entity(media: MediaFile) -> dict[str, Any]:
    data = media_entity(media)
    focus = (media.provenance or {}).get("focus")
    if isinstance(focus, dict):
        data["meta"]["focus"] = focus
    if media.kind == MediaKind.IMAGE:
        data["meta"]["fedisora"] = {"ai_generated": False, "provenance": "input_still"}
    return data


async def _mine(ctx: Ctx) -> MediaFile:
    media_id = ctx.path_id()
    media = await MediaFile.get_or_none(pk=media_id) if media_id >= 0 else None
    if media is None or media.account_id != ctx.me.pk:
        raise NotFound("Record not found")
    return media


# --------------------------------------------------------------------------- endpoints


@endpoint("write", "write:media", user=True)
async def upload(ctx: Ctx) -> Response:
    """``POST /api/v1/media`` and ``/api/v2/media``: an input still or a signed clip
    (:func:`fedisora.services.uploads.store_upload`)."""
    upload_file = _upload(ctx)
    description = _description(ctx)
    focus = parse_focus(ctx.params.text("focus"))
    media = await store_upload(
        ctx.me, upload_file, ctx.settings, description=description or "", focus=focus
    )
    return json(_entity(media))


@endpoint("write", "write:media", user=True)
async def get_one(ctx: Ctx) -> Response:
    """``GET /api/v1/media/:id``: one of the caller's attachments (404 for anyone else's)."""
    return json(_entity(await _mine(ctx)))


@endpoint("write", "write:media", user=True)
async def update(ctx: Ctx) -> Response:
    """``PUT /api/v1/media/:id``: change the description or focal point."""
    media = await _mine(ctx)
    changes: dict[str, Any] = {}
    if "description" in ctx.params:
        changes["description"] = _description(ctx) or ""
    if "focus" in ctx.params:
        focus = parse_focus(ctx.params.text("focus"))
        provenance = {k: v for k, v in (media.provenance or {}).items() if k != "focus"}
        if focus is not None:
            provenance["focus"] = focus
        changes["provenance"] = provenance
    if changes:
        async with in_transaction() as conn:
            await MediaFile.filter(pk=media.pk).using_db(conn).update(**changes)
            await bump_media(media.pk, conn)  # a clip showing it: its cached entity goes
        media = await MediaFile.get(pk=media.pk)
    return json(_entity(media))


# --------------------------------------------------------------------------- serving files


class MediaFiles(StaticFiles):
    """``/media/...``: files under ``media_root`` with Range support (starlette's
    ``FileResponse``), except unfinished renders and temporary files, which are not public."""

    def get_path(self, scope: Scope) -> str:
        path: str = super().get_path(scope)
        parts = Path(path).parts
        if not parts or parts[0] in _PRIVATE_TOP or any(p.startswith(".") for p in parts):
            raise HTTPException(status_code=404)
        return path


class StoredMedia:
    """``/media/<key>`` from a media store other than local disk (S3), as
    ``FEDISORA_S3_SERVE`` says: ``proxy`` streams the object through this server (with
    single-range ``Range`` requests, for video players), ``redirect`` answers 307 to a
    presigned URL of the object, ``public`` 301 to its public URL (links are given out with
    that URL already; this serves links handed out before). Scratch work and temporary names
    are never served; an unreachable store is a 503 with a JSON error."""

    def __init__(self, store: MediaStore, mode: str) -> None:
        self.store, self.mode = store, mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(scope)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", 405, headers={"Allow": "GET, HEAD"})
        path, root = scope["path"], scope.get("root_path", "")
        route = path[len(root) :] if root and path.startswith(root) else path
        try:
            key = check_key(route.lstrip("/"))
        except ValueError:
            return PlainTextResponse("Not Found", 404)
        try:
            if self.mode == "public" and (url := self.store.public_url(key)):
                return RedirectResponse(url, 301)
            if self.mode == "redirect" and (url := await self.store.signed_url(key)):
                return RedirectResponse(url, 307, headers={"Cache-Control": "no-store"})
            info = await self.store.info(key)
        except MediaStoreError as exc:
            log.warning("/media/%s: %s", key, exc.detail)
            return JSONResponse({"error": "the media store cannot be reached; try again"}, 503)
        if info is None:
            return PlainTextResponse("Not Found", 404)
        headers = {"Accept-Ranges": "bytes", "Content-Type": info.content_type}
        if info.etag:
            headers["ETag"] = info.etag
        start, end, status = 0, info.size, 200
        wanted = _byte_range(Headers(scope=scope).get("range"), info.size)
        if isinstance(wanted, str):  # unsatisfiable
            return Response(status_code=416, headers={"Content-Range": f"bytes */{info.size}"})
        if wanted is not None:
            start, end, status = wanted[0], wanted[1], 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        headers["Content-Length"] = str(end - start)
        if method == "HEAD" or end == start:
            return Response(status_code=status, headers=headers)
        return StreamingResponse(self.store.stream(key, start, end), status, headers=headers)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(raw: str | None, size: int) -> tuple[int, int] | str | None:
    """``[start, end)`` of a single ``Range: bytes=...`` on an object of *size* bytes; None to
    send it whole (no range, several, or one we do not read), "unsatisfiable" for a 416."""
    match = _RANGE.match((raw or "").strip())
    if match is None or match.group(0) == "bytes=-":
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
        if last and int(last) < start:
            return None
    if start >= size or (first == "" and int(last) == 0):
        return "unsatisfiable"
    return start, end


def media_files(settings: Settings) -> ASGIApp:
    """The ASGI app to mount at ``/media``: the media root's files for the local store (as
    always), else :class:`StoredMedia`."""
    store = media_store(settings)
    if store.backend == "local":
        return MediaFiles(directory=settings.media_root, check_dir=False)
    return StoredMedia(store, settings.s3_serve)


def routes() -> list[BaseRoute]:
    return [
        *api_route("/api/v1/media", upload, ["POST"]),
        *api_route("/api/v2/media", upload, ["POST"]),
        *api_route("/api/v1/media/{id}", get_one, ["GET"]),
        *api_route("/api/v1/media/{id}", update, ["PUT"]),
    ]
