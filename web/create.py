"""Creating clips in the browser: the create form, a render's page with its live progress,
publishing, and the drafts (issue 15, point 2).

- ``/create`` (GET the form, POST it): prompt, seconds (up to the instance's limit, shown),
  aspect, an optional still (image-to-video), the clip to remix (``?remix_of=ID``, shown) and
  cameos (the likenesses the person may use, with their owners' restrictions and an "I
  accept" box). The POST calls the services the API calls: the still is stored by
  :func:`fedisora.services.uploads.store_upload` (as ``POST /api/v2/media``), the render is
  queued by :func:`render.service.submit_render` (as ``POST /api/fedisora/v1/renders``), a
  restriction accepted is a likeness request (:func:`fedisora.services.likeness.request_use`,
  as ``POST .../likeness/requests``). A refusal (a limit, a quota, a still that is no image,
  a clip that cannot be remixed, a cameo refused) is the form again, with the message in
  words, a 4xx status and the values entered. Each form carries a token: the same form sent
  twice queues one render (an idempotency key, :meth:`~fedisora.services.idempotency.Key.
  for_render`).
- ``/renders/{id}``: the render's progress bar (``role="progressbar"``; queue position, then
  steps), fed by ``/renders/{id}/events`` (the API's server-sent events,
  :func:`render.http.progress_stream`, for the session's account; each event carries a
  ``label``) through ``/static/create.js``; without JavaScript the page reloads itself every
  few seconds. Cancel; once ready, a looping preview with the Publish form (caption,
  visibility, content warning: :func:`render.service.publish_render`, as
  ``POST /api/v1/statuses`` with the render's media) or "Keep as draft".
- ``/drafts``: the person's renders that are queued, running or ready and not published, with
  publish (the render's page) and delete (:func:`render.service.cancel_render`, as the API's
  ``DELETE /api/fedisora/v1/renders/:id``; a ready render's video is removed).

Rendering runs in the work engine, not in the request: a render keeps going when the tab is
closed and is in ``/drafts`` when the person comes back. A page opened without a live session
(expired mid-render) goes to the login page with ``next=`` back to it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora import urls
from fedisora.boundary import read_form
from fedisora.boundary.limits import IMAGE_SIZE_LIMIT
from fedisora.errors import Conflict, FedisoraError, RateLimited
from fedisora.ids import row_id
from fedisora.models import Account, Clip, MediaFile, RenderJob, Visibility
from fedisora.services import idempotency, posts
from fedisora.services import likeness as likenesses
from fedisora.services.sessions import LiveSession
from fedisora.services.uploads import store_upload
from fedisora.work import Engine
from render.errors import ModelLoadError, RenderLimitError
from render.states import CANCELLED, ENCODING, FAILED, PUBLISHED, QUEUED, READY, SIGNING
from web.clips import ClipCard, clip_cards, profile_path
from web.pages import render
from web.sessions import CSRF_FIELD, check_csrf, csrf_matches, current_session

__all__ = ["REFRESH_SECONDS", "progress_label", "routes"]

log = logging.getLogger("fedisora.web.create")

REFRESH_SECONDS = 5
"""How often a render's page (and the drafts, while one runs) reloads itself without
JavaScript: the templates' ``<meta http-equiv="refresh" content="5">`` (a literal there)."""
_NO_RENDER = "There is no such render, or it is not yours."
_FIELD_LABELS = {
    "prompt": "Prompt",
    "negative_prompt": "Negative prompt",
    "seconds": "Length",
    "aspect": "Aspect",
    "seed": "Seed",
    "input_image": "Still image",
    "still": "Still image",
    "remix_of": "Remix",
    "cameos": "Cameos",
    "media_id": "Still image",
    "audio": "Sound",
}
_FIELD_NAMES = {"input_image": "still", "media_id": "still", "cameo_refs": "cameos"}
_VISIBILITIES = (
    (Visibility.PUBLIC.value, "Public", "everyone, in the public feeds"),
    (Visibility.UNLISTED.value, "Unlisted", "everyone with the link, not in public feeds"),
    (Visibility.FOLLOWERS.value, "Followers", "your followers only"),
    (Visibility.DIRECT.value, "Direct", "only the people mentioned in the caption"),
)


# --------------------------------------------------------------------------- who is asking


def _login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path, safe='/')}", status_code=303)


def _session(request: Request, back: str) -> LiveSession | Response:
    """The live session; without one, the way to the login page and back to *back* (a form
    posted after the session expired is not lost work: the render, if any, is in /drafts)."""
    live = current_session(request)
    if live is not None:
        return live
    return _login_redirect(back)


def _engine(request: Request) -> Engine | None:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    return engine


async def _own_job(me: Account, raw: str) -> RenderJob | None:
    job_id = row_id(raw)
    job = await RenderJob.get_or_none(pk=job_id) if job_id is not None else None
    if job is None or job.account_id != me.pk:
        return None
    return job


# --------------------------------------------------------------------------- the form


@dataclass
class FormValues:
    """What the create form holds (as entered: a refused form is shown with them)."""

    form_token: str
    prompt: str = ""
    negative_prompt: str = ""
    seconds: str = ""
    aspect: str = "9:16"
    seed: str = ""
    remix_of: str = ""
    media_id: str = ""
    cameos: set[str] = field(default_factory=set)
    accept_restrictions: bool = False
    audio: bool | None = None
    """The sound checkbox; ``None`` when the form had none (the model's default applies)."""


@dataclass(frozen=True)
class CameoChoice:
    """One likeness the cameo picker offers."""

    account: Account
    restrictions: str
    accepted: bool
    approval_required: bool
    drafts_only: bool


@dataclass
class FormPage:
    values: FormValues
    errors: list[str] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)
    status: int = 200
    source: ClipCard | None = None
    still: MediaFile | None = None
    headers: dict[str, str] = field(default_factory=dict)  # a rate limit's, on a 429

    def refuse(self, message: str, status: int, name: str | None = None) -> None:
        self.errors.append(message)
        self.status = max(self.status, status)
        if name:
            self.invalid.add(_FIELD_NAMES.get(name, name))


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _values(form: FormData) -> FormValues:
    return FormValues(
        form_token=_text(form, "form_token") or secrets.token_urlsafe(18),
        prompt=_text(form, "prompt"),
        negative_prompt=_text(form, "negative_prompt"),
        seconds=_text(form, "seconds").strip(),
        aspect=_text(form, "aspect").strip() or "9:16",
        seed=_text(form, "seed").strip(),
        remix_of=_text(form, "remix_of").strip(),
        media_id=_text(form, "media_id").strip(),
        cameos={v.strip() for v in form.getlist("cameos") if isinstance(v, str) and v.strip()},
        accept_restrictions=_text(form, "accept_restrictions") in ("1", "on", "true", "yes"),
        # An unticked box sends nothing: "audio_shown" tells it from a form without the box.
        audio=(_text(form, "audio") in ("1", "on", "true", "yes"))
        if _text(form, "audio_shown")
        else None,
    )


def _limit_message(exc: RenderLimitError) -> str:
    label = _FIELD_LABELS.get(exc.limit, exc.limit.replace("_", " ").capitalize())
    return f"{label}: {exc.message}"


def _service_message(exc: FedisoraError) -> str:
    if isinstance(exc, RateLimited) and getattr(exc, "quota", None):
        text = exc.message.removeprefix(f"{getattr(exc, 'quota', '')}: ")
        return f"Render limit reached: {text}."
    return exc.message[:1].upper() + exc.message[1:]


async def _cameo_choices(me: Account) -> list[CameoChoice]:
    choices = []
    for account in await likenesses.usable_likenesses(me, limit=50):
        likeness = await likenesses.get_likeness(account)
        if likeness is None:
            continue
        choices.append(
            CameoChoice(
                account=account,
                restrictions=likeness.restrictions if account.pk != me.pk else "",
                accepted=await likenesses.restrictions_accepted(me, account),
                approval_required=likeness.approval_required and account.pk != me.pk,
                drafts_only=likeness.drafts_only and account.pk != me.pk,
            )
        )
    return choices


async def _source(me: Account, page: FormPage) -> None:
    """The clip to remix, shown above the form; a message when it cannot be remixed."""
    from render.service import remix_source

    raw = page.values.remix_of
    if not raw:
        return
    clip_id = row_id(raw)
    try:
        if clip_id is None:
            raise RenderLimitError("remix_of", "the clip to remix does not exist or is not visible")
        clip = await remix_source(me, clip_id)
    except RenderLimitError as exc:
        page.refuse(
            f"This clip cannot be remixed: {exc.message}. You can still create a clip of your own.",
            404 if "not visible" in exc.message else 403,
            "remix_of",
        )
        page.values.remix_of = ""
        return
    cards = await clip_cards(me, [clip], mutes=False)
    page.source = cards[0] if cards else None


async def _show_form(request: Request, me: Account, page: FormPage) -> Response:
    from render import models
    from render.service import render_limits

    settings = await models.effective(request.app.state.settings)
    try:
        limits = render_limits(settings)
    except ModelLoadError as exc:
        log.error("the create form: the render model cannot be read: %s", exc)
        limits = None
        page.refuse(ModelLoadError.PUBLIC[:1].upper() + ModelLoadError.PUBLIC[1:] + ".", 503)
    if page.still is None and page.values.media_id:
        media_id = row_id(page.values.media_id)
        still = await MediaFile.get_or_none(pk=media_id) if media_id is not None else None
        page.still = still if still is not None and still.account_id == me.pk else None
        if page.still is None:
            page.values.media_id = ""
    choices = await _cameo_choices(me) if limits is not None and limits.cameos else []
    default_seconds = f"{min(5.0, limits.max_seconds):g}" if limits is not None else "5"
    still_url = (
        urls.current().media(page.still.poster_file or page.still.file or "")
        if page.still is not None
        else None
    )
    response = render(
        request,
        "create.html",
        status=page.status,
        values=page.values,
        errors=page.errors,
        invalid=page.invalid,
        limits=limits,
        default_seconds=default_seconds,
        source=page.source,
        still=page.still,
        still_url=still_url,
        choices=choices,
        picked=page.values.cameos,
        max_still_bytes=IMAGE_SIZE_LIMIT,
    )
    response.headers.update(page.headers)
    return response


async def create_page(request: Request) -> Response:
    live = _session(request, "/create" + (f"?{request.url.query}" if request.url.query else ""))
    if isinstance(live, Response):
        return live
    me = live.account
    if request.method == "GET":
        values = FormValues(
            form_token=secrets.token_urlsafe(18),
            remix_of=request.query_params.get("remix_of", "").strip(),
        )
        page = FormPage(values)
        await _source(me, page)
        return await _show_form(request, me, page)
    data = await read_form(request)
    try:
        return await _submit(request, me, data)
    finally:
        await data.close()


async def _submit(request: Request, me: Account, data: FormData) -> Response:
    from render.service import input_still, render_made_by, submit_render

    values = _values(data)
    page = FormPage(values)
    if not csrf_matches(request, data.get(CSRF_FIELD)):
        page.refuse("The form expired or did not come from this site; send it again.", 403)
        await _source(me, page)
        return await _show_form(request, me, page)
    settings = request.app.state.settings
    once = idempotency.Key.for_render(me.pk, values.form_token)
    assert once is not None
    made = await render_made_by(me, once)
    if made is not None:  # this form was sent already: its render
        return RedirectResponse(f"/renders/{made.pk}", status_code=303)
    await _source(me, page)
    if page.errors:
        return await _show_form(request, me, page)

    # The still: a new upload (stored as the API stores it), or the one kept from a refused try.
    upload = data.get("still")
    still: MediaFile | None = None
    try:
        if isinstance(upload, UploadFile) and upload.filename:  # (no file chosen: no name)
            still = await store_upload(me, upload, settings, images_only=True)
            values.media_id = str(still.pk)
        elif values.media_id and _text(data, "remove_still") not in ("1", "on"):
            media_id = row_id(values.media_id)
            if media_id is None:
                raise RenderLimitError("input_image", "the still named is not one of yours")
            still = await input_still(me, media_id)
        else:
            values.media_id = ""
    except RenderLimitError as exc:
        page.refuse(_limit_message(exc), 422, "still")
    except FedisoraError as exc:
        page.refuse(f"Still image: {exc.message}", exc.status, "still")
        page.headers.update(exc.headers())
        values.media_id = ""
    page.still = still
    if page.errors:
        return await _show_form(request, me, page)

    cameo_ids: list[int] = []
    for raw in sorted(values.cameos):
        cameo_id = row_id(raw)
        if cameo_id is None:
            page.refuse("Cameos: one of the people picked does not exist.", 422, "cameos")
            return await _show_form(request, me, page)
        cameo_ids.append(cameo_id)
    if cameo_ids and not await _accept_restrictions(me, cameo_ids, values, page):
        return await _show_form(request, me, page)

    spec: dict[str, Any] = {"prompt": values.prompt, "aspect": values.aspect}
    for name, value in (
        ("seconds", values.seconds),
        ("seed", values.seed),
        ("negative_prompt", values.negative_prompt),
    ):
        if value:
            spec[name] = value
    if values.remix_of:
        spec["remix_of"] = values.remix_of
    if cameo_ids:
        spec["cameos"] = cameo_ids
    if values.audio is not None:
        spec["audio"] = values.audio
    try:
        job = await submit_render(
            me,
            spec,
            settings=settings,
            engine=_engine(request),
            image=still,
            once=once,
        )
    except RenderLimitError as exc:
        page.refuse(_limit_message(exc), 422, exc.limit)
    except ModelLoadError as exc:  # the detail names server paths: logs only
        log.error("render refused: the render model cannot be loaded: %s", exc)
        page.refuse(ModelLoadError.PUBLIC[:1].upper() + ModelLoadError.PUBLIC[1:] + ".", 503)
    except FedisoraError as exc:  # a quota (429), a suspended account (403), a full disk...
        page.refuse(_service_message(exc), exc.status)
        page.headers.update(exc.headers())
    else:
        return RedirectResponse(f"/renders/{job.pk}", status_code=303)
    # A twin of this form (sent twice at once) may have queued the render meanwhile.
    made = await render_made_by(me, once)
    if made is not None:
        return RedirectResponse(f"/renders/{made.pk}", status_code=303)
    return await _show_form(request, me, page)


async def _accept_restrictions(
    me: Account, cameo_ids: list[int], values: FormValues, page: FormPage
) -> bool:
    """The owners' restrictions the person accepted with the box: a likeness request each
    (as the API's), made for those not accepted yet. False (with the message) when one is
    not accepted or its request is refused."""
    owners = {a.pk: a for a in await Account.filter(pk__in=cameo_ids)}
    for cameo_id in cameo_ids:
        owner = owners.get(cameo_id)
        if owner is None:
            page.refuse("Cameos: one of the people picked does not exist.", 422, "cameos")
            return False
        if await likenesses.restrictions_accepted(me, owner):
            continue
        if not values.accept_restrictions:
            page.refuse(
                f"Cameos: @{owner.acct} asks you to accept their restrictions before you use "
                "their likeness; read them and tick “I accept”.",
                422,
                "accept_restrictions",
            )
            return False
        try:
            await likenesses.request_use(me, owner, accept_restrictions=True)
        except FedisoraError as exc:
            page.refuse(f"Cameos: consent refused: {exc.message}", exc.status, "cameos")
            return False
    return True


# --------------------------------------------------------------------------- a render's page


def progress_label(progress: dict[str, Any]) -> dict[str, Any]:
    """The words of a progress bar (``label``), from :func:`render.service.render_progress`."""
    state = progress.get("state")
    if state == QUEUED:
        position = progress.get("queue_position")
        label = f"In the queue: position {position}" if position else "In the queue"
    elif state == ENCODING:
        label = "Encoding the video"
    elif state == SIGNING:
        label = "Signing its provenance"
    elif state == READY:
        label = "Ready"
    elif state == PUBLISHED:
        label = "Published"
    elif state == FAILED:
        label = f"Failed: {progress.get('error') or 'the render did not finish'}"
    elif state == CANCELLED:
        label = f"Cancelled: {progress.get('error') or 'cancelled'}"
    else:
        step, total = progress.get("step", 0), progress.get("total", 0)
        label = f"Rendering: step {step} of {total}" if total else "Rendering"
    if progress.get("cancel_requested") and state not in (CANCELLED, FAILED, PUBLISHED):
        label += " (cancelling…)"
    return {"label": label}


async def _clip_of(job: RenderJob) -> Clip | None:
    clip = await Clip.get_or_none(render_job_id=job.pk, deleted_at=None)
    if clip is None and job.output_id is not None:
        clip = await Clip.get_or_none(media_id=job.output_id, deleted_at=None)
    return clip


def _clip_href(me: Account, clip: Clip) -> str:
    return f"{profile_path(me)}/{clip.pk}"


async def _render_view(
    request: Request,
    me: Account,
    job: RenderJob,
    *,
    status: int = 200,
    error: str | None = None,
    publish: dict[str, str] | None = None,
) -> Response:
    from render.service import render_progress

    progress = await render_progress(job)
    progress.update(progress_label(progress))
    output = await MediaFile.get_or_none(pk=job.output_id) if job.output_id else None
    u = urls.current()
    clip = await _clip_of(job) if job.state == PUBLISHED else None
    spec = job.spec or {}
    source = None
    if spec.get("remix_clip_id"):
        found = await Clip.get_or_none(pk=spec["remix_clip_id"], deleted_at=None)
        cards = await clip_cards(me, [found], mutes=False) if found is not None else []
        source = cards[0] if cards else None
    return render(
        request,
        "render.html",
        status=status,
        job=job,
        spec=spec,
        progress=progress,
        live=not progress["done"],
        video_src=u.media(output.file) if output is not None and output.file else None,
        poster_src=u.media(output.poster_file)
        if output is not None and output.poster_file
        else None,
        output=output,
        clip_href=_clip_href(me, clip) if clip is not None else None,
        source=source,
        error=error,
        publish=publish or {"caption": "", "visibility": "public", "spoiler_text": ""},
        visibilities=_VISIBILITIES,
        max_caption=posts.MAX_CAPTION,
        max_spoiler=posts.MAX_SPOILER,
    )


async def render_page(request: Request) -> Response:
    raw = str(request.path_params["job_id"])
    live = _session(request, f"/renders/{quote(raw)}")
    if isinstance(live, Response):
        return live
    job = await _own_job(live.account, raw)
    if job is None:
        return render(request, "error.html", status=404, status_code=404, message=_NO_RENDER)
    return await _render_view(request, live.account, job)


async def render_events(request: Request) -> Response:
    """The render's progress events for its owner's session (the API's stream, labelled)."""
    from render.http import progress_stream

    live = current_session(request)
    if live is None:
        message = "Log in again to follow this render."
        return render(request, "error.html", status=401, status_code=401, message=message)
    job = await _own_job(live.account, str(request.path_params["job_id"]))
    if job is None:
        return render(request, "error.html", status=404, status_code=404, message=_NO_RENDER)
    return progress_stream(job.pk, describe=progress_label)


async def _posted_job(request: Request) -> tuple[Account, RenderJob, FormData] | Response:
    """The owner, job and form of a POST to a render (the session and CSRF checked)."""
    raw = str(request.path_params["job_id"])
    live = _session(request, f"/renders/{quote(raw)}")
    if isinstance(live, Response):
        return live
    form = await read_form(request)
    check_csrf(request, form)
    job = await _own_job(live.account, raw)
    if job is None:
        return render(request, "error.html", status=404, status_code=404, message=_NO_RENDER)
    return live.account, job, form


async def cancel(request: Request) -> Response:
    """Cancel (a running render) or delete (a ready draft): the API's cancel, either way."""
    from render.service import cancel_render

    posted = await _posted_job(request)
    if isinstance(posted, Response):
        return posted
    me, job, form = posted
    back = _text(form, "back")
    try:
        await cancel_render(me, job, engine=_engine(request))
    except Conflict as exc:
        if back == "drafts":
            return await drafts_page(request, error=_service_message(exc), status=409)
        return await _render_view(request, me, job, status=409, error=_service_message(exc))
    return RedirectResponse("/drafts" if back == "drafts" else f"/renders/{job.pk}", 303)


async def publish(request: Request) -> Response:
    """Post the ready render as a clip (the API's path for a render's media), then its page."""
    from render.service import publish_render

    posted = await _posted_job(request)
    if isinstance(posted, Response):
        return posted
    me, job, form = posted
    values = {
        "caption": _text(form, "caption"),
        "visibility": _text(form, "visibility") or "public",
        "spoiler_text": _text(form, "spoiler_text"),
    }
    once = idempotency.Key(me.pk, f"web-publish {job.pk}")
    clip = await _clip_of(job) if job.state == PUBLISHED else None
    if clip is None:
        try:
            clip = await publish_render(
                me,
                job,
                caption=values["caption"],
                visibility=values["visibility"],
                sensitive=bool(values["spoiler_text"].strip()),
                spoiler_text=values["spoiler_text"],
                engine=_engine(request),
                once=once,
            )
        except FedisoraError as exc:
            # The same form sent twice: the first one's clip.
            made = await idempotency.previous(once)
            found = await Clip.get_or_none(pk=made, deleted_at=None) if made else None
            if found is None:
                fresh = await RenderJob.get(pk=job.pk)
                return await _render_view(
                    request,
                    me,
                    fresh,
                    status=exc.status,
                    error=_service_message(exc),
                    publish=values,
                )
            clip = found
    return RedirectResponse(_clip_href(me, clip), status_code=303)


# --------------------------------------------------------------------------- drafts


@dataclass(frozen=True)
class DraftView:
    job: RenderJob
    prompt: str
    progress: dict[str, Any]
    poster_src: str | None
    video_src: str | None


async def drafts_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    from render.service import drafts_of, render_progress

    live = _session(request, "/drafts")
    if isinstance(live, Response):
        return live
    jobs = await drafts_of(live.account)
    outputs = [j.output_id for j in jobs if j.output_id is not None]
    media = {m.pk: m for m in await MediaFile.filter(pk__in=outputs)} if outputs else {}
    u = urls.current()
    drafts = []
    for job in jobs:
        progress = await render_progress(job)
        progress.update(progress_label(progress))
        out = media.get(job.output_id) if job.output_id is not None else None
        drafts.append(
            DraftView(
                job=job,
                prompt=str((job.spec or {}).get("prompt", "")),
                progress=progress,
                poster_src=u.media(out.poster_file) if out and out.poster_file else None,
                video_src=u.media(out.file) if out and out.file else None,
            )
        )
    return render(
        request,
        "drafts.html",
        status=status,
        drafts=drafts,
        error=error,
        running=any(not d.progress["done"] for d in drafts),
    )


async def _drafts(request: Request) -> Response:
    return await drafts_page(request)


def routes() -> list[BaseRoute]:
    return [
        Route("/create", create_page, methods=["GET", "POST"]),
        Route("/drafts", _drafts),
        Route("/renders/{job_id}", render_page),
        Route("/renders/{job_id}/events", render_events),
        Route("/renders/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/renders/{job_id}/publish", publish, methods=["POST"]),
    ]
