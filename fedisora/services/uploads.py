"""Storing uploaded media: the one path from an uploaded file to a :class:`MediaFile` row.

The API's ``POST /api/v1/media`` and ``/api/v2/media`` and the web's create form
(:mod:`web.create`, the still of an image-to-video render) both call :func:`store_upload`.

fedisora is AI-only: an upload is either a JPEG, PNG or WebP **image** (decoded completely
with Pillow; a clean copy without metadata is kept), the input still of an image-to-video
render, or an MP4 **video** carrying a C2PA manifest from a fedisora render queue whose chain
ends at a root this instance trusts. Anything else is refused (:class:`Invalid`, 422); a file
over the size limits is :class:`TooLarge` (413). A full disk leaves no file and no row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile

from fedisora import ratelimits
from fedisora.api.instance import (
    IMAGE_MATRIX_LIMIT,
    IMAGE_SIZE_LIMIT,
    VIDEO_FRAME_RATE_LIMIT,
    VIDEO_MATRIX_LIMIT,
    VIDEO_SIZE_LIMIT,
)
from fedisora.config import Settings
from fedisora.errors import FedisoraError, Invalid
from fedisora.media_store import MediaStoreError, media_store
from fedisora.models import Account, MediaFile, MediaKind
from fedisora.outages import disk_space

__all__ = [
    "AI_ONLY_RULE",
    "MIN_IMAGE_SIDE",
    "StoredUpload",
    "TooLarge",
    "discard",
    "read_capped",
    "store_image",
    "store_upload",
]

MIN_IMAGE_SIDE = 16  # what the render queue needs of an input still
_PREVIEW_SIDE = 400
_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
AI_ONLY_RULE = (
    "fedisora only accepts AI-generated clips: every video must be rendered by a fedisora "
    "render queue and carry its signed C2PA provenance manifest from an instance this server "
    "trusts (AI-only rule). Render a clip with POST /api/fedisora/v1/renders instead"
)


class TooLarge(FedisoraError):
    status = 413


@dataclass(frozen=True)
class StoredUpload:
    """What an accepted upload left under ``media_root``: the MediaFile's values."""

    values: dict[str, Any]


async def read_capped(upload: UploadFile, cap: int) -> bytes:
    data = await upload.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(f"the file is larger than {cap // (1024 * 1024)} MB, the limit for uploads")
    return data


# --------------------------------------------------------------------------- sniffing


def _looks_like_video(data: bytes, declared: str) -> bool:
    if data[4:8] == b"ftyp":  # ISO BMFF (MP4, MOV, 3GP, HEIF is caught as an image first)
        return True
    if data[:4] == b"\x1a\x45\xdf\xa3":  # Matroska / WebM
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return True
    if data[:4] == b"FLV\x01":
        return True
    return declared.startswith("video/")


def _image_format(data: bytes) -> str | None:
    """Pillow's name for the image format of *data*, or None when it is no image at all."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                return str(probe.format)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return None
    except (OSError, ValueError, SyntaxError):
        return None


# --------------------------------------------------------------------------- images


def store_image(data: bytes, settings: Settings) -> StoredUpload:
    """Decode *data* fully and keep a clean copy plus a small preview; refuse what fails."""
    from PIL import Image, ImageOps

    from render.encode import atomic_path, blurhash_of, sha256_file

    allowed = ", ".join(_IMAGE_FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt, (width, height) = str(probe.format), probe.size
                if fmt not in _IMAGE_FORMATS:
                    raise Invalid(f"the image is {fmt}; allowed image formats are {allowed}")
                if width * height > IMAGE_MATRIX_LIMIT:
                    raise Invalid(
                        f"the image is {width}x{height} pixels; at most "
                        f"{IMAGE_MATRIX_LIMIT:,} pixels are allowed"
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every byte: a truncated or corrupt file fails here
                clean = ImageOps.exif_transpose(image).convert("RGB")
    except Invalid:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise Invalid(f"the image is too large to decode safely: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow's corruption errors
        raise Invalid(f"the file is not a readable {allowed} image: {exc}") from exc
    width, height = clean.size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise Invalid(
            f"the image is {width}x{height} pixels; an input still needs at least "
            f"{MIN_IMAGE_SIDE} pixels on each side"
        )
    name = uuid.uuid4().hex
    # PNG stays lossless; photographs are kept as high-quality JPEG. Metadata is not copied.
    ext, save_as, content_type = (
        ("png", "PNG", "image/png") if fmt == "PNG" else ("jpg", "JPEG", "image/jpeg")
    )
    rel = f"uploads/images/{name}.{ext}"
    preview_rel = f"uploads/images/{name}-small.jpg"
    store = media_store(settings)
    dst = store.staging(rel)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(dst) as tmp:
            clean.save(tmp, format=save_as, **({"quality": 95} if save_as == "JPEG" else {}))
        preview = clean.copy()
        preview.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
        with atomic_path(store.staging(preview_rel)) as tmp:
            preview.save(tmp, format="JPEG", quality=85)
        return StoredUpload(
            {
                "kind": MediaKind.IMAGE,
                "file": rel,
                "poster_file": preview_rel,
                "content_type": content_type,
                "width": width,
                "height": height,
                "size": dst.stat().st_size,
                "sha256": sha256_file(dst),
                "blurhash": blurhash_of(preview),
                "provenance": {"state": "input_still", "original_format": fmt},
            }
        )
    except BaseException:  # a full disk after the image was written: nothing half-stored
        _remove(settings, rel, preview_rel)
        raise


def _remove(settings: Settings, *rels: str | None) -> None:
    """Remove staged files (written, not yet handed to the media store)."""
    store = media_store(settings)
    for rel in rels:
        if rel:
            store.staging(rel).unlink(missing_ok=True)


async def keep(stored: StoredUpload, settings: Settings) -> None:
    """Hand the files of *stored* to the media store (nothing to do for the local store).
    :class:`~fedisora.media_store.MediaStoreError` (503) when the store cannot take them:
    then nothing of the upload is left, staged or stored."""
    store = media_store(settings)
    keys = (stored.values.get("file"), stored.values.get("poster_file"))
    try:
        await store.commit(*keys)
    except BaseException:
        _remove(settings, *keys)
        with contextlib.suppress(MediaStoreError):
            await store.delete(keys)
        raise


async def discard(stored: StoredUpload, settings: Settings) -> None:
    """Remove the files of an upload whose row was not stored after all."""
    keys = (stored.values.get("file"), stored.values.get("poster_file"))
    _remove(settings, *keys)
    await media_store(settings).delete(keys)


# --------------------------------------------------------------------------- videos


def _refuse(reason: str) -> Invalid:
    return Invalid(f"{AI_ONLY_RULE}. This file was refused: {reason}")


def _first_frame(path: Path) -> Any:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="rgb24")
    raise _refuse("it holds no decodable frame")


def _store_video(data: bytes, settings: Settings, uploader: Account) -> StoredUpload:
    """Keep *data* only if its provenance verifies against a trusted instance root."""
    from render.encode import atomic_path, probe, sha256_file, write_poster
    from render.encode import blurhash_of as hash_of
    from render.errors import ProbeError, ProvenanceError
    from render.instance import own_roots, trusted_roots
    from render.provenance import ValidationState, verify_mp4

    name = uuid.uuid4().hex
    store = media_store(settings)
    folder = store.staging(f"uploads/videos/{name}.mp4").parent
    folder.mkdir(parents=True, exist_ok=True)
    incoming = folder / f".{name}.incoming"
    incoming.write_bytes(data)
    try:
        try:
            result = verify_mp4(incoming, trusted_roots(settings, retired=False))
            if (
                result.state is ValidationState.VALID
                and result.claim is not None
                and result.claim.instance == settings.domain
            ):  # a retired root of this instance vouches for this instance's clips only
                result = verify_mp4(incoming, trusted_roots(settings))
        except ProvenanceError:
            raise _refuse("it is not an MP4 whose C2PA data can be read") from None
        if result.state is ValidationState.MISSING:
            raise _refuse("it carries no C2PA provenance manifest")
        if result.state is ValidationState.INVALID:
            failures = ", ".join(result.failures) or "the signature or hashes do not match"
            raise _refuse(f"its provenance manifest does not validate ({failures})")
        if result.state is not ValidationState.TRUSTED:
            raise _refuse(
                f"its manifest is signed by {result.signer or 'an unknown signer'}, whose "
                "instance this server does not trust"
            )
        if result.claim is None:
            raise _refuse("its manifest has no fedisora render assertion")
        try:
            info = probe(incoming)
        except ProbeError as exc:
            raise Invalid(f"the video cannot be played: {exc}") from exc
        if info.duration > settings.max_clip_seconds + 0.05:
            raise Invalid(
                f"the video lasts {info.duration:.2f} s; clips on this instance last at most "
                f"{settings.max_clip_seconds:g} s"
            )
        if info.width * info.height > VIDEO_MATRIX_LIMIT or info.fps > VIDEO_FRAME_RATE_LIMIT:
            raise Invalid(
                f"the video is {info.width}x{info.height} at {info.fps:g} fps; at most "
                f"{VIDEO_MATRIX_LIMIT:,} pixels and {VIDEO_FRAME_RATE_LIMIT} fps are allowed"
            )
        # Rendered by this instance's own queue (its own root, current or retired, and its
        # own name) for the uploader: only then may it be posted here as the uploader's clip
        # (services.posts checks this).
        mine = own_roots(settings)
        claim = result.claim
        local = (
            claim.instance == settings.domain
            and claim.creator == uploader.uri
            and bool(mine)
            and verify_mp4(incoming, mine).trusted
        )
        rel = f"uploads/videos/{name}.mp4"
        poster_rel = f"uploads/videos/{name}.jpg"
        try:
            poster = write_poster(_first_frame(incoming), store.staging(poster_rel))
            with atomic_path(store.staging(rel)) as tmp:
                os.replace(incoming, tmp)
        except BaseException:  # a full disk: no poster without its video
            _remove(settings, poster_rel)
            raise
        video = store.staging(rel)
    finally:
        incoming.unlink(missing_ok=True)
    return StoredUpload(
        {
            "kind": MediaKind.VIDEO,
            "file": rel,
            "poster_file": poster_rel,
            "content_type": "video/mp4",
            "width": info.width,
            "height": info.height,
            "duration": round(info.frames / info.fps, 3) if info.fps else info.duration,
            "fps": info.fps,
            "frames": info.frames,
            "size": video.stat().st_size,
            "sha256": sha256_file(video),
            "blurhash": hash_of(poster),
            "provenance": {
                "state": "trusted",
                "local": local,
                "uploaded": True,
                "manifest_digest": result.manifest_digest,
                "digital_source_type": result.digital_source_type,
                "signer": result.signer,
                "claim": claim.to_assertion(),
            },
        }
    )


# --------------------------------------------------------------------------- the use case


async def store_upload(
    account: Account,
    upload: UploadFile,
    settings: Settings,
    *,
    description: str = "",
    focus: dict[str, float] | None = None,
    images_only: bool = False,
) -> MediaFile:
    """Store *upload* (an input still, or a signed clip unless *images_only*) as *account*'s
    media; the same signed clip again is the attachment it made the first time (one render
    cannot become two clips). Refusals: :class:`Invalid` (422), :class:`TooLarge` (413),
    :class:`~fedisora.errors.RateLimited` (429, the ``upload`` rate limit, counted first)."""
    await ratelimits.enforce("upload", f"account:{account.pk}")
    head = await upload.read(512)
    await upload.seek(0)
    if not head:
        raise Invalid("the file is empty")
    declared = (upload.content_type or "").lower()
    if _looks_like_video(head, declared) and _image_format(head) is None:
        if images_only:
            raise Invalid(
                "the still must be a JPEG, PNG or WebP image; this file is a video "
                "(a video cannot be the still of an image-to-video render)"
            )
        data = await read_capped(upload, VIDEO_SIZE_LIMIT)
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        again = await MediaFile.get_or_none(
            account_id=account.pk, kind=MediaKind.VIDEO, sha256=digest
        )
        if again is not None:
            return again
        with disk_space():
            stored = await asyncio.to_thread(_store_video, data, settings, account)
        await keep(stored, settings)
    else:
        data = await read_capped(upload, IMAGE_SIZE_LIMIT)
        if _image_format(data) is None:
            if images_only or declared.startswith("image/"):
                raise Invalid("the file is not a readable JPEG, PNG or WebP image")
            raise Invalid(
                f"unsupported file type {declared or 'unknown'}: upload a JPEG, PNG or WebP "
                "image (an input still for image-to-video) or a clip rendered by a fedisora "
                "render queue; " + AI_ONLY_RULE
            )
        with disk_space():
            stored = await asyncio.to_thread(store_image, data, settings)
    await keep(stored, settings)
    values = dict(stored.values)
    if focus is not None:
        values["provenance"] = {**values["provenance"], "focus": focus}
    try:
        return await MediaFile.create(account=account, description=description, **values)
    except BaseException:  # no row (the database is full or down): no files either
        with contextlib.suppress(Exception):
            await discard(stored, settings)
        raise
