"""``/admin/renders``: the render queue for admins.

Jobs newest first, filtered by state and by owner (50 a page, a ``max_id`` cursor), each with
its prompt, owner, times and error; Cancel (queued or running) and Requeue (failed or
cancelled) are :func:`render.service.admin_cancel_render` and
:func:`render.service.requeue_render`. With an owner chosen, the page shows what they used of
their quotas in the current window (the last 24 hours) and the form of their quota override
(:func:`render.service.set_quota_override`, enforced by the same check as the settings).
Every action is a POST with the session's CSRF token and is audited by the service; a refusal
is shown in the page with a 4xx, an unknown job is a 404 page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import FedisoraError, Invalid
from fedisora.ids import row_id
from fedisora.models import Account, RenderJob
from fedisora.work import Engine
from render import service
from render.stats import STATES, jobs_page
from web.pages import render
from web.routes import _admin_user, _age, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]

PAGE = "/admin/renders"
PROMPT_CHARS = 160
MAX_FILTER = 320


def _engine(request: Request) -> Engine | None:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    return engine


async def _owner(name: str) -> Account | None:
    username, _, domain = name.removeprefix("@").partition("@")
    return await Account.get_or_none(username__iexact=username, domain=domain or None)


def _filters(params: Any) -> dict[str, str]:
    state = str(params.get("state", "")).strip()
    user = str(params.get("user", "")).strip().removeprefix("@")
    if len(user) > MAX_FILTER:
        raise HTTPException(400, f"user is too long (at most {MAX_FILTER} characters).")
    return {"state": state if state in STATES else "", "user": user}


def _back(filters: dict[str, str]) -> str:
    query = urlencode({k: v for k, v in filters.items() if v})
    return f"{PAGE}?{query}" if query else PAGE


async def _page(
    request: Request,
    filters: dict[str, str],
    *,
    status: int = 200,
    error: str = "",
    quota_form: dict[str, str] | None = None,
) -> Response:
    settings = request.app.state.settings
    raw_max = request.query_params.get("max_id", "")
    max_id = row_id(raw_max) if raw_max else None
    if raw_max and max_id is None:
        raise HTTPException(400, "max_id must be the id of a render (a whole number).")
    owner = await _owner(filters["user"]) if filters["user"] else None
    message = ""
    if filters["user"] and owner is None:
        message = f"There is no account @{filters['user']}: showing no renders."
    page = (
        await jobs_page(
            state=filters["state"],
            account_id=owner.pk if owner is not None else None,
            max_id=max_id,
        )
        if message == ""
        else None
    )
    usage = (
        await service.render_usage(owner, settings) if owner is not None and owner.local else None
    )
    if usage is not None and quota_form is None:
        overridden = usage.quotas.overridden
        quota_form = {
            name: f"{getattr(usage.quotas, name):g}" if name in overridden else ""
            for name in service.QUOTA_RANGES
        }
    older = None
    if page is not None and page.older is not None:
        older = (
            f"{PAGE}?{urlencode({**{k: v for k, v in filters.items() if v}, 'max_id': page.older})}"
        )
    return render(
        request,
        "admin/renders.html",
        status=status,
        jobs=page.jobs if page is not None else [],
        older=older,
        states=STATES,
        filters=filters,
        back=_back(filters),
        owner=owner,
        usage=usage,
        defaults={
            "concurrent_jobs": settings.render_concurrent_jobs,
            "clips_per_day": settings.render_clips_per_day,
            "gpu_seconds_per_day": settings.render_gpu_seconds_per_day,
        },
        quota_form=quota_form or {},
        cancellable=service.ADMIN_CANCELLABLE,
        requeueable=service.REQUEUEABLE,
        prompt_chars=PROMPT_CHARS,
        message=message,
        error=error,
        age=_age,
        csrf=csrf_token(request),
    )


async def admin_renders(request: Request) -> Response:
    await _admin_user(request)
    return await _page(request, _filters(request.query_params))


async def _job(request: Request) -> RenderJob:
    pk = row_id(str(request.path_params["job_id"]))
    job = await RenderJob.get_or_none(pk=pk) if pk is not None else None
    if job is None:
        raise HTTPException(404, "no such render job")
    return job


async def _act(request: Request, requeue: bool) -> Response:
    admin = await _admin_user(request)
    job = await _job(request)
    form, me = await staff_form(request, admin)
    filters = _filters(form)
    try:
        if requeue:
            await service.requeue_render(
                me, job, settings=request.app.state.settings, engine=_engine(request)
            )
        else:
            await service.admin_cancel_render(me, job, engine=_engine(request))
    except FedisoraError as exc:
        return await _page(request, filters, status=exc.status, error=exc.message)
    return RedirectResponse(_back(filters), status_code=303)


async def cancel(request: Request) -> Response:
    return await _act(request, requeue=False)


async def requeue(request: Request) -> Response:
    return await _act(request, requeue=True)


def _raw(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def _refuse(name: str, raw: str, whole: bool) -> Invalid:
    kind = "a whole number" if whole else "a number"
    label = name.replace("_", " ")
    return Invalid(f"{label} must be {kind} (or empty: the default), not {raw[:40]!r}")


def _int_value(form: FormData, name: str) -> int | None:
    raw = _raw(form, name)
    try:
        return int(raw) if raw else None
    except ValueError:
        raise _refuse(name, raw, whole=True) from None


def _float_value(form: FormData, name: str) -> float | None:
    raw = _raw(form, name)
    try:
        value = float(raw) if raw else None
    except ValueError:
        raise _refuse(name, raw, whole=False) from None
    if value is not None and value != value:  # NaN compares false with every bound
        raise _refuse(name, raw, whole=False)
    return value


async def set_quota(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    filters = _filters(form)
    owner = await _owner(filters["user"]) if filters["user"] else None
    if owner is None:
        raise HTTPException(404, "no such account")
    values = {name: _raw(form, name)[:40] for name in service.QUOTA_RANGES}
    try:
        await service.set_quota_override(
            me,
            owner,
            concurrent_jobs=_int_value(form, "concurrent_jobs"),
            clips_per_day=_int_value(form, "clips_per_day"),
            gpu_seconds_per_day=_float_value(form, "gpu_seconds_per_day"),
            settings=request.app.state.settings,
        )
    except Invalid as exc:
        return await _page(request, filters, status=422, error=exc.message, quota_form=values)
    return RedirectResponse(_back(filters), status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route(PAGE, admin_renders),
        Route(f"{PAGE}/quota", set_quota, methods=["POST"]),
        Route(f"{PAGE}/{{job_id}}/cancel", cancel, methods=["POST"]),
        Route(f"{PAGE}/{{job_id}}/requeue", requeue, methods=["POST"]),
    ]
