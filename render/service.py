"""Render use cases shared by the API, the web pages and the CLI.

``submit_render`` checks everything it can before a row exists: the spec against the
clip limits (``RenderLimitError``, naming the limit and the allowed range), the input
image, the configured model, and the owner's quotas (``RenderQuotaError``). A refused
request leaves nothing behind; an accepted one is a queued ``RenderJob`` row. The quotas are
checked again in the transaction that inserts the row, after updating the owner's
``RenderQuotaGuard`` row: that serialises one account's simultaneous requests on SQLite and
PostgreSQL alike, so two of them cannot both take the last slot.

Every function takes an optional ``engine``: with one (the app's or a worker's), moves and
new rows wake a runner at once; without, the same rows are found by the next sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
import shutil
import uuid
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from fedisora import ratelimits
from fedisora.config import Settings
from fedisora.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from fedisora.media_store import media_store
from fedisora.models import (
    Account,
    Clip,
    Likeness,
    MediaFile,
    MediaKind,
    RenderJob,
    RenderQuotaGuard,
    Visibility,
    utcnow,
)
from fedisora.outages import disk_space
from fedisora.services import audit, idempotency, posts, prompt_policy
from fedisora.services.visibility import can_see_clip
from fedisora.work import Engine
from render.consent import (
    check_cameo_consent,
    check_cameos_for_request,
    record_published,
    record_requested,
)
from render.errors import ModelLoadError, RenderLimitError
from render.fairness import queue_position
from render.spec import (
    ASPECTS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    RenderSpec,
    family_named,
    plan,
    seconds_cap,
)
from render.states import (
    ACTIVE,
    CANCELLED,
    ENCODING,
    FAILED,
    GRAPH,
    OVER,
    PUBLISHED,
    QUEUED,
    READY,
    RENDERING,
    SIGNING,
)

__all__ = [
    "MAX_INPUT_IMAGE_BYTES",
    "MAX_INPUT_IMAGE_PIXELS",
    "QUOTA_RANGES",
    "RenderLimits",
    "RenderQuotaError",
    "RenderQuotas",
    "RenderUsage",
    "admin_cancel_render",
    "cancel_render",
    "drafts_of",
    "input_still",
    "model_family",
    "model_renders_audio",
    "model_takes_references",
    "publish_render",
    "remix_source",
    "render_limits",
    "render_made_by",
    "render_progress",
    "render_usage",
    "requeue_render",
    "set_quota_override",
    "submit_render",
]

MAX_INPUT_IMAGE_BYTES = 20 * 1024 * 1024
MAX_INPUT_IMAGE_PIXELS = 40_000_000
_MIN_IMAGE_SIDE = 16
_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
_SPEC_FIELDS = frozenset(
    {"prompt", "negative_prompt", "seconds", "aspect", "seed", "kind", "input_image"}
    | {"remix_of", "cameos", "audio"}
)
_TRUE, _FALSE = frozenset({"true", "1", "on", "yes"}), frozenset({"false", "0", "off", "no", ""})
_DAY = timedelta(hours=24)


class RenderQuotaError(RateLimited):
    """The owner used up a render quota; ``quota`` names it (maps to HTTP 429)."""

    def __init__(self, quota: str, message: str) -> None:
        super().__init__(f"{quota}: {message}")
        self.quota = quota


# --------------------------------------------------------------------------- request checks


def model_family(settings: Settings) -> str:
    """The model family of the model in use, read without loading any weights."""
    from render import models
    from render.catalogue import TINY_MODELS

    settings = models.cached(settings)  # an admin's choice (render.models.use)
    if settings.render_family:
        return settings.render_family
    if settings.render_model in TINY_MODELS:
        return TINY_MODELS[settings.render_model].family
    from render.pipeline import SUPPORTED_PIPELINES

    return SUPPORTED_PIPELINES[_model_class(settings)][0]


def model_takes_references(settings: Settings) -> bool:
    """Whether the configured model renders cameos (a reference-to-video pipeline, Wan VACE;
    the tiny model has one), read without loading any weights."""
    from render import models
    from render.catalogue import is_tiny
    from render.pipeline import REFERENCE_PIPELINES
    from render.spec import family_named

    settings = models.cached(settings)
    if not family_named(model_family(settings)).takes_references:
        return False
    return is_tiny(settings.render_model) or _model_class(settings) in REFERENCE_PIPELINES


def model_renders_audio(settings: Settings) -> bool:
    """Whether the configured model renders a sound track with its clips (the LTX-2 family;
    ``tiny-ltx2``), read without loading any weights."""
    from render.spec import family_named

    return family_named(model_family(settings)).audio


def _model_class(settings: Settings) -> str:
    """The pipeline class named by the configured model directory's ``model_index.json``."""
    from render.pipeline import SUPPORTED_PIPELINES

    path = Path(settings.render_model)
    index = path / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"the render model {path} is not a diffusers model directory (no model_index.json)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"the render model's {index} is unreadable: {exc}") from exc
    name = data.get("_class_name") if isinstance(data, dict) else None
    if name not in SUPPORTED_PIPELINES:
        known = ", ".join(sorted(SUPPORTED_PIPELINES))
        raise ModelLoadError(f"the render model {path} is a {name!r}; supported: {known}")
    return str(name)


def _number(limit: str, value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool):
        raise RenderLimitError(limit, f"must be a number, got {value!r}")
    if isinstance(value, int | float):
        return kind(value) if kind is float else value
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    raise RenderLimitError(limit, f"must be a number, got {value!r}")


def _flag(limit: str, value: Any) -> bool:
    """A yes/no field from JSON (true/false) or a form ("true", "1", "on"...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RenderLimitError(limit, f"must be true or false, got {value!r}")


def _store_input_image(data: bytes | str | Path, settings: Settings) -> str:
    """Check an uploaded still and write a clean PNG copy where the media store takes it
    from (:meth:`~fedisora.media_store.MediaStore.staging`); return its key."""
    from PIL import Image

    if isinstance(data, str | Path):
        try:
            raw = Path(data).read_bytes()
        except OSError as exc:
            raise RenderLimitError("input_image", f"cannot be read: {exc}") from exc
    else:
        raw = bytes(data)
    mb = MAX_INPUT_IMAGE_BYTES // (1024 * 1024)
    if len(raw) > MAX_INPUT_IMAGE_BYTES:
        raise RenderLimitError(
            "input_image", f"is {len(raw) / 1048576:.1f} MB; at most {mb} MB are allowed"
        )
    if not raw:
        raise RenderLimitError("input_image", "is empty")
    formats = ", ".join(_IMAGE_FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                fmt, (width, height) = probe.format, probe.size
                if fmt not in _IMAGE_FORMATS:
                    raise RenderLimitError(
                        "input_image", f"is a {fmt} image; allowed formats: {formats}"
                    )
                if width * height > MAX_INPUT_IMAGE_PIXELS:
                    raise RenderLimitError(
                        "input_image",
                        f"is {width}x{height} pixels; at most {MAX_INPUT_IMAGE_PIXELS:,} pixels",
                    )
                if min(width, height) < _MIN_IMAGE_SIDE:
                    raise RenderLimitError(
                        "input_image",
                        f"is {width}x{height} pixels; each side needs at least {_MIN_IMAGE_SIDE}",
                    )
                probe.verify()
            with Image.open(io.BytesIO(raw)) as image:
                image.load()  # decodes every byte: a truncated file fails here
                clean = image.convert("RGB")
    except RenderLimitError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise RenderLimitError("input_image", f"is too large to decode safely: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for non-images/corruption
        raise RenderLimitError(
            "input_image", f"is not a readable image ({formats}): {exc}"
        ) from exc

    from render.encode import atomic_path

    rel = f"render-inputs/{uuid.uuid4().hex}.png"
    dst = media_store(settings).staging(rel)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        clean.save(tmp, format="PNG")
    return rel


async def remix_source(account: Account, value: Any) -> Clip:
    """The clip *value* (an id or URI) names, if *account* may remix it: one it can see, public
    or unlisted unless it is the account's own. :class:`RenderLimitError` otherwise."""
    clip = None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        clip = await Clip.get_or_none(pk=int(value), deleted_at=None)
    elif isinstance(value, str):
        clip = await Clip.get_or_none(uri=value, deleted_at=None)
    if clip is None or not await can_see_clip(account, clip):
        raise RenderLimitError("remix_of", "the clip to remix does not exist or is not visible")
    if clip.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED) and (
        clip.account_id != account.pk
    ):
        raise RenderLimitError("remix_of", "only public or unlisted clips can be remixed")
    return clip


async def input_still(account: Account, media_id: int) -> MediaFile:
    """*account*'s uploaded image *media_id*, the still of an image-to-video render
    (:class:`Invalid` when it is not theirs or not an image)."""
    media = await MediaFile.get_or_none(pk=media_id)
    if media is None or media.account_id != account.pk:
        raise Invalid(f"media {media_id} does not exist or is not yours")
    if media.kind != MediaKind.IMAGE or not media.file:
        raise Invalid("media_id must name an image you uploaded (the still to animate)")
    return media


@dataclass(frozen=True)
class RenderLimits:
    """What a create form tells the person before they ask: the limits :func:`submit_render`
    applies with this instance's settings and model."""

    family: str
    """The configured model's family (``render.spec.FAMILIES``)."""
    max_seconds: float
    aspects: tuple[str, ...]
    max_prompt_chars: int
    cameos: bool
    """Whether the model renders cameos (reference images)."""
    audio: bool
    """Whether the model renders a sound track (the default of a request's ``audio``)."""
    concurrent_jobs: int
    clips_per_day: int


def render_limits(settings: Settings) -> RenderLimits:
    """The limits of a render request here (no weights loaded; :class:`ModelLoadError` when
    the configured model cannot be read)."""
    family = family_named(model_family(settings))
    return RenderLimits(
        family=family.name,
        max_seconds=seconds_cap(family, settings.max_clip_seconds),
        aspects=tuple(a for a in ASPECTS if a in family.sizes),
        max_prompt_chars=MAX_PROMPT_CHARS,
        cameos=model_takes_references(settings),
        audio=family.audio,
        concurrent_jobs=settings.render_concurrent_jobs,
        clips_per_day=settings.render_clips_per_day,
    )


async def drafts_of(account: Account, *, limit: int = 40) -> list[RenderJob]:
    """*account*'s renders that are not over and not published yet (queued, running or
    ready: the drafts), newest first."""
    return (
        await RenderJob.filter(account_id=account.pk, state__in=(QUEUED, *ACTIVE, READY))
        .order_by("-id")
        .limit(limit)
    )


@dataclass(frozen=True)
class RenderQuotas:
    """One account's render quotas: the instance's settings, or an admin's override of each
    (:func:`set_quota_override`)."""

    concurrent_jobs: int
    clips_per_day: int
    gpu_seconds_per_day: float
    overridden: frozenset[str] = frozenset()
    """The names of the quotas an override sets for this account."""


QUOTA_RANGES: dict[str, tuple[float, float]] = {
    "concurrent_jobs": (0, 1000),
    "clips_per_day": (0, 100000),
    "gpu_seconds_per_day": (0.0, 86400.0 * 64),
}
"""The values an override may take (0 stops the account's renders); the settings' own
ranges, with 0 allowed for concurrent jobs too."""


async def _quotas(
    account_id: int, settings: Settings, conn: BaseDBAsyncClient | None = None
) -> RenderQuotas:
    rows = (
        await RenderQuotaGuard.filter(account_id=account_id)
        .using_db(conn)
        .values("concurrent_jobs", "clips_per_day", "gpu_seconds_per_day")
    )
    override: dict[str, Any] = rows[0] if rows else {}
    set_ = frozenset(k for k in QUOTA_RANGES if override.get(k) is not None)

    def pick(name: str, default: Any) -> Any:
        return override[name] if name in set_ else default

    return RenderQuotas(
        concurrent_jobs=int(pick("concurrent_jobs", settings.render_concurrent_jobs)),
        clips_per_day=int(pick("clips_per_day", settings.render_clips_per_day)),
        gpu_seconds_per_day=float(pick("gpu_seconds_per_day", settings.render_gpu_seconds_per_day)),
        overridden=set_,
    )


@dataclass(frozen=True)
class RenderUsage:
    """What an account used of its quotas in the current window (the last 24 hours)."""

    in_flight: int
    clips: int
    gpu_seconds: float
    quotas: RenderQuotas


async def render_usage(
    account: Account, settings: Settings, conn: BaseDBAsyncClient | None = None
) -> RenderUsage:
    """*account*'s renders queued or running, its clips and GPU-seconds of the last 24 hours,
    and its quotas: what :func:`submit_render` checks (the admin page shows it)."""
    jobs = RenderJob.filter(account_id=account.pk).using_db(conn)
    in_flight = await jobs.filter(state__in=(QUEUED, *ACTIVE)).count()
    recent = jobs.filter(created_at__gte=utcnow() - _DAY)
    clips = await recent.exclude(state__in=(FAILED, CANCELLED)).count()
    used_rows = await recent.annotate(s=Sum("gpu_seconds")).values_list("s", flat=True)
    total: Any = used_rows[0] if used_rows else None
    return RenderUsage(
        in_flight=in_flight,
        clips=clips,
        gpu_seconds=float(total or 0.0),
        quotas=await _quotas(account.pk, settings, conn),
    )


async def _check_quotas(
    account: Account, settings: Settings, conn: BaseDBAsyncClient | None = None
) -> None:
    usage = await render_usage(account, settings, conn)
    quotas = usage.quotas
    if usage.in_flight >= quotas.concurrent_jobs:
        raise RenderQuotaError(
            "concurrent_jobs",
            f"you have {usage.in_flight} renders queued or running; at most "
            f"{quotas.concurrent_jobs} at a time. Wait for one to finish or cancel one",
        )
    if usage.clips >= quotas.clips_per_day:
        raise RenderQuotaError(
            "clips_per_day",
            f"you requested {usage.clips} clips in the last 24 hours; the limit is "
            f"{quotas.clips_per_day} per day",
        )
    if usage.gpu_seconds >= quotas.gpu_seconds_per_day:
        raise RenderQuotaError(
            "gpu_seconds_per_day",
            f"your renders used {usage.gpu_seconds:.0f} of {quotas.gpu_seconds_per_day:.0f} "
            "GPU-seconds in the last 24 hours; try again later",
        )


async def set_quota_override(
    by: Account,
    account: Account,
    *,
    concurrent_jobs: int | None,
    clips_per_day: int | None,
    gpu_seconds_per_day: float | None,
    settings: Settings,
) -> RenderQuotas:
    """Set (a number) or clear (None) *account*'s override of each render quota, enforced by
    the same check as the settings (:func:`submit_render`); audited as ``render.quota``.
    :class:`Invalid` for a value outside :data:`QUOTA_RANGES` or a remote account."""
    if not account.local:
        raise Invalid("only local accounts render: a remote account has no render quota")
    values: dict[str, Any] = {
        "concurrent_jobs": concurrent_jobs,
        "clips_per_day": clips_per_day,
        "gpu_seconds_per_day": gpu_seconds_per_day,
    }
    for name, value in values.items():
        low, high = QUOTA_RANGES[name]
        if value is not None and not (low <= value <= high):
            label = name.replace("_", " ")
            raise Invalid(f"{label} must be between {low:g} and {high:g} (or empty: the default)")
    await _ensure_quota_guard(account)
    await RenderQuotaGuard.filter(account_id=account.pk).update(**values)
    detail = ", ".join(
        f"{name}={'default' if value is None else f'{value:g}'}" for name, value in values.items()
    )
    await audit.record(by, "render.quota", account, detail)
    return await _quotas(account.pk, settings)


async def _ensure_quota_guard(account: Account) -> None:
    """Create the account's guard row once (outside any transaction: a race is harmless)."""
    if not await RenderQuotaGuard.exists(account_id=account.pk):
        with contextlib.suppress(IntegrityError):
            await RenderQuotaGuard.create(account_id=account.pk)


def _check_owner(account: Account, job: RenderJob) -> None:
    if job.account_id != account.pk:
        raise NotFound("no such render job")


# --------------------------------------------------------------------------- use cases


async def submit_render(
    account: Account,
    spec_dict: dict[str, Any],
    *,
    settings: Settings,
    engine: Engine | None = None,
    image: bytes | str | Path | MediaFile | None = None,
    priority: int = 0,
    enforce_quota: bool = True,
    once: idempotency.Key | None = None,
) -> RenderJob:
    """Validate a render request and queue it.

    With *once* (:meth:`~fedisora.services.idempotency.Key.for_render`), a request whose key
    already queued a render within the key's time answers that render, checking nothing
    again; the key is stored in the transaction that inserts the job, so two concurrent
    requests with one key queue one render.

    *spec_dict* holds ``prompt``, and optionally ``negative_prompt``, ``seconds``, ``aspect``,
    ``seed`` (drawn at random when absent), ``kind``, ``remix_of`` (a clip id or URI),
    ``cameos`` (account ids) and ``audio`` (a sound track: on by default where the model
    renders one; asked of a model without sound, a ``RenderLimitError`` naming ``audio``).
    The still for an image-to-video render comes as *image* (bytes, a path, or the account's
    uploaded image as a :class:`MediaFile`, whose description the prompt policy checks too)
    or ``spec_dict["input_image"]``. Admin tools pass a higher
    *priority* and may skip quotas.

    Every text that shapes the render (the prompt, the remixed clip's caption and prompt, the
    still's description, the cameo likenesses' restrictions) passes the prompt policy first
    (:func:`fedisora.services.prompt_policy.check_render`; :class:`PolicyRefused`, a 422).
    """
    if not account.local or account.suspended_at is not None:
        raise Forbidden("only active local accounts can render")
    from render import models

    settings = await models.effective(settings)  # the model in use, as an admin chose it
    if once is not None and (made := await render_made_by(account, once)) is not None:
        return made
    if enforce_quota:  # the ``render`` rate limit, besides the quotas (RateLimited, a 429)
        await ratelimits.enforce("render", f"account:{account.pk}")
    unknown = sorted(set(spec_dict) - _SPEC_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(_SPEC_FIELDS))
        raise RenderLimitError("spec", f"unknown field(s) {', '.join(unknown)}; allowed: {allowed}")
    family = model_family(settings)

    image_description = ""
    if isinstance(image, MediaFile):
        if not image.file:
            raise RenderLimitError("input_image", "the still has no file")
        image_description = image.description
        try:  # (a still is small: at most MAX_INPUT_IMAGE_BYTES)
            image = await media_store(settings).get_bytes(image.file)
        except FileNotFoundError:
            raise RenderLimitError("input_image", "cannot be read: its file is gone") from None
    prompt = spec_dict.get("prompt", "")
    remix: Clip | None = None
    remix_prompt = ""
    if spec_dict.get("remix_of") is not None:
        remix = await remix_source(account, spec_dict["remix_of"])
        if remix.render_job_id:
            source = await RenderJob.get_or_none(pk=remix.render_job_id)
            remix_prompt = str(source.spec.get("prompt", "")) if source is not None else ""
        if not (isinstance(prompt, str) and prompt.strip()):
            prompt = remix_prompt
    seed = spec_dict.get("seed")
    seed = secrets.randbelow(MAX_SEED + 1) if seed is None else _number("seed", seed, int)
    image_input = image if image is not None else spec_dict.get("input_image")
    kind = spec_dict.get("kind") or (
        "remix" if remix is not None else "image" if image_input is not None else "text"
    )
    cameos_raw = spec_dict.get("cameos") or []
    if not isinstance(cameos_raw, list | tuple):
        raise RenderLimitError("cameos", "must be a list of account ids")
    cameos = [_number("cameos", c, int) for c in cameos_raw]
    audio_raw = spec_dict.get("audio")
    audio = family_named(family).audio if audio_raw is None else _flag("audio", audio_raw)
    spec = RenderSpec(
        prompt=prompt,
        seed=seed,
        negative_prompt=spec_dict.get("negative_prompt") or "",
        seconds=_number("seconds", spec_dict.get("seconds", 5.0), float),
        aspect=spec_dict.get("aspect") or "9:16",
        kind=kind,
        input_image="(pending)" if image_input is not None else None,
        remix_source=remix.uri if remix is not None else None,
        cameo_refs=tuple(f"account:{c}" for c in cameos),
        audio=audio,
    )
    p = plan(spec, family, settings.max_clip_seconds, steps=settings.render_steps or None)
    if cameos and not model_takes_references(settings):  # (plan refused families without any)
        raise RenderLimitError(
            "cameos",
            "this instance's render model cannot render cameos: it takes no reference images "
            "(a Wan VACE model does)",
        )
    if cameos:
        found = await Account.filter(pk__in=cameos).count()
        if found != len(set(cameos)):
            raise RenderLimitError("cameos", "names an account that does not exist")
    restrictions = (
        await Likeness.filter(account_id__in=cameos)
        .exclude(restrictions="")
        .select_related("account")
        if cameos
        else []
    )
    await prompt_policy.check_render(
        prompt=spec.prompt,
        remix_caption=remix.caption if remix is not None else "",
        remix_prompt=remix_prompt,
        image_description=image_description,
        cameo_restrictions=[(lk.account.acct, lk.restrictions) for lk in restrictions],
    )
    if enforce_quota:  # refuse early, before storing anything; checked again atomically below
        await _check_quotas(account, settings)
        await _ensure_quota_guard(account)
    consents: list[Any] = []
    if cameos:
        # Refused at request time (422 naming the reason; the check is audited and the
        # owner told); checked again by the worker before rendering and before publishing.
        decision, consents = await check_cameos_for_request(account, cameos)
        if not decision.allowed:
            raise RenderLimitError("cameos", f"cameo refused: {decision.reason}")
    stored_image = None
    if image_input is not None:  # decoding a large still must not block the event loop
        with disk_space():
            stored_image = await asyncio.to_thread(_store_input_image, image_input, settings)
        try:
            await media_store(settings).commit(stored_image)
        except BaseException:  # the store is down: no job without its still
            media_store(settings).staging(stored_image).unlink(missing_ok=True)
            raise

    values: dict[str, Any] = {
        "account": account,
        "priority": priority,
        "progress_total": p.steps,
        "spec": {
            "prompt": spec.prompt,
            "negative_prompt": spec.negative_prompt,
            "seconds": spec.seconds,
            "aspect": spec.aspect,
            "seed": spec.seed,
            "kind": spec.kind,
            "input_image": stored_image,
            "remix_source": spec.remix_source,
            "remix_clip_id": remix.pk if remix is not None else None,
            "cameos": cameos,
            "family": family,
            "audio": spec.audio,
        },
    }
    try:
        async with in_transaction() as conn:
            if enforce_quota:
                # Serialises this account's submits until commit: see RenderQuotaGuard.
                await (
                    RenderQuotaGuard.filter(account_id=account.pk)
                    .using_db(conn)
                    .update(submits=F("submits") + 1)
                )
            # (after the guard: a twin request that went first has committed its key by now)
            if once is not None and (made := await render_made_by(account, once, conn)) is not None:
                raise _Again(made)
            if enforce_quota:
                await _check_quotas(account, settings, conn)
            now = engine.clock() if engine is not None else utcnow()
            job = await RenderJob.create(
                using_db=conn,
                state=GRAPH.initial,
                state_changed_at=now,
                next_attempt_at=now,
                created_at=now,
                **values,
            )
            if once is not None:
                await idempotency.record(conn, once, job.pk)
    except (_Again, idempotency.Replayed) as exc:
        if stored_image is not None:
            await media_store(settings).delete([stored_image])
        made = exc.job if isinstance(exc, _Again) else await render_made_by(account, exc.key)
        if made is None:
            raise
        return made
    except BaseException:
        if stored_image is not None:
            with contextlib.suppress(Exception):  # (the store down as well: an orphan object)
                await media_store(settings).delete([stored_image])
        raise
    if consents:  # each owner is told of the request
        await record_requested(consents, account, job)
    if engine is not None:  # after commit, so the woken runner finds the row
        await engine.wake(engine.machine_for(RenderJob), job)
    return job


class _Again(Exception):  # control flow inside submit_render: never escapes it
    """The key of a request queued a render while this one waited for its turn."""

    def __init__(self, job: RenderJob) -> None:
        super().__init__(job.pk)
        self.job = job


async def render_made_by(
    account: Account, once: idempotency.Key, conn: BaseDBAsyncClient | None = None
) -> RenderJob | None:
    """The render *once* queued within its time, if it queued one."""
    job_id = await idempotency.previous(once, conn)
    if job_id is None:
        return None
    return await RenderJob.filter(pk=job_id, account_id=account.pk).using_db(conn).first()


def _engine(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from render.queue import build_render_machine

    # Moves need only the graph; the handlers of this throwaway engine never run.
    return Engine([build_render_machine(Settings())])


async def cancel_render(
    account: Account,
    job: RenderJob,
    *,
    engine: Engine | None = None,
    reason: str = "cancelled by its owner",
) -> RenderJob:
    """Cancel *job* in any live state; returns the job as it now stands.

    A queued or ready job (or one whose worker died) moves to ``cancelled`` at once. A job a
    worker is running gets ``cancel_requested``: the worker stops at the next denoising step
    (or before its next stage) and moves it to ``cancelled`` itself.
    """
    _check_owner(account, job)
    return await _cancel(job, engine, reason)


async def _cancel(job: RenderJob, engine: Engine | None, reason: str) -> RenderJob:
    if job.state in (PUBLISHED, FAILED, CANCELLED):
        raise Conflict(f"this render is already {job.state}")
    await RenderJob.filter(pk=job.pk).update(cancel_requested=True)
    eng = _engine(engine)
    live = [QUEUED, RENDERING, ENCODING, SIGNING, READY]
    await eng.move(RenderJob, job.pk, live, CANCELLED, last_error=reason)
    return await RenderJob.get(pk=job.pk)


ADMIN_CANCELLABLE = (QUEUED, *ACTIVE)
"""The states in which an admin cancels a render (a ready one is its owner's to discard)."""
REQUEUEABLE = (FAILED, CANCELLED)


async def admin_cancel_render(
    by: Account, job: RenderJob, *, engine: Engine | None = None
) -> RenderJob:
    """An admin cancels someone's queued or running render, as :func:`cancel_render` does for
    its owner (the owner reads "cancelled by an admin"); audited as ``render.cancel``.
    :class:`Conflict` in any other state."""
    if job.state not in ADMIN_CANCELLABLE:
        raise Conflict(f"only a queued or running render can be cancelled; this one is {job.state}")
    cancelled = await _cancel(job, engine, "cancelled by an admin")
    await audit.record(by, "render.cancel", _job_target(job), f"was {job.state}")
    return cancelled


def _copy(source: Path, dst: Path) -> None:
    from render.encode import atomic_path

    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        shutil.copyfile(source, tmp)


def _job_target(job: RenderJob) -> str:
    return audit.target("render_job", job.pk, f"render {job.pk}")


_REQUEST_KEYS = (
    "prompt",
    "negative_prompt",
    "seconds",
    "aspect",
    "seed",
    "kind",
    "input_image",
    "remix_source",
    "remix_clip_id",
    "cameos",
    "family",
    "audio",
)
"""What :func:`submit_render` stores in a job's spec (the stages add their own keys)."""


async def requeue_render(
    by: Account,
    job: RenderJob,
    *,
    settings: Settings,
    engine: Engine | None = None,
) -> RenderJob:
    """An admin queues a failed or cancelled render again: a new job for the same owner with
    the same request (seed included), at the same priority, outside the owner's quotas (an
    admin's action; the render slots still apply). Failed and cancelled are final states, so
    the old job stays as it ended. Cameo consent is checked again by the worker, as for any
    render. Audited as ``render.requeue``. :class:`Conflict` when the job is in another state,
    its owner cannot render any more, or its still is gone."""
    if job.state not in REQUEUEABLE:
        raise Conflict(
            f"only a failed or cancelled render can be queued again; this is {job.state}"
        )
    owner = await Account.get(pk=job.account_id)
    if not owner.local or owner.suspended_at is not None:
        raise Conflict("its owner's account is suspended: the render cannot be queued again")
    spec = {k: job.spec[k] for k in _REQUEST_KEYS if k in job.spec}
    still = spec.get("input_image")
    if still:  # a copy of its own: retention removes a finished job's still
        store = media_store(settings)
        spec["input_image"] = f"render-inputs/{uuid.uuid4().hex}.png"
        staged = store.staging(spec["input_image"])
        try:
            async with store.local_copy(str(still)) as source:
                with disk_space():
                    await asyncio.to_thread(_copy, source, staged)
        except FileNotFoundError:
            raise Conflict(
                "its still image is gone (removed with the finished job): ask for a new one"
            ) from None
        try:
            await store.commit(spec["input_image"])
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
    now = engine.clock() if engine is not None else utcnow()
    new = await RenderJob.create(
        account_id=owner.pk,
        priority=job.priority,
        progress_total=job.progress_total,
        spec=spec,
        state=GRAPH.initial,
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    await audit.record(by, "render.requeue", _job_target(job), f"queued again as render {new.pk}")
    if engine is not None:
        await engine.wake(engine.machine_for(RenderJob), new)
    return new


_STAGE_PERCENT = {QUEUED: 0, RENDERING: 0, ENCODING: 92, SIGNING: 96, READY: 100, PUBLISHED: 100}


async def render_progress(job: RenderJob) -> dict[str, Any]:
    """What a progress bar needs: state, step i of n, percent, queue position, error."""
    total = job.progress_total or 0
    step = min(job.progress_step or 0, total) if total else 0
    if job.state == RENDERING or job.state in (FAILED, CANCELLED):
        percent = 90 * step // total if total else 0
    else:
        percent = _STAGE_PERCENT.get(job.state, 0)
    return {
        "id": str(job.pk),
        "state": job.state,
        "step": step,
        "total": total,
        "percent": percent,
        "queue_position": await queue_position(job),
        "cancel_requested": job.cancel_requested,
        "error": job.last_error if job.state in (FAILED, CANCELLED) else "",
        "media_id": str(job.output_id) if job.output_id else None,
        "done": job.state in OVER,
    }


async def publish_render(
    account: Account,
    job: RenderJob,
    *,
    caption: str = "",
    visibility: str | Visibility = Visibility.PUBLIC,
    sensitive: bool = False,
    spoiler_text: str = "",
    language: str | None = None,
    engine: Engine | None = None,
    once: idempotency.Key | None = None,
) -> Clip:
    """Post a ready render as a clip and move the job to ``published`` (once).

    The job is held with a short lease while ``post_clip`` runs, so two concurrent publishes
    cannot both post; the job moves to ``published`` in the clip's own transaction (with the
    ``Idempotency-Key`` *once*), so no crash leaves one without the other. A clip posted by an
    older version, which moved the job after that transaction, is found by publishing again,
    which completes the move instead of posting twice.
    """
    _check_owner(account, job)
    if job.state != READY or job.output_id is None:
        raise Conflict(f"only a ready render can be published; this one is {job.state}")
    cameos = [int(i) for i in job.spec.get("cameos") or ()]
    decision = await check_cameo_consent(job, cameos, publish=True)
    if not decision.allowed:
        raise Forbidden(f"cameo refused: {decision.reason}")
    eng = _engine(engine)
    now = eng.clock()
    token = str(uuid.uuid4())
    held = await RenderJob.filter(
        Q(pk=job.pk)
        & Q(state=READY)
        & Q(cancel_requested=False)
        & (Q(locked_until=None) | Q(locked_until__lt=now))
    ).update(locked_until=now + eng.lease, lock_token=token)
    if not held:
        raise Conflict("this render is being published or cancelled right now")

    async def published(conn: BaseDBAsyncClient, clip: Clip) -> None:
        await Clip.filter(pk=clip.pk).using_db(conn).update(render_job_id=job.pk)
        GRAPH.check_transition(READY, PUBLISHED)
        moved = (
            await RenderJob.filter(pk=job.pk, lock_token=token)
            .using_db(conn)
            .update(
                state=PUBLISHED,
                state_changed_at=eng.clock(),
                attempts=0,
                next_attempt_at=None,
                locked_until=None,
                lock_token=None,
                last_error="",
            )
        )
        if not moved:
            raise Invalid("the render changed while it was being published")

    try:
        existing = await Clip.get_or_none(media_id=job.output_id, deleted_at=None)
        if existing is not None and existing.account_id == account.pk:
            clip = existing
            async with in_transaction() as conn:
                await published(conn, clip)
        else:
            media = await MediaFile.get(pk=job.output_id)
            remix = None
            if job.spec.get("remix_clip_id"):
                remix = await Clip.get_or_none(pk=job.spec["remix_clip_id"], deleted_at=None)
            by_id = {a.pk: a for a in await Account.filter(pk__in=cameos)} if cameos else {}
            refs: list[str | None] = [*decision.refs, *([None] * len(cameos))]
            clip = await posts.post_clip(
                account,
                media,
                caption=caption,
                visibility=visibility,
                sensitive=sensitive,
                spoiler_text=spoiler_text,
                language=language,
                remix_of=remix,
                cameos=[(by_id[c], refs[i]) for i, c in enumerate(cameos) if c in by_id],
                once=once,
                within=published,
            )
    except BaseException:
        await RenderJob.filter(pk=job.pk, lock_token=token).update(
            locked_until=None, lock_token=None
        )
        raise
    if cameos or clip.remix_of_id is not None:  # the people in it are told
        await record_published(job, clip)
    return await Clip.get(pk=clip.pk)
