"""Likeness consent: who may put a local person's likeness into a clip (a cameo), and the trail.

One service for the API, the CLI and the render queue:

- a **likeness** (at most one per account) is registered by its owner only, with 1 to
  :data:`MAX_REFERENCE_IMAGES` reference stills and a verification sample showing a one-time
  challenge code (:func:`new_challenge`, :func:`register`); an admin (or a check of the
  admin's choosing) verifies or rejects it (:func:`verify`, :func:`reject`). Its files live
  in :func:`private_dir`, never under the public media root.
- its **policy** (:func:`update_policy`): ``audience`` nobody | me | approved | mutuals |
  everyone, ``approval_required`` (each use waits for the owner: a grant then serves one
  render job), ``drafts_only`` (may render, may not publish), ``restrictions`` (free text a
  requester must accept before the first use: grants keep the SHA-256 of the text they were
  accepted under) and ``default_expires_in`` (a grant's lifetime).
- **requests** (:func:`request_use`) are answered by the policy at once, or wait for the
  owner (:func:`approve_request`, :func:`reject_request`); **grants** are made by those
  answers or ahead of any request (:func:`grant`) and revoked one by one
  (:func:`revoke_grant`) or all at once with the likeness (:func:`revoke_likeness`).
  Revoking cancels the render jobs that use the grant and, with ``take_down``, deletes the
  clips published with it (the Delete federates).
- :func:`check_consent` is the one decision, used at request time, before rendering and
  before publishing. Every call writes a :class:`~fedisora.models.ConsentCheck` row (the
  audit: :func:`consent_checks`). The owner is notified of each use
  (``fedisora.likeness_use``) and each request (``fedisora.likeness_request``) and lists the
  uses (:func:`uses_of`), and can remove themselves from a clip (:func:`remove_from_clip`).

How explicit grants and the audience combine: ``nobody`` lets no one use the likeness (the
owner neither), ``me`` the owner only; with ``approved``, ``mutuals`` and ``everyone``, a
grant the owner approved counts; ``mutuals`` and ``everyone`` also let those they name use it
without asking (a grant with basis ``policy`` is recorded on first use, and stays valid only
while the policy still names its grantee).

Remote owners and grantees (federated requests, signed consent objects, revocations and use
notices delivered to other instances) build on these rows: ``uri`` columns hold the ids of
the federated objects, ``remote`` flags rows another instance reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import threading
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.expressions import Q

from fedisora.config import Settings
from fedisora.errors import Conflict, Forbidden, Invalid, NotFound
from fedisora.models import (
    Account,
    Audience,
    Cameo,
    Clip,
    ConsentCheck,
    Follow,
    FollowState,
    Likeness,
    LikenessChallenge,
    LikenessGrant,
    LikenessRequest,
    LikenessState,
    LikenessUse,
    NotificationType,
    RenderJob,
    User,
    utcnow,
)
from fedisora.services import events
from fedisora.services.notify import notify
from fedisora.services.visibility import is_blocked

__all__ = [
    "CHALLENGE_TTL",
    "MAX_REFERENCE_BYTES",
    "MAX_REFERENCE_IMAGES",
    "MAX_VERIFICATION_BYTES",
    "REFERENCE_SIDE",
    "Consent",
    "LikenessInputError",
    "approve_request",
    "cancel_grant_jobs",
    "check_consent",
    "consent_checks",
    "find_face",
    "find_owner",
    "forget",
    "get_likeness",
    "grant",
    "grants_of",
    "is_admin",
    "local_likenesses",
    "named_account",
    "new_challenge",
    "normalise_reference",
    "open_challenge",
    "private_dir",
    "record_use",
    "reference_paths",
    "register",
    "reject",
    "reject_request",
    "remove_from_clip",
    "request_use",
    "requests_of",
    "restrictions_accepted",
    "restrictions_digest",
    "revoke_grant",
    "revoke_likeness",
    "standing",
    "update_policy",
    "usable_likenesses",
    "uses_of",
    "verify",
]

CHALLENGE_TTL = timedelta(minutes=30)
MAX_REFERENCE_IMAGES = 5
MAX_REFERENCE_BYTES = 8 * 1024 * 1024
MAX_VERIFICATION_BYTES = 24 * 1024 * 1024
MAX_REFERENCE_PIXELS = 40_000_000
MIN_REFERENCE_SIDE = 64
REFERENCE_SIDE = 512
MAX_RESTRICTIONS = 1000
MAX_REASON = 500
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
_VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"qt  ", b"dash")


class LikenessInputError(Invalid):
    """A reference image, verification sample or challenge that is refused (422)."""


def _cap(text: str, n: int = MAX_REASON) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def restrictions_digest(text: str) -> str:
    """What a grant records of the restrictions accepted ("" for none): the
    ``restrictionsDigest`` of its consent object (:func:`activitypub.consent.restrictions_digest`,
    a multibase SHA-256)."""
    from activitypub import consent

    return consent.restrictions_digest(text) if text else ""


# --------------------------------------------------------------------------- files


def private_dir(settings: Settings) -> Path:
    """Where likeness files live: a private directory of the data dir, outside the media root
    (which is served publicly). Refuses a configuration that would put it inside."""
    directory = (settings.data_dir / "private" / "likeness").resolve()
    media = settings.media_root.resolve()
    if directory == media or media in directory.parents:
        raise RuntimeError(
            f"the likeness directory {directory} would be inside the public media root {media}"
        )
    return directory


def reference_paths(likeness: Likeness, settings: Settings) -> tuple[str, ...]:
    """Absolute paths of a likeness's normalised reference images (for the render worker)."""
    base = private_dir(settings)
    return tuple(str(base / rel) for rel in likeness.reference_files)


FACE_MARGIN = 0.45
"""Room kept around a detected face, on each side, as a fraction of the face box's side: the
crop shows the whole head (hair, chin), not just the eyes-to-mouth box the detector finds."""
_DETECT_SIDE = 640  # faces are looked for on a copy at most this large (speed; same result)
_MIN_FACE = 0.12  # a face smaller than this fraction of the shorter side is not one we keep
_cascades = threading.local()


def _face_detector() -> Any:
    """OpenCV's frontal-face Haar cascade, shipped inside opencv-python-headless (nothing is
    downloaded); one per thread (a classifier is not safe to share between threads)."""
    detector = getattr(_cascades, "frontal", None)
    if detector is None:
        import cv2

        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        detector = cv2.CascadeClassifier(str(path))
        if detector.empty():
            raise RuntimeError(f"the face detector's cascade {path} cannot be loaded")
        _cascades.frontal = detector
    return detector


def find_face(image: Any) -> tuple[int, int, int, int] | None:
    """The largest frontal face in *image* (an RGB PIL image) as ``(left, top, width,
    height)`` in its pixels, or ``None`` when there is none."""
    import cv2
    import numpy as np

    scale = min(1.0, _DETECT_SIDE / max(image.size))
    small = (
        image
        if scale == 1.0
        else image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    )
    grey = cv2.equalizeHist(cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2GRAY))
    smallest = max(24, round(min(small.size) * _MIN_FACE))
    faces = _face_detector().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
    return (round(x / scale), round(y / scale), round(w / scale), round(h / scale))


def _square_around(
    size: tuple[int, int], box: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """The square crop (left, top, right, bottom) centred on *box* with :data:`FACE_MARGIN`
    around it, as large as fits inside an image of *size*."""
    width, height = size
    x, y, w, h = box
    side = min(round(max(w, h) * (1 + 2 * FACE_MARGIN)), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(0, round(cx - side / 2)), width - side)
    top = min(max(0, round(cy - side / 2)), height - side)
    return (left, top, left + side, top + side)


def normalise_reference(raw: bytes, name: str = "reference image", *, face: bool = True) -> Any:
    """Decode *raw* fully with Pillow and return the normalised reference (a PIL image).

    With *face* (a still an owner registers), the largest frontal face is found with OpenCV's
    Haar cascade (:func:`find_face`, shipped in opencv-python-headless: no model is
    downloaded) and the still is cropped to a square around it with :data:`FACE_MARGIN`
    around the face; a still with no face found is refused (:class:`LikenessInputError`,
    ``no face found in {name}``). Without *face* (stills another instance normalised
    already), a centre square is kept. Either way the square is resized to
    :data:`REFERENCE_SIDE` pixels, in RGB without any metadata. Raises
    :class:`LikenessInputError` for anything that is not a complete JPEG, PNG or WebP image
    of a sane size.
    """
    from PIL import Image, ImageOps

    if not raw:
        raise LikenessInputError(f"{name} is empty")
    if len(raw) > MAX_REFERENCE_BYTES:
        raise LikenessInputError(
            f"{name} is {len(raw) / 1048576:.1f} MB; at most "
            f"{MAX_REFERENCE_BYTES // 1048576} MB are allowed"
        )
    formats = ", ".join(_IMAGE_FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                fmt, (width, height) = probe.format, probe.size
                if fmt not in _IMAGE_FORMATS:
                    raise LikenessInputError(f"{name} is a {fmt} image; allowed: {formats}")
                if width * height > MAX_REFERENCE_PIXELS:
                    raise LikenessInputError(f"{name} is {width}x{height} pixels: too large")
                if min(width, height) < MIN_REFERENCE_SIDE:
                    raise LikenessInputError(
                        f"{name} is {width}x{height} pixels; each side needs at least "
                        f"{MIN_REFERENCE_SIDE}"
                    )
                probe.verify()
            with Image.open(io.BytesIO(raw)) as image:
                image.load()
                clean = ImageOps.exif_transpose(image).convert("RGB")
    except LikenessInputError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise LikenessInputError(f"{name} is too large to decode safely: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise LikenessInputError(f"{name} is not a readable image ({formats}): {exc}") from exc
    if face:
        box = find_face(clean)
        if box is None:
            raise LikenessInputError(
                f"no face found in {name}: send a sharp still of your face, from the front, "
                "well lit and filling a good part of the picture"
            )
        square = clean.crop(_square_around(clean.size, box))
    else:
        side = min(clean.size)
        left, top = (clean.width - side) // 2, (clean.height - side) // 2
        square = clean.crop((left, top, left + side, top + side))
    return square.resize((REFERENCE_SIDE, REFERENCE_SIDE), Image.Resampling.LANCZOS)


def _verification_kind(raw: bytes) -> tuple[str, str]:
    """(content type, file suffix) of a verification sample: a still image (decoded and
    re-encoded) or a short MP4/QuickTime video (recognised by its ``ftyp`` box)."""
    if not raw:
        raise LikenessInputError("verification sample is missing or empty")
    if len(raw) > MAX_VERIFICATION_BYTES:
        raise LikenessInputError(
            f"verification is {len(raw) / 1048576:.1f} MB; at most "
            f"{MAX_VERIFICATION_BYTES // 1048576} MB are allowed"
        )
    if raw[4:8] == b"ftyp" and raw[8:12] in _VIDEO_BRANDS:
        return "video/mp4", ".mp4"
    return "image/png", ".png"


def _write_files(
    settings: Settings, account_id: int, refs: list[Any], verification: bytes
) -> tuple[list[str], str, str]:
    from fedisora.outages import disk_space
    from render.encode import atomic_path

    kind, suffix = _verification_kind(verification)
    sample: Any = None
    if suffix == ".png":  # a still: decoded completely, stored without metadata
        sample = normalise_reference_sample(verification)
    base = private_dir(settings)
    folder = f"{account_id}/{uuid.uuid4().hex}"
    (base / folder).mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        base.chmod(0o700)
    written: list[str] = []
    try:
        with disk_space():
            for i, image in enumerate(refs):
                rel = f"{folder}/reference-{i}.png"
                with atomic_path(base / rel) as tmp:
                    image.save(tmp, format="PNG")
                written.append(rel)
            sample_rel = f"{folder}/verification{suffix}"
            with atomic_path(base / sample_rel) as tmp:
                if sample is not None:
                    sample.save(tmp, format="PNG")
                else:
                    Path(tmp).write_bytes(verification)
    except BaseException:
        _remove_folder(base / folder)
        raise
    return written, sample_rel, kind


def normalise_reference_sample(raw: bytes) -> Any:
    """A still verification sample, decoded fully (its size kept, metadata dropped)."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                if probe.format not in _IMAGE_FORMATS:
                    raise LikenessInputError(
                        "verification must be a JPEG, PNG or WebP still or an MP4 video"
                    )
                if probe.size[0] * probe.size[1] > MAX_REFERENCE_PIXELS:
                    raise LikenessInputError("verification image is too large")
                probe.verify()
            with Image.open(io.BytesIO(raw)) as image:
                image.load()
                return ImageOps.exif_transpose(image).convert("RGB")
    except LikenessInputError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError, OSError) as exc:
        raise LikenessInputError(
            f"verification must be a JPEG, PNG or WebP still or an MP4 video: {exc}"
        ) from exc
    except (ValueError, SyntaxError) as exc:
        raise LikenessInputError(
            f"verification must be a JPEG, PNG or WebP still or an MP4 video: {exc}"
        ) from exc


def _remove_folder(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _remove_files(settings: Settings, likeness: Likeness) -> None:
    base = private_dir(settings)
    folders = {(base / rel).parent for rel in likeness.reference_files}
    if likeness.verification_file:
        folders.add((base / likeness.verification_file).parent)
    for folder in folders:
        if base in folder.parents:
            _remove_folder(folder)


# --------------------------------------------------------------------------- registration


async def get_likeness(account: Account) -> Likeness | None:
    return await Likeness.get_or_none(account_id=account.pk)


async def new_challenge(account: Account, *, now: datetime | None = None) -> LikenessChallenge:
    """A one-time code for *account* to show in its verification sample."""
    if not account.local:
        raise Forbidden("only local accounts register a likeness here")
    now = now or utcnow()
    code = "-".join(secrets.token_hex(2).upper() for _ in range(3))  # e.g. 3F2A-91C0-7B1D
    return await LikenessChallenge.create(
        account_id=account.pk, code=code, expires_at=now + CHALLENGE_TTL, created_at=now
    )


async def open_challenge(
    account: Account, *, now: datetime | None = None
) -> LikenessChallenge | None:
    """*account*'s newest challenge still usable (unexpired, never used), if any: a page shows
    it again on a reload rather than handing out a new code each time."""
    now = now or utcnow()
    return (
        await LikenessChallenge.filter(account_id=account.pk, consumed_at=None, expires_at__gt=now)
        .order_by("-id")
        .first()
    )


async def register(
    account: Account,
    *,
    references: Sequence[bytes],
    verification: bytes,
    challenge: str,
    settings: Settings,
    now: datetime | None = None,
    engine: Any = None,
) -> Likeness:
    """Register (or replace, until verified) *account*'s likeness, state ``pending``.

    Everything is checked before anything is stored: 1 to 5 reference images, each a
    complete image under :data:`MAX_REFERENCE_BYTES`; a verification still or MP4 under
    :data:`MAX_VERIFICATION_BYTES`; *challenge* a code given to *this* account, unexpired and
    never used. The challenge is consumed by a conditional update in the transaction that
    stores the likeness, so a replay (even a concurrent one) is refused.
    """
    from tortoise.transactions import in_transaction

    if not account.local or account.suspended_at is not None:
        raise Forbidden("only active local accounts register a likeness")
    now = now or utcnow()
    if not 1 <= len(references) <= MAX_REFERENCE_IMAGES:
        raise LikenessInputError(
            f"reference images: send 1 to {MAX_REFERENCE_IMAGES} stills of your face, not "
            f"{len(references)}"
        )
    code = (challenge or "").strip()
    if not code or len(code) > 32:
        raise LikenessInputError(
            "challenge is required: get a code first (GET .../likeness/challenge, or the "
            "Likeness page of the settings)"
        )
    row = await LikenessChallenge.get_or_none(code=code, account_id=account.pk)
    if row is None:
        raise LikenessInputError("challenge: unknown code (it must be one given to you)")
    if row.consumed_at is not None:
        raise LikenessInputError("challenge: this code was used already; get a new one")
    if row.expires_at <= now:
        raise LikenessInputError("challenge: this code expired; get a new one")
    existing = await get_likeness(account)
    if existing is not None and existing.state == LikenessState.VERIFIED:
        raise Conflict("your likeness is verified; revoke it before registering anew")

    def prepare() -> tuple[list[str], str, str]:
        images = [
            normalise_reference(raw, f"reference image {i + 1}") for i, raw in enumerate(references)
        ]
        return _write_files(settings, account.pk, images, verification)

    files, sample, kind = await asyncio.to_thread(prepare)
    try:
        async with in_transaction() as conn:
            used = (
                await LikenessChallenge.filter(pk=row.pk, consumed_at=None)
                .using_db(conn)
                .update(consumed_at=now)
            )
            if not used:
                raise LikenessInputError("challenge: this code was used already; get a new one")
            values: dict[str, Any] = {
                "state": LikenessState.PENDING,
                "reference_files": files,
                "verification_file": sample,
                "verification_type": kind,
                "challenge_code": code,
                "verified_by_id": None,
                "verified_at": None,
                "verification_method": "",
                "reason": "",
                "revoked_at": None,
                "updated_at": now,
            }
            if existing is None:
                likeness = await Likeness.create(
                    account_id=account.pk, created_at=now, using_db=conn, **values
                )
            else:
                await Likeness.filter(pk=existing.pk).using_db(conn).update(**values)
                likeness = await Likeness.get(pk=existing.pk, using_db=conn)
    except BaseException:
        base = private_dir(settings)
        await asyncio.to_thread(_remove_folder, (base / files[0]).parent)
        raise
    if existing is not None:  # the previous files, replaced
        await asyncio.to_thread(_remove_files, settings, existing)
    if settings.likeness_check:  # the admin's automatic check runs as durable work
        from fedisora.services import likeness_check

        await likeness_check.schedule(engine)
    return likeness


async def _local_likeness(username: str) -> Likeness:
    account = await Account.get_or_none(username=username.removeprefix("@"), domain=None)
    if account is None:
        raise NotFound(f"no local account @{username}")
    likeness = await get_likeness(account)
    if likeness is None:
        raise NotFound(f"@{account.username} has not registered a likeness")
    return likeness


def _decidable(likeness: Likeness, unchecked: str | None) -> Any:
    """The update of *likeness* a decision makes: with *unchecked* (the challenge code of the
    registration an automatic check looked at), only while it is still that registration,
    pending and not checked yet (an admin's decision, or a registration anew, wins)."""
    query = Likeness.filter(pk=likeness.pk)
    if unchecked is not None:
        query = query.filter(
            state=LikenessState.PENDING, verification_method="", challenge_code=unchecked
        )
    return query


async def verify(
    username: str,
    *,
    by: Account | None = None,
    method: str = "admin",
    reason: str = "",
    unchecked: str | None = None,
) -> Likeness:
    """Mark a pending (or rejected) likeness verified; *method* records how it was checked
    (``admin``, ``admin (command line)``, ``check command:...``), *by* the admin who did.
    With *unchecked*, only the pending registration of that challenge code that no check
    decided yet is verified (:class:`Conflict` otherwise): the automatic check's way."""
    likeness = await _local_likeness(username)
    if likeness.state == LikenessState.REVOKED:
        raise Conflict("this likeness was revoked by its owner; they must register it again")
    now = utcnow()
    done = await _decidable(likeness, unchecked).update(
        state=LikenessState.VERIFIED,
        verified_by_id=by.pk if by is not None else None,
        verified_at=now,
        verification_method=_cap(method, 64),
        reason=_cap(reason),
        updated_at=now,
    )
    if not done:
        raise Conflict("this likeness was decided, or registered anew, meanwhile")
    await _audit_decision(by, method, "likeness.verify", username, reason)
    return await Likeness.get(pk=likeness.pk)


async def _audit_decision(
    by: Account | None, method: str, action: str, username: str, reason: str
) -> None:
    """The audit log's entry of a verification decision: by the admin, the command line or
    the automatic check (its method names it)."""
    from fedisora.services import audit

    owner = await Account.get_or_none(username__iexact=username.removeprefix("@"), domain=None)
    actor: audit.Actor = (
        by if by is not None else (audit.CLI if "command line" in method else method)
    )
    await audit.record(actor, action, owner or audit.target("account", "", f"@{username}"), reason)


async def reject(
    username: str,
    *,
    reason: str,
    by: Account | None = None,
    method: str = "admin",
    unchecked: str | None = None,
) -> Likeness:
    """Refuse a likeness's verification with *reason* (shown to its owner); *method* and
    *unchecked* as for :func:`verify`."""
    if not reason.strip():
        raise Invalid("a reason is required")
    likeness = await _local_likeness(username)
    if likeness.state == LikenessState.REVOKED:
        raise Conflict("this likeness was revoked by its owner")
    now = utcnow()
    done = await _decidable(likeness, unchecked).update(
        state=LikenessState.REJECTED,
        verified_by_id=by.pk if by is not None else None,
        verified_at=now,
        verification_method=_cap(method, 64),
        reason=_cap(reason.strip()),
        updated_at=now,
    )
    if not done:
        raise Conflict("this likeness was decided, or registered anew, meanwhile")
    await _audit_decision(by, method, "likeness.reject", username, reason.strip())
    return await Likeness.get(pk=likeness.pk)


async def local_likenesses(
    state: str | None = None, *, limit: int = 100, after: int | None = None
) -> list[Likeness]:
    """The local likenesses (of *state*), oldest first, *limit* after the id *after*: for
    the admin's listing (``fedisora likeness list``)."""
    query = Likeness.filter(account__domain__isnull=True)
    if state:
        try:
            query = query.filter(state=LikenessState(state))
        except ValueError:
            allowed = ", ".join(s.value for s in LikenessState)
            raise Invalid(f"state must be one of {allowed}") from None
    if after is not None:
        query = query.filter(id__gt=after)
    return list(await query.order_by("id").limit(limit))


async def _mine(account: Account) -> Likeness:
    likeness = await get_likeness(account)
    if likeness is None or likeness.state == LikenessState.REVOKED:
        raise NotFound("you have no likeness registered")
    return likeness


_UNSET: Any = object()


async def update_policy(
    account: Account,
    *,
    audience: str | None = None,
    approval_required: bool | None = None,
    drafts_only: bool | None = None,
    restrictions: str | None = None,
    default_expires_in: int | None = _UNSET,
) -> Likeness:
    """Change who may use *account*'s likeness (only the given fields change)."""
    likeness = await _mine(account)
    values: dict[str, Any] = {}
    if audience is not None:
        try:
            values["audience"] = Audience(audience)
        except ValueError:
            allowed = ", ".join(a.value for a in Audience)
            raise Invalid(f"audience must be one of {allowed}") from None
    if approval_required is not None:
        values["approval_required"] = approval_required
    if drafts_only is not None:
        values["drafts_only"] = drafts_only
    if restrictions is not None:
        if len(restrictions) > MAX_RESTRICTIONS:
            raise Invalid(f"restrictions: at most {MAX_RESTRICTIONS} characters")
        values["restrictions"] = restrictions.strip()
    if default_expires_in is not _UNSET:
        if default_expires_in is not None and not 60 <= default_expires_in <= MAX_EXPIRES_IN:
            raise Invalid(f"default_expires_in must be between 60 and {MAX_EXPIRES_IN} seconds")
        values["default_expires_in"] = default_expires_in
    if values:
        values["updated_at"] = utcnow()
        await Likeness.filter(pk=likeness.pk).update(**values)
    return await Likeness.get(pk=likeness.pk)


# --------------------------------------------------------------------------- the decision


@dataclass(frozen=True, slots=True)
class Consent:
    """What :func:`check_consent` decided. ``grant`` is the consent that allowed it."""

    allowed: bool
    reason: str
    owner: Account
    likeness: Likeness | None = None
    grant: LikenessGrant | None = None
    references: tuple[str, ...] = field(default=())


async def _mutuals(a: Account, b: Account) -> bool:
    follows = await Follow.filter(
        Q(follower_id=a.pk, target_id=b.pk) | Q(follower_id=b.pk, target_id=a.pk),
        state=FollowState.ACCEPTED,
    ).count()
    return follows == 2


async def _policy_allows(likeness: Likeness, owner: Account, requester: Account) -> bool:
    """Whether the audience alone lets *requester* use the likeness without asking."""
    if requester.pk == owner.pk:
        return likeness.audience != Audience.NOBODY
    if likeness.audience == Audience.EVERYONE:
        return True
    if likeness.audience == Audience.MUTUALS:
        return await _mutuals(owner, requester)
    return False


def _expiry(likeness: Likeness, now: datetime) -> datetime | None:
    if likeness.default_expires_in:
        return now + timedelta(seconds=likeness.default_expires_in)
    return None


async def _new_grant(
    owner: Account,
    grantee: Account,
    likeness: Likeness,
    *,
    basis: str,
    digest: str,
    expires_at: datetime | None,
    single_use: bool = False,
) -> LikenessGrant:
    from fedisora import urls

    now = utcnow()
    row = await LikenessGrant.create(
        owner_id=owner.pk,
        grantee_id=grantee.pk,
        basis=basis,
        scope="drafts" if likeness.drafts_only else "publish",
        restrictions_digest=digest,
        single_use=single_use,
        expires_at=expires_at,
        created_at=now,
    )
    uri = f"{urls.current().base}/likeness/grants/{row.pk}"
    row.uri = uri
    row.document = await _signed_grant(row, owner, grantee, likeness)
    await LikenessGrant.filter(pk=row.pk).update(uri=uri, document=row.document)
    return row


def _owner_key(owner: Account) -> tuple[Any, str] | None:
    """The owner's Ed25519 key (FEP-521a) and its id, or None when it has none here."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from activitypub.keys import load_private_key_pem

    if not owner.local or not owner.ed25519_private_pem:
        return None
    key = load_private_key_pem(owner.ed25519_private_pem)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return key, f"{owner.uri}#ed25519-key"


async def _signed_grant(
    row: LikenessGrant, owner: Account, grantee: Account, likeness: Likeness
) -> dict[str, Any] | None:
    """The grant as a ``LikenessAuthorization`` signed by the owner (FEP-8b32 proof,
    eddsa-jcs-2022, :mod:`activitypub.consent`), naming the restrictions in force."""
    from activitypub import consent

    signing = _owner_key(owner)
    if signing is None or row.uri is None:
        return None
    key, key_id = signing
    doc = consent.build_grant(
        grant_id=row.uri,
        owner=owner.uri,
        grantee=grantee.uri,
        scope="drafts" if row.scope == "drafts" else "publish",
        restrictions_digest=consent.restrictions_digest(likeness.restrictions),
        published=row.created_at,
        expires=row.expires_at,
        max_uses=1 if row.single_use else None,
    )
    return consent.sign_grant(doc, key, key_id=key_id, created=row.created_at)


def _signed_revocation(
    owner: Account, revoked: str, *, take_down: bool, now: datetime
) -> dict[str, Any] | None:
    """A ``LikenessRevocation`` of the grant *revoked* (or, naming the owner, of them all),
    signed by the owner, with a new id (what receivers remember to spot a replay)."""
    from activitypub import consent

    signing = _owner_key(owner)
    if signing is None:
        return None
    key, key_id = signing
    from fedisora import urls

    doc = consent.build_revocation(
        revocation_id=f"{urls.current().base}/likeness/revocations/{uuid.uuid4().hex}",
        owner=owner.uri,
        revoked=revoked,
        published=now,
        take_down=take_down,
    )
    return consent.sign_revocation(doc, key, key_id=key_id, created=now)


def _grant_usable(g: LikenessGrant, now: datetime, job_id: int | None) -> str:
    """Why grant *g* cannot be used now ("" when it can)."""
    if g.revoked_at is not None:
        return "the consent was revoked"
    if g.expires_at is not None and g.expires_at <= now:
        return f"the consent expired at {g.expires_at.isoformat(timespec='seconds')}"
    if g.single_use and g.job_id is not None and g.job_id != job_id:
        return "the owner's approval was for another use; ask again"
    return ""


async def _decide(
    requester: Account,
    owner: Account,
    *,
    publish: bool,
    job_id: int | None,
    now: datetime,
) -> Consent:
    def refuse(reason: str, likeness: Likeness | None = None) -> Consent:
        return Consent(False, reason, owner, likeness)

    name = f"@{owner.acct}"
    if not owner.local:
        return await _decide_remote(requester, owner, publish=publish, job_id=job_id, now=now)
    if owner.suspended:
        return refuse(f"{name} is suspended")
    likeness = await get_likeness(owner)
    if likeness is None:
        return refuse(f"{name} has not registered a likeness")
    if likeness.state != LikenessState.VERIFIED:
        return refuse(f"the likeness of {name} is not verified (it is {likeness.state})", likeness)
    if likeness.audience == Audience.NOBODY:
        return refuse(f"{name} lets nobody use their likeness", likeness)
    is_self = requester.pk == owner.pk
    if not is_self:
        if likeness.audience == Audience.ME:
            return refuse(f"{name} lets only themselves use their likeness", likeness)
        if await is_blocked(owner, requester):
            return refuse(f"{name} does not allow you to use their likeness", likeness)
    digest = restrictions_digest(likeness.restrictions)
    policy_ok = await _policy_allows(likeness, owner, requester)
    grants = await LikenessGrant.filter(
        owner_id=owner.pk, grantee_id=requester.pk, remote=False
    ).order_by("-id")
    why_not = ""
    chosen: LikenessGrant | None = None
    for g in grants:
        problem = _grant_usable(g, now, job_id)
        if not problem and g.basis == "policy" and not policy_ok:
            problem = f"{name} changed who may use their likeness"
        if not problem and likeness.approval_required and not is_self and not g.single_use:
            problem = f"{name} approves every use: send a request for this one"
        if not problem and likeness.restrictions and g.restrictions_digest != digest:
            problem = (
                f"{name} changed the restrictions of their likeness; accept them again "
                "with a new request"
            )
        if problem:
            why_not = why_not or problem
            continue
        chosen = g
        break
    if chosen is None:
        if is_self or (policy_ok and not likeness.approval_required):
            if likeness.restrictions and not is_self:
                return refuse(
                    f"{name} has restrictions you must accept before the first use: send a "
                    "likeness request with accept_restrictions",
                    likeness,
                )
            chosen = await _new_grant(
                owner,
                requester,
                likeness,
                basis="policy",
                digest=digest,
                expires_at=None if is_self else _expiry(likeness, now),
            )
        else:
            return refuse(
                why_not or f"no consent from {name}: ask with a likeness request", likeness
            )
    if publish and not is_self and (chosen.scope == "drafts" or likeness.drafts_only):
        return refuse(
            f"{name} allows drafts only: a clip with their likeness cannot be published", likeness
        )
    if publish and is_self and likeness.drafts_only:
        pass  # drafts_only limits others; the owner publishes their own likeness
    return Consent(True, "consent granted", owner, likeness, chosen)


async def _decide_remote(
    requester: Account, owner: Account, *, publish: bool, job_id: int | None, now: datetime
) -> Consent:
    """A remote owner's consent here is a grant of theirs we received and verified
    (:func:`fedisora.federation.likeness.store_grant`), unrevoked and unexpired."""
    name = f"@{owner.acct}"
    if not requester.local:
        return Consent(False, f"{name} and the requester are both on other instances", owner)
    if owner.suspended:
        return Consent(False, f"{name} is suspended", owner)
    why_not = ""
    refused: LikenessGrant | None = None
    for g in await LikenessGrant.filter(
        owner_id=owner.pk, grantee_id=requester.pk, remote=True
    ).order_by("-id"):
        problem = _grant_usable(g, now, job_id)
        if not problem and publish and g.scope == "drafts":
            problem = f"{name} allows drafts only: a clip with their likeness cannot be published"
        if problem:
            why_not, refused = why_not or problem, refused or g
            continue
        return Consent(True, "consent granted", owner, None, g)
    # A refusal names the grant it refused (revoked, expired...): the owner is told of it.
    why_not = why_not or f"no consent from {name}: ask with a likeness request"
    return Consent(False, why_not, owner, None, refused)


async def check_consent(
    requester: Account,
    owner: Account,
    *,
    publish: bool,
    job: RenderJob | None = None,
    stage: str = "request",
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Consent:
    """May *requester* use *owner*'s likeness (to *publish*, or for a draft)? Never raises
    for a refusal: the decision says why. Writes the audit row either way. With *settings*,
    an allowed decision carries the private reference image paths."""
    now = now or utcnow()
    decision = await _decide(
        requester, owner, publish=publish, job_id=job.pk if job is not None else None, now=now
    )
    fetched: tuple[str, ...] = ()
    if decision.allowed and not owner.local and settings is not None and job is not None:
        decision, fetched = await _remote_references(decision, settings, job)
    await ConsentCheck.create(
        requester_id=requester.pk,
        owner_id=owner.pk,
        likeness_id=decision.likeness.pk if decision.likeness is not None else None,
        grant_id=decision.grant.pk if decision.grant is not None else None,
        render_job_id=job.pk if job is not None else None,
        stage=_cap(stage, 16),
        publish=publish,
        allowed=decision.allowed,
        reason=_cap(decision.reason),
        created_at=now,
    )
    if fetched:
        return Consent(True, decision.reason, owner, None, decision.grant, fetched)
    if decision.allowed and settings is not None and decision.likeness is not None:
        return Consent(
            True,
            decision.reason,
            owner,
            decision.likeness,
            decision.grant,
            reference_paths(decision.likeness, settings),
        )
    return decision


async def _remote_references(
    decision: Consent, settings: Settings, job: RenderJob
) -> tuple[Consent, tuple[str, ...]]:
    """A remote owner's stills, fetched for *job* from their instance (which checks the
    consent again), or the refusal when they cannot be had."""
    from activitypub.errors import ConsentError
    from fedisora.federation import likeness as federated
    from fedisora.federation.context import get_federation

    assert decision.grant is not None
    try:
        paths = await federated.fetch_references(
            get_federation(settings), settings, decision.grant, job_id=job.pk
        )
    except ConsentError as exc:
        reason = f"the reference stills of @{decision.owner.acct} cannot be had: {exc.reason}"
        return Consent(False, _cap(reason), decision.owner, None, decision.grant), ()
    return decision, paths


async def record_use(
    decision: Consent,
    user: Account,
    kind: str,
    *,
    job: RenderJob | None = None,
    clip: Clip | None = None,
    tell: bool = True,
) -> LikenessUse:
    """Record one use of a likeness (once per owner, job and kind) and notify its owner
    (unless *tell* is false: a posted clip notifies the people in it in its own transaction,
    see :func:`fedisora.services.posts.store_clip`).

    A single-use grant is bound to *job* here (by a conditional update: two jobs cannot
    both take it)."""
    owner = decision.owner
    grant_row = decision.grant
    if decision.allowed and grant_row is not None and grant_row.single_use and job is not None:
        await LikenessGrant.filter(pk=grant_row.pk, job_id=None).update(job_id=job.pk)
    use = None
    if job is not None:
        use = await LikenessUse.get_or_none(owner_id=owner.pk, render_job_id=job.pk, kind=kind)
    if use is not None and (not owner.local or use.uri is not None or not tell):
        if not owner.local and use.uri is None:
            from fedisora.federation import likeness as federated

            await federated.tell_use(use, user, owner, grant_row)
        return use
    # The use and its notice commit together: a crash between them cannot lose the notice
    # (a retried job finds the use and notifies once, by the dedupe key).
    async with events.transaction():
        if use is None:
            use = await LikenessUse.create(
                owner_id=owner.pk,
                user_id=user.pk,
                grant_id=grant_row.pk if grant_row is not None else None,
                render_job_id=job.pk if job is not None else None,
                clip_id=clip.pk if clip is not None else None,
                clip_uri=clip.uri if clip is not None else None,
                kind=kind,
                reason="" if decision.allowed else _cap(decision.reason),
            )
        if not owner.local:  # a remote owner hears of it at their instance
            from fedisora.federation import likeness as federated

            await federated.tell_use(use, user, owner, grant_row)
        elif tell:
            await notify(
                owner,
                NotificationType.LIKENESS_USE,
                dedupe_key=f"likeness_use:{use.pk}",
                from_account=user,
                clip=clip,
                render_job=job,
            )
    return use


MAX_AUDIT_PAGE = 200
"""The most consent checks one call of :func:`consent_checks` returns."""


async def consent_checks(
    viewer: Account,
    *,
    admin: bool = False,
    limit: int = 40,
    max_id: int | None = None,
    owner: Account | None = None,
    involving: Account | None = None,
    allowed: bool | None = None,
) -> list[ConsentCheck]:
    """The audit, newest first, *limit* (at most :data:`MAX_AUDIT_PAGE`) checks older than
    *max_id*: the checks of *viewer*'s likeness; with *admin* (the caller made sure *viewer*
    is one) every check, or those of *owner*'s likeness, or those *involving* an account
    (made by it or of its likeness). *allowed* keeps one result. Only an admin names another
    account (:class:`Forbidden`)."""
    if not admin:
        for named in (owner, involving):
            if named is not None and named.pk != viewer.pk:
                raise Forbidden("only admins see the consent checks of other accounts")
        owner = viewer
    qs = ConsentCheck.all()
    if owner is not None:
        qs = qs.filter(owner_id=owner.pk)
    if involving is not None:
        qs = qs.filter(Q(requester_id=involving.pk) | Q(owner_id=involving.pk))
    if allowed is not None:
        qs = qs.filter(allowed=allowed)
    if max_id is not None:
        qs = qs.filter(id__lt=max_id)
    return list(await qs.order_by("-id").limit(max(1, min(limit, MAX_AUDIT_PAGE))))


# --------------------------------------------------------------------------- requests, grants


async def find_owner(
    *, account_id: int | None = None, acct: str | None = None, local_domain: str = ""
) -> Account:
    """The account named by id or ``name`` / ``name@domain`` (404 when unknown)."""
    account: Account | None = None
    if account_id is not None:
        account = await Account.get_or_none(pk=account_id)
    elif acct:
        name, _, domain = acct.strip().removeprefix("@").partition("@")
        if not domain or domain.lower() == local_domain.lower():
            account = await Account.get_or_none(username=name, domain=None)
        else:
            account = await Account.get_or_none(username=name, domain=domain.lower())
    else:
        raise Invalid("account_id or acct is required")
    if account is None or account.suspended:
        raise NotFound("Record not found")
    return account


async def named_account(
    *, account_id: int | None = None, acct: str | None = None, settings: Settings
) -> Account:
    """The account a person names to ask for a likeness or to grant theirs: by id, or by
    ``name`` / ``@name`` / ``name@domain`` (:func:`find_owner`); an account of another instance
    not known here yet is looked up (WebFinger, then its actor) so that it can be asked or
    granted. 404 when there is none (or it is suspended), 422 when nothing is named. The API
    and the web pages name accounts through this one function."""
    acct = (acct or "").strip() or None
    if account_id is None and not acct:
        raise Invalid("account_id or acct is required")
    try:
        return await find_owner(account_id=account_id, acct=acct, local_domain=settings.domain)
    except NotFound:
        remote = await _resolve_remote(acct, settings) if account_id is None and acct else None
        if remote is None:
            raise
        return remote


async def _resolve_remote(acct: str, settings: Settings) -> Account | None:
    from fedisora.federation.actors import ActorError, resolve_acct
    from fedisora.federation.context import get_federation

    name, _, domain = acct.strip().removeprefix("@").partition("@")
    if not name or not domain or domain.lower() == settings.domain.lower():
        return None
    try:
        account = await resolve_acct(get_federation(settings), f"{name}@{domain}")
    except ActorError:
        return None
    return None if account.suspended else account


async def request_use(
    requester: Account,
    owner: Account,
    *,
    accept_restrictions: bool = False,
    uri: str | None = None,
) -> LikenessRequest:
    """Ask *owner* for the use of their likeness.

    Answered at once when the policy decides (approved: a grant is made; or refused with
    :class:`Forbidden` and nothing stored), else pending for the owner, who is notified.
    Restrictions, when the owner wrote some, must be accepted (422 otherwise).

    A remote *owner* is asked by a ``CameoRequest`` (the request stays pending here until
    their instance answers: :mod:`fedisora.federation.likeness`); a remote *requester*'s
    request (*uri*: its activity's id) is answered by the same rules here, and the answer
    federates (:func:`fedisora.federation.likeness.answer_request`)."""
    if requester.pk == owner.pk:
        raise Invalid("you do not need to ask for your own likeness")
    if not owner.local:
        from fedisora.federation import likeness as federated

        if not requester.local:
            raise Invalid("neither account of this request is local")
        return await federated.send_request(
            requester, owner, accept_restrictions=accept_restrictions
        )
    likeness = await get_likeness(owner)
    if likeness is None or likeness.state != LikenessState.VERIFIED:
        raise Invalid(f"@{owner.acct} has no verified likeness")
    if likeness.audience in (Audience.NOBODY, Audience.ME):
        raise Forbidden(f"@{owner.acct} lets nobody else use their likeness")
    if await is_blocked(owner, requester):
        raise Forbidden(f"@{owner.acct} does not allow you to use their likeness")
    digest = restrictions_digest(likeness.restrictions)
    if likeness.restrictions and not accept_restrictions:
        raise Invalid(
            f"@{owner.acct} asks you to accept these restrictions first: {likeness.restrictions}"
        )
    pending = await LikenessRequest.get_or_none(
        requester_id=requester.pk, owner_id=owner.pk, state="pending"
    )
    if pending is not None:
        if pending.accepted_restrictions != digest or (uri and pending.uri != uri):
            await LikenessRequest.filter(pk=pending.pk).update(
                accepted_restrictions=digest, uri=uri or pending.uri
            )
            pending.accepted_restrictions = digest
            pending.uri = uri or pending.uri
        return pending
    now = utcnow()
    # The request, its answer by the policy or the owner's notice commit together.
    async with events.transaction():
        request = await LikenessRequest.create(
            requester_id=requester.pk,
            owner_id=owner.pk,
            accepted_restrictions=digest,
            uri=uri,
            created_at=now,
        )
        if not likeness.approval_required:
            approved = await _approved_grant(owner, requester, likeness, digest, now)
            if approved is not None or await _policy_allows(likeness, owner, requester):
                if approved is None:
                    approved = await _new_grant(
                        owner,
                        requester,
                        likeness,
                        basis="policy",
                        digest=digest,
                        expires_at=_expiry(likeness, now),
                    )
                await LikenessRequest.filter(pk=request.pk).update(
                    state="approved", answered_at=now, grant_id=approved.pk
                )
                return await LikenessRequest.get(pk=request.pk)
        await notify(
            owner,
            NotificationType.LIKENESS_REQUEST,
            dedupe_key=f"likeness_request:{request.pk}",
            from_account=requester,
        )
    return request


async def _approved_grant(
    owner: Account, grantee: Account, likeness: Likeness, digest: str, now: datetime
) -> LikenessGrant | None:
    """A live grant the owner approved for *grantee*; its restrictions digest brought up to
    date (the grantee just accepted the current restrictions)."""
    for g in await LikenessGrant.filter(
        owner_id=owner.pk, grantee_id=grantee.pk, basis="approved", single_use=False
    ).order_by("-id"):
        if not _grant_usable(g, now, None):
            if g.restrictions_digest != digest:
                await LikenessGrant.filter(pk=g.pk).update(restrictions_digest=digest)
                g.restrictions_digest = digest
            return g
    return None


async def _owned_request(owner: Account, request_id: int) -> LikenessRequest:
    request = await LikenessRequest.get_or_none(pk=request_id, owner_id=owner.pk)
    if request is None:
        raise NotFound("Record not found")
    if request.state != "pending":
        raise Conflict(f"this request is already {request.state}")
    return request


async def approve_request(
    owner: Account, request_id: int, *, expires_at: datetime | None = None
) -> LikenessRequest:
    """The owner approves a pending request: a grant for the requester (for one use when
    the owner approves every use)."""
    request = await _owned_request(owner, request_id)
    likeness = await _mine(owner)
    requester = await Account.get(pk=request.requester_id)
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise Invalid("expires_at must be in the future")
    row = await _new_grant(
        owner,
        requester,
        likeness,
        basis="approved",
        digest=request.accepted_restrictions,
        expires_at=expires_at or _expiry(likeness, now),
        single_use=likeness.approval_required,
    )
    moved = await LikenessRequest.filter(pk=request.pk, state="pending").update(
        state="approved", answered_at=now, grant_id=row.pk
    )
    if not moved:
        await LikenessGrant.filter(pk=row.pk).delete()
        raise Conflict("this request was answered already")
    return await _answered(request.pk)


async def _answered(request_id: int) -> LikenessRequest:
    """The request, answered; a remote requester is told (the signed grant, or a Reject)."""
    request = await LikenessRequest.get(pk=request_id)
    if request.uri is not None:
        from fedisora.federation import likeness as federated

        await federated.answer_request(request)
    return request


async def reject_request(owner: Account, request_id: int) -> LikenessRequest:
    request = await _owned_request(owner, request_id)
    await LikenessRequest.filter(pk=request.pk, state="pending").update(
        state="rejected", answered_at=utcnow()
    )
    return await _answered(request.pk)


async def requests_of(account: Account) -> tuple[list[LikenessRequest], list[LikenessRequest]]:
    """(incoming, outgoing) requests of *account*, newest first (at most 100 each)."""
    incoming = await LikenessRequest.filter(owner_id=account.pk).order_by("-id").limit(100)
    outgoing = await LikenessRequest.filter(requester_id=account.pk).order_by("-id").limit(100)
    return list(incoming), list(outgoing)


async def grant(
    owner: Account, grantee: Account, *, expires_at: datetime | None = None
) -> LikenessGrant:
    """The owner approves *grantee* ahead of any request (for one use when the owner
    approves every use). Restrictions, if any, are still to be accepted by the grantee (with
    a request) before the first use. A remote *grantee*'s instance is sent the signed grant
    (an ``Offer``, :func:`fedisora.federation.likeness.offer_grant`) in the same
    transaction: the grantee may then use it without asking."""
    likeness = await _mine(owner)
    if grantee.pk == owner.pk:
        raise Invalid("you do not need a grant for your own likeness")
    if not grantee.local and (
        grantee.suspended or not (grantee.shared_inbox_uri or grantee.inbox_uri)
    ):
        raise Invalid(f"@{grantee.acct} cannot be reached to receive a grant")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise Invalid("expires_at must be in the future")
    async with events.transaction() as conn:  # a remote grantee's Offer goes with it
        row = await _new_grant(
            owner,
            grantee,
            likeness,
            basis="approved",
            digest="",
            expires_at=expires_at or _expiry(likeness, now),
            single_use=likeness.approval_required,
        )
        if not grantee.local:
            from fedisora.federation import likeness as federated

            await federated.offer_grant(conn, row, owner, grantee)
    return row


async def grants_of(account: Account) -> tuple[list[LikenessGrant], list[LikenessGrant]]:
    """(given, held) grants of *account*, newest first (at most 100 each)."""
    given = await LikenessGrant.filter(owner_id=account.pk).order_by("-id").limit(100)
    held = await LikenessGrant.filter(grantee_id=account.pk).order_by("-id").limit(100)
    return list(given), list(held)


async def _cancel_jobs(grant_ids: Sequence[int], owner: Account, engine: Any) -> int:
    """Cancel the live render jobs that use any of *grant_ids* (or *owner*'s likeness)."""
    from render.service import cancel_render
    from render.states import CANCELLED, FAILED, PUBLISHED

    job_ids = set(
        await LikenessUse.filter(
            Q(grant_id__in=list(grant_ids)) | Q(owner_id=owner.pk), render_job_id__not_isnull=True
        ).values_list("render_job_id", flat=True)
    )
    cancelled = 0
    for job in await RenderJob.filter(pk__in=[j for j in job_ids if j is not None]).exclude(
        state__in=(PUBLISHED, FAILED, CANCELLED)
    ):
        uses = await LikenessUse.filter(render_job_id=job.pk).values_list("grant_id", flat=True)
        if not set(uses) & set(grant_ids):
            continue
        author = await Account.get(pk=job.account_id)
        with contextlib.suppress(Conflict):
            await cancel_render(
                author, job, engine=engine, reason="cancelled: the likeness consent was revoked"
            )
            cancelled += 1
    return cancelled


async def cancel_grant_jobs(grant_ids: Sequence[int], owner: Account, engine: Any = None) -> int:
    """Cancel the live render jobs using any of *grant_ids* (a revocation received from a
    remote owner too); how many."""
    return await _cancel_jobs(grant_ids, owner, engine)


async def _take_down(grant_ids: Sequence[int]) -> int:
    """Delete the local clips published with any of *grant_ids* (their Delete federates)."""
    from fedisora.services.posts import delete_clip

    uris = [
        u
        for u in await LikenessGrant.filter(pk__in=list(grant_ids)).values_list("uri", flat=True)
        if u
    ]
    clip_ids = set(
        await LikenessUse.filter(
            grant_id__in=list(grant_ids), clip_id__not_isnull=True
        ).values_list("clip_id", flat=True)
    )
    if uris:
        clip_ids |= set(await Cameo.filter(consent_uri__in=uris).values_list("clip_id", flat=True))
    removed = 0
    for clip in await Clip.filter(pk__in=[c for c in clip_ids if c], deleted_at=None, local=True):
        author = await Account.get(pk=clip.account_id)
        await delete_clip(author, clip)
        removed += 1
    return removed


async def revoke_grant(
    owner: Account, grant_id: int, *, take_down: bool = False, engine: Any = None
) -> LikenessGrant:
    """Revoke one grant at once: new uses are refused, jobs using it cancelled and, with
    *take_down*, the clips published with it deleted."""
    row = await LikenessGrant.get_or_none(pk=grant_id, owner_id=owner.pk)
    if row is None:
        raise NotFound("Record not found")
    if row.revoked_at is None:
        now = utcnow()
        revocation = (
            _signed_revocation(owner, row.uri, take_down=take_down, now=now) if row.uri else None
        )
        async with events.transaction() as conn:
            updated = (
                await LikenessGrant.filter(pk=row.pk, revoked_at=None)
                .using_db(conn)
                .update(
                    revoked_at=now,
                    take_down=take_down,
                    revocation=revocation,
                    revocation_uri=revocation["id"] if revocation else None,
                )
            )
            if updated and revocation is not None:  # federated through the outbox
                await events.emit(
                    conn, "likeness.revoked", owner.pk, revocation=revocation, grant_ids=[row.pk]
                )
    await _cancel_jobs([row.pk], owner, engine)
    if take_down:
        await _take_down([row.pk])
    return await LikenessGrant.get(pk=row.pk)


async def revoke_likeness(
    account: Account, *, settings: Settings, take_down: bool = False, engine: Any = None
) -> Likeness:
    """Take the whole likeness back: every grant revoked, its jobs cancelled, the reference
    files deleted, state ``revoked`` (kept for the audit trail)."""
    likeness = await _mine(account)
    now = utcnow()
    revocation = _signed_revocation(account, account.uri, take_down=take_down, now=now)
    found: list[Any] = await LikenessGrant.filter(owner_id=account.pk).values_list("id", flat=True)
    ids = [int(i) for i in found]
    async with events.transaction() as conn:  # the change and its federation, together
        await (
            Likeness.filter(pk=likeness.pk)
            .using_db(conn)
            .update(
                state=LikenessState.REVOKED,
                revoked_at=now,
                updated_at=now,
                reference_files=[],
                verification_file=None,
            )
        )
        await (
            LikenessGrant.filter(owner_id=account.pk, revoked_at=None)
            .using_db(conn)
            .update(
                revoked_at=now,
                take_down=take_down,
                revocation=revocation,
                revocation_uri=revocation["id"] if revocation else None,
            )
        )
        if revocation is not None:  # federated through the outbox
            await events.emit(
                conn, "likeness.revoked", account.pk, revocation=revocation, grant_ids=ids
            )
    await _cancel_jobs(ids, account, engine)
    if take_down:
        await _take_down(ids)
    await asyncio.to_thread(_remove_files, settings, likeness)
    return await Likeness.get(pk=likeness.pk)


async def forget(account: Account, *, settings: Settings, engine: Any = None) -> None:
    """A deleted account: its likeness revoked (reference files deleted, jobs using it
    cancelled) and the grants it held revoked; the rows stay for the audit trail."""
    likeness = await get_likeness(account)
    if likeness is not None and likeness.state != LikenessState.REVOKED:
        await revoke_likeness(account, settings=settings, engine=engine)
    await LikenessGrant.filter(grantee_id=account.pk, revoked_at=None).update(revoked_at=utcnow())
    await LikenessRequest.filter(
        Q(owner_id=account.pk) | Q(requester_id=account.pk), state="pending"
    ).update(state="rejected", answered_at=utcnow())


# --------------------------------------------------------------------------- uses


async def uses_of(
    owner: Account, *, limit: int = 40, max_id: int | None = None
) -> list[LikenessUse]:
    qs = LikenessUse.filter(owner_id=owner.pk)
    if max_id is not None:
        qs = qs.filter(id__lt=max_id)
    return list(await qs.order_by("-id").limit(limit))


async def remove_from_clip(owner: Account, use_id: int, *, engine: Any = None) -> LikenessUse:
    """Remove *owner* from the clip (or draft) of one use: a local clip is deleted (its
    Delete federates), a render still in progress is cancelled; a clip (or draft) hosted on
    another instance is taken down there by revoking, with a take-down, the grant it was made
    with (:func:`revoke_grant`)."""
    from fedisora.services.posts import delete_clip
    from render.service import cancel_render

    use = await LikenessUse.get_or_none(pk=use_id, owner_id=owner.pk)
    if use is None:
        raise NotFound("Record not found")
    if use.removed_at is not None:
        return use
    remote_clip = (
        await Clip.get_or_none(pk=use.clip_id, local=False) if use.clip_id is not None else None
    )
    # A use another instance reported (its LikenessUse notice) whose clip or draft is not
    # held here is hosted there, as a remote clip is.
    reported = use.remote and use.clip_id is None and use.render_job_id is None
    if remote_clip is not None or reported:
        # A clip hosted on another instance: the owner takes back the grant it was published
        # with, with a take-down. The signed revocation goes to the hosting instance, which
        # deletes the clip (its Delete federates) and refuses new uses of that grant.
        grant_row = await LikenessGrant.get_or_none(pk=use.grant_id) if use.grant_id else None
        if grant_row is None and remote_clip is not None:
            uri = await Cameo.filter(clip_id=remote_clip.pk, account_id=owner.pk).values_list(
                "consent_uri", flat=True
            )
            grant_row = await LikenessGrant.get_or_none(
                uri__in=[u for u in uri if u], owner_id=owner.pk
            )
        if grant_row is None or grant_row.owner_id != owner.pk:
            raise Conflict("no consent of yours is recorded for that clip")
        await revoke_grant(owner, grant_row.pk, take_down=True, engine=engine)
        await LikenessUse.filter(pk=use.pk).update(removed_at=utcnow())
        return await LikenessUse.get(pk=use.pk)
    clip_ids: set[Any] = set()
    if use.render_job_id is not None:
        clip_ids |= set(
            await LikenessUse.filter(
                owner_id=owner.pk, render_job_id=use.render_job_id, clip_id__not_isnull=True
            ).values_list("clip_id", flat=True)
        )
    if use.clip_id is not None:
        clip_ids.add(use.clip_id)
    if use.render_job_id is not None:
        job = await RenderJob.get_or_none(pk=use.render_job_id)
        if job is not None:
            clip_ids |= set(await Clip.filter(render_job_id=job.pk).values_list("id", flat=True))
            author = await Account.get(pk=job.account_id)
            with contextlib.suppress(Conflict):
                await cancel_render(
                    author,
                    job,
                    engine=engine,
                    reason="cancelled: the person in it removed themselves",
                )
    for clip in await Clip.filter(pk__in=list(clip_ids), deleted_at=None, local=True):
        await delete_clip(await Account.get(pk=clip.account_id), clip)
    await LikenessUse.filter(
        Q(pk=use.pk) | Q(owner_id=owner.pk, render_job_id=use.render_job_id)
        if use.render_job_id is not None
        else Q(pk=use.pk)
    ).update(removed_at=utcnow())
    return await LikenessUse.get(pk=use.pk)


async def usable_likenesses(requester: Account, q: str = "", *, limit: int = 20) -> list[Account]:
    """The cameo picker: accounts whose verified likeness *requester* may use now (drafts at
    least), matching *q* (a username or display name prefix). A likeness whose restrictions
    the requester has not accepted yet is not listed: a request accepting them comes first."""
    qs = Likeness.filter(state=LikenessState.VERIFIED).exclude(audience=Audience.NOBODY)
    ids = list(await qs.values_list("account_id", flat=True))
    accounts = Account.filter(pk__in=ids, suspended_at=None)
    if q:
        q = q.strip().removeprefix("@")[:100]
        accounts = accounts.filter(Q(username__istartswith=q) | Q(display_name__istartswith=q))
    out: list[Account] = []
    for account in await accounts.order_by("username").limit(200):
        if await _could_use(requester, account):
            out.append(account)
            if len(out) >= limit:
                break
    return out


async def restrictions_accepted(requester: Account, owner: Account) -> bool:
    """Whether *requester* accepted the restrictions *owner*'s likeness has now (true when it
    has none, and for the owner): a usable grant, or a pending request, made under this text.
    The cameo picker asks it to know who still needs a request accepting them
    (:func:`request_use` with ``accept_restrictions``) before :func:`check_consent` allows."""
    if requester.pk == owner.pk:
        return True
    likeness = await get_likeness(owner)
    if likeness is None or not likeness.restrictions:
        return True
    digest = restrictions_digest(likeness.restrictions)
    now = utcnow()
    for g in await LikenessGrant.filter(
        owner_id=owner.pk, grantee_id=requester.pk, remote=False, restrictions_digest=digest
    ):
        if not _grant_usable(g, now, None):
            return True
    return await LikenessRequest.filter(
        requester_id=requester.pk, owner_id=owner.pk, state="pending", accepted_restrictions=digest
    ).exists()


async def standing(requester: Account, owner: Account) -> str:
    """Where *requester* stands with *owner*'s likeness, as the owner's profile page tells
    them: ``usable`` (they could use it now), ``pending`` (a request of theirs waits for the
    owner), else ``""``."""
    if await _could_use(requester, owner):
        return "usable"
    pending = await LikenessRequest.filter(
        requester_id=requester.pk, owner_id=owner.pk, state="pending"
    ).exists()
    return "pending" if pending else ""


async def _could_use(requester: Account, owner: Account) -> bool:
    """Whether *requester* could use *owner*'s likeness now (no audit row: a listing)."""
    likeness = await get_likeness(owner)
    if likeness is None or likeness.state != LikenessState.VERIFIED:
        return False
    if requester.pk == owner.pk:
        return likeness.audience != Audience.NOBODY
    if likeness.audience in (Audience.NOBODY, Audience.ME) or await is_blocked(owner, requester):
        return False
    if not likeness.approval_required and await _policy_allows(likeness, owner, requester):
        return True
    now = utcnow()
    digest = restrictions_digest(likeness.restrictions)
    for g in await LikenessGrant.filter(
        owner_id=owner.pk, grantee_id=requester.pk, basis="approved", remote=False
    ):
        if _grant_usable(g, now, None):
            continue
        if likeness.approval_required and not (g.single_use and g.job_id is None):
            continue
        if likeness.restrictions and g.restrictions_digest != digest:
            continue
        return True
    return False


async def is_admin(account: Account) -> bool:
    return await User.filter(account_id=account.pk, is_admin=True).exists()
