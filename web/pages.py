"""Template rendering shared by the web pages."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from activitypub.objects import web_url
from fedisora import urls
from fedisora.federation.provenance_check import public_reason
from fedisora.services import roles
from fedisora.services.instance_settings import cached
from fedisora.services.text import clean_name

__all__ = ["error_page", "html_errors", "own_url", "render", "safe_url", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# The templates are the installed package's: not looked at again on each page (jinja2's
# default checks every template's file time per render, a twentieth of a clip page's CPU).
templates.env.auto_reload = False
templates.env.filters["public_reason"] = public_reason
templates.env.filters["name"] = clean_name  # every name a page shows (remote ones above all)


def safe_url(value: object) -> str:
    """*value* if a browser may follow or load it from a page here, else ``""``.

    The only filter a template may put a variable through where a URL goes (``href``,
    ``src``, ``action``, ``poster``...; ``tests/web/test_web_templates.py`` holds every
    template to it): an absolute ``http(s)`` URL with a host (:func:`web_url`), or a path on
    this site (``/x``, never ``//host`` or ``/\\host``, which browsers read as another host).
    Anything else (``javascript:``, ``data:``, a relative or malformed URL) is dropped.
    """
    if not isinstance(value, str) or not value:
        return ""
    if value.startswith("/"):
        if value[1:2] in ("/", "\\") or not value.isascii() or not value.isprintable():
            return ""
        return value if " " not in value else ""
    return web_url(value) or ""


templates.env.filters["safe_url"] = safe_url


def own_url(value: object) -> str | None:
    """*value* if it is a URL on this site (what a page may embed as an image or a video:
    the pages' Content-Security-Policy loads media from no other origin), else None."""
    base = urls.current().base + "/"
    if isinstance(value, str) and value.startswith(base) and safe_url(value) == value:
        return value
    return None


P = ParamSpec("P")


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    values = cached(settings)  # loaded as the request started (InstanceSettingsRefresh)
    context.setdefault("instance_name", values.instance_name)
    context.setdefault("instance_description", values.short_description)
    context.setdefault("domain", settings.domain)
    context.setdefault("source_url", settings.source_url)
    context.setdefault("session_user", request.session.get("username"))
    context.setdefault("session_admin", False)
    context.setdefault("session_staff", False)
    context.setdefault("session_restricted", False)
    if context["session_user"]:
        from web.sessions import csrf_token, current_session

        context.setdefault("csrf", csrf_token(request))
        live = current_session(request)
        user = live.user if live is not None else None
        # a suspended account's pages link to what it can still reach (web.sessions)
        restricted = live is not None and live.restricted
        context["session_restricted"] = restricted
        context["session_admin"] = roles.is_admin(user) and not restricted
        context["session_staff"] = roles.is_staff(user) and not restricted
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


def html_errors(
    handler: Callable[Concatenate[Request, P], Awaitable[Response]],
) -> Callable[Concatenate[Request, P], Awaitable[Response]]:
    """Answer the :class:`HTTPException` a page raises with the HTML error page.

    The app's own handler answers JSON under ``/users/``, where the ActivityPub objects
    live; the pages served there for browsers (profiles, clips) need their errors as pages.
    Every answer varies on ``Accept``, as the same URLs serve ActivityPub clients JSON.
    """

    async def wrapper(request: Request, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            response = await handler(request, *args, **kwargs)
        except HTTPException as exc:
            response = error_page(request, exc.status_code, str(exc.detail))
        response.headers["Vary"] = "Accept"
        return response

    functools.update_wrapper(wrapper, handler)
    return wrapper
