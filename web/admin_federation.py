"""``/admin/federation``: delivery health per peer host, for admins.

Hosts with pending or failed deliveries by name (or, searched, every host whose name contains
the text), 50 a page with an ``after`` cursor: pending and failed deliveries, the last that
reached the host, its back-off and next attempt (:mod:`fedisora.federation.delivery_health`).
"Retry now" is :func:`~fedisora.federation.delivery_health.retry_host` (a POST with the
session's CSRF token, audited by the service); a refusal is shown in the page with a 422.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import Invalid
from fedisora.federation import delivery_health
from fedisora.models import utcnow
from fedisora.work import Engine
from web.pages import render
from web.routes import _admin_user, _age, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]

PAGE = "/admin/federation"
MAX_HOST = 255


def _param(value: object, name: str) -> str:
    text = str(value or "").strip().lower()
    if len(text) > MAX_HOST:
        raise HTTPException(400, f"{name} is too long (at most {MAX_HOST} characters).")
    return text


async def _page(
    request: Request, search: str, after: str = "", *, status: int = 200, **context: object
) -> Response:
    settings = request.app.state.settings
    page = await delivery_health.hosts_page(settings=settings, search=search, after=after)
    more = None
    if page.after is not None:
        query = {"after": page.after, **({"host": search} if search else {})}
        more = f"{PAGE}?{urlencode(query)}"
    context.setdefault("error", "")
    context.setdefault("done", "")
    return render(
        request,
        "admin/federation.html",
        status=status,
        hosts=page.hosts,
        more=more,
        search=search,
        overall=await delivery_health.delivery_health(),
        now=utcnow(),
        age=_age,
        csrf=csrf_token(request),
        **context,
    )


async def admin_federation(request: Request) -> Response:
    await _admin_user(request)
    params = request.query_params
    return await _page(
        request,
        _param(params.get("host"), "host"),
        _param(params.get("after"), "after"),
        done=_param(params.get("retried"), "retried"),
    )


async def retry(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    host = _param(form.get("host"), "host")
    search = _param(form.get("search"), "search")
    engine: Engine | None = getattr(request.app.state, "engine", None)
    try:
        await delivery_health.retry_host(
            me, host, settings=request.app.state.settings, engine=engine
        )
    except Invalid as exc:
        return await _page(request, search, status=422, error=exc.message)
    query = {"retried": host, **({"host": search} if search else {})}
    return RedirectResponse(f"{PAGE}?{urlencode(query)}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route(PAGE, admin_federation),
        Route(f"{PAGE}/retry", retry, methods=["POST"]),
    ]
