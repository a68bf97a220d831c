"""fedisora's own render endpoints under ``/api/fedisora/v1/renders`` (Mastodon has none).

They live outside Mastodon's ``/api/v1`` and ``/api/v2`` so that no future Mastodon endpoint can
collide with them; the OpenAPI description is at ``/api/fedisora/openapi.json``.

- ``POST /api/fedisora/v1/renders`` queues a render (scope ``write:media``, ``write:statuses``
  or ``write``): ``prompt``, ``seconds`` (or ``duration``), ``aspect`` (9:16, 1:1, 16:9),
  ``seed``, ``negative_prompt``, ``media_id`` (an image you uploaded through
  ``POST /api/v2/media``: image-to-video), ``remix_of_id`` (a clip you can see) and
  ``cameo_ids[]`` (accounts whose likeness to use) and ``audio`` (a sound track: true by
  default where the model renders one, LTX-2; true on a model without sound is a 422 naming
  ``audio``, which ``configuration.fedisora_renders.audio`` of ``/api/v2/instance`` tells
  beforehand). 202 with the Render entity. A retry with
  the same ``Idempotency-Key`` header answers the render the first try queued.
- ``GET /api/fedisora/v1/renders`` lists your renders, newest first, paginated like Mastodon
  (``max_id``/``since_id``/``min_id``/``limit``, ``Link`` header). Scope ``read``.
- ``GET /api/fedisora/v1/renders/:id`` is one render: state, progress, queue position and, once
  ready, ``media_attachment`` (post it with ``POST /api/v1/statuses`` and ``media_ids[]``).
- ``GET /api/fedisora/v1/renders/:id/events`` streams ``progress`` server-sent events until an
  ``end`` event (``render.http``).
- ``POST /api/fedisora/v1/renders/:id/cancel`` (or ``DELETE /api/fedisora/v1/renders/:id``)
  cancels a render in any live state; 409 once it is over.

Other people's renders answer 404, exactly like missing ones.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from fedisora.api.entities import iso, media_entity
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.lookup import get_status
from fedisora.api.pagination import Page, link_header, page_of
from fedisora.errors import FedisoraError, Invalid, NotFound
from fedisora.models import Clip, MediaFile, RenderJob
from fedisora.services import idempotency
from fedisora.work import Engine

__all__ = ["PREFIX", "ModelUnavailable", "render_entities", "routes"]

log = logging.getLogger("fedisora.render")

PREFIX = "/api/fedisora/v1/renders"
_MAX_CAMEOS_PARAM = 16  # the render spec allows fewer; this only bounds parsing


class ModelUnavailable(FedisoraError):
    """The configured render model cannot be loaded: the instance cannot render right now."""

    status = 503


def _engine(ctx: Ctx) -> Engine | None:
    engine: Engine | None = getattr(ctx.request.app.state, "engine", None)
    return engine


async def render_entities(jobs: list[RenderJob]) -> list[dict[str, Any]]:
    """Render entities for *jobs* (their outputs and published clips loaded in batches)."""
    from render.service import render_progress

    output_ids = [j.output_id for j in jobs if j.output_id is not None]
    media = {m.pk: m for m in await MediaFile.filter(pk__in=output_ids)} if output_ids else {}
    posted: dict[int, int] = {}
    if output_ids:
        for clip in await Clip.filter(media_id__in=output_ids, deleted_at=None):
            if clip.media_id is not None:
                posted[clip.media_id] = clip.pk
    out = []
    for job in jobs:
        progress = await render_progress(job)
        spec = job.spec or {}
        output = media.get(job.output_id) if job.output_id is not None else None
        remix = spec.get("remix_clip_id")
        out.append(
            {
                **progress,
                "created_at": iso(job.created_at),
                "finished_at": iso(job.finished_at),
                "prompt": spec.get("prompt", ""),
                "negative_prompt": spec.get("negative_prompt", ""),
                "seconds": spec.get("seconds"),
                "aspect": spec.get("aspect"),
                "seed": spec.get("seed"),
                "kind": spec.get("kind"),
                "audio": bool(spec.get("audio", False)),
                "remix_of_id": None if remix is None else str(remix),
                "cameo_ids": [str(c) for c in spec.get("cameos") or ()],
                "media_attachment": None if output is None else media_entity(output),
                "status_id": None if output is None else _str(posted.get(output.pk)),
            }
        )
    return out


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


async def _job(ctx: Ctx, name: str = "id") -> RenderJob:
    job_id = ctx.path_id(name)
    job = await RenderJob.get_or_none(pk=job_id) if job_id >= 0 else None
    if job is None or job.account_id != ctx.me.pk:
        raise NotFound("Record not found")
    return job


async def _input_image(ctx: Ctx) -> MediaFile | None:
    from render.service import input_still

    media_id = ctx.params.id("media_id")
    if media_id is None:
        media_id = ctx.params.id("input_media_id")
    if media_id is None:
        return None
    return await input_still(ctx.me, media_id)


async def _spec(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    for name in ("prompt", "negative_prompt", "seconds", "duration", "aspect", "seed", "audio"):
        if len(p.items(name)) > 1:
            raise Invalid(f"{name} must be a single value")
    spec: dict[str, Any] = {"prompt": p.text("prompt", "")}
    seconds = p.raw("seconds") if "seconds" in p else p.raw("duration")
    for name, value in (
        ("seconds", seconds),
        ("aspect", p.text("aspect")),
        ("seed", p.raw("seed")),
        ("negative_prompt", p.text("negative_prompt")),
    ):
        if value is not None and value != "":
            if isinstance(value, (dict, list)):
                raise Invalid(f"{name} must be a single value")
            spec[name] = value
    audio = p.raw("audio")
    if audio is not None and audio != "":
        if isinstance(audio, (dict, list)):
            raise Invalid("audio must be a single value")
        spec["audio"] = audio  # true/false, checked (and defaulted) by submit_render
    remix_id = p.id("remix_of_id")
    if remix_id is None:
        remix_id = p.id("remix_status_id")
    if remix_id is not None:
        source = await get_status(ctx.me, remix_id)
        if not isinstance(source, Clip):
            raise Invalid("only clips can be remixed, not comments")
        spec["remix_of"] = source.pk
    cameo_ids = p.id_list("cameo_ids") or p.id_list("cameo_account_ids")
    if len(cameo_ids) > _MAX_CAMEOS_PARAM:
        raise Invalid(f"cameo_ids: at most {_MAX_CAMEOS_PARAM} accounts")
    if any(c < 0 for c in cameo_ids):
        raise Invalid("cameo_ids names an account that does not exist")
    if cameo_ids:
        spec["cameos"] = cameo_ids
    return spec


@endpoint("write", "write:media", "write:statuses", user=True)
async def create(ctx: Ctx) -> Response:
    from render.errors import ModelLoadError, RenderLimitError
    from render.service import submit_render

    once = idempotency.Key.for_render(ctx.me.pk, ctx.request.headers.get("idempotency-key"))
    spec = await _spec(ctx)
    still = await _input_image(ctx)
    settings = ctx.settings
    try:
        job = await submit_render(
            ctx.me,
            spec,
            settings=settings,
            engine=_engine(ctx),
            image=still,
            once=once,
        )
    except RenderLimitError as exc:
        raise Invalid(str(exc)) from None
    except ModelLoadError as exc:  # the detail names server paths: logs only
        log.error("render refused: the render model cannot be loaded: %s", exc)
        raise ModelUnavailable(ModelLoadError.PUBLIC) from None
    return json((await render_entities([job]))[0], 202)


@endpoint("read", "read:statuses", user=True)
async def list_mine(ctx: Ctx) -> Response:
    page = Page.from_params(ctx.params, default=20, maximum=40)
    jobs = await page_of(RenderJob.filter(account_id=ctx.me.pk), page)
    headers = link_header(ctx.request, jobs[0].pk, jobs[-1].pk) if jobs else {}
    return json(await render_entities(jobs), headers=headers)


@endpoint("read", "read:statuses", user=True)
async def get_one(ctx: Ctx) -> Response:
    return json((await render_entities([await _job(ctx)]))[0])


@endpoint("write", "write:media", "write:statuses", user=True)
async def cancel(ctx: Ctx) -> Response:
    from render.service import cancel_render

    job = await cancel_render(ctx.me, await _job(ctx), engine=_engine(ctx))
    return json((await render_entities([job]))[0])


@endpoint("read", "read:statuses", user=True)
async def events(ctx: Ctx) -> Response:
    """Server-sent progress events (``render.http.render_events`` for the token's account)."""
    from fedisora.api.streaming import guard
    from fedisora.streaming.channels import Viewer
    from render.http import render_events

    await _job(ctx, "job_id")  # 404 before a stream starts, with the API's error shape
    ctx.request.state.account = ctx.me
    response = await render_events(ctx.request)
    if not isinstance(response, StreamingResponse):
        return response
    # limited and ended with its token like the streaming API's streams
    assert ctx.token is not None
    viewer = Viewer(ctx.me, tuple(ctx.token.scopes.split()))
    return guard(ctx.request, viewer, ctx.token.pk, response)


def routes() -> list[BaseRoute]:
    return [
        *api_route(PREFIX, create, ["POST"]),
        *api_route(PREFIX, list_mine, ["GET"]),
        *api_route(f"{PREFIX}/{{id}}", get_one, ["GET"]),
        *api_route(f"{PREFIX}/{{id}}", cancel, ["DELETE"]),
        *api_route(f"{PREFIX}/{{id}}/cancel", cancel, ["POST"]),
        *api_route(f"{PREFIX}/{{job_id}}/events", events, ["GET"]),
    ]
