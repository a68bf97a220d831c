"""Invite links in the browser: ``/settings/invites`` (create, list with their uses, revoke
one's own) and ``/admin/invites`` (every invite, for admins, who may revoke any).

Who may create invites is ``FEDISORA_INVITES``; the rules, the atomic count of uses and the
audit of admins' actions are :mod:`fedisora.services.invites`'. The sign-up page an invite
opens is :mod:`web.signup`'s ``/invite/<code>``.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.boundary import read_form
from fedisora.errors import FedisoraError, Invalid
from fedisora.ids import row_id
from fedisora.services import invites
from fedisora.services.sessions import LiveSession
from web.pages import render
from web.routes import _admin_user
from web.sessions import check_csrf, csrf_token, current_session

__all__ = ["routes"]

PAGE = 50


def _live(request: Request) -> LiveSession:
    live = current_session(request)
    if live is None:
        raise HTTPException(401, "log in to manage your invites")
    return live


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    before = row_id(raw) if raw else None
    if raw and before is None:
        raise HTTPException(400, "before must be the id of an invite (a whole number).")
    return before


def _choice(raw: str, name: str) -> int | None:
    if raw in ("", "none"):
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise Invalid(f"{name} must be one of the choices offered")
    return int(raw)


async def _settings_page(
    request: Request,
    live: LiveSession,
    *,
    status: int = 200,
    error: str | None = None,
    created: str | None = None,
) -> Response:
    settings = request.app.state.settings
    before = _before(request)
    rows = await invites.views(await invites.invites_of(live.account, before=before, limit=PAGE))
    return render(
        request,
        "settings/invites.html",
        status=status,
        error=error,
        created=created,
        may_create=invites.may_create(settings, live.user),
        rows=rows,
        base_url=settings.base_url,
        uses_choices=invites.MAX_USES_CHOICES,
        expiry_choices=invites.EXPIRY_CHOICES,
        csrf=csrf_token(request),
        older=rows[-1].invite.pk if len(rows) == PAGE else None,
    )


async def settings_invites(request: Request) -> Response:
    live = current_session(request)
    if live is None:
        if request.method == "GET":
            return RedirectResponse("/login?next=/settings/invites", status_code=303)
        raise HTTPException(401, "log in to create invites")
    if request.method == "GET":
        created = request.query_params.get("created", "")
        return await _settings_page(request, live, created=created[:32] or None)
    form = await read_form(request)
    check_csrf(request, form)
    try:
        invite = await invites.create(
            request.app.state.settings,
            live.account,
            live.user,
            max_uses=_choice(str(form.get("max_uses", "")), "max_uses"),
            expires_in=_choice(str(form.get("expires_in", "")), "expires_in"),
            autofollow=form.get("autofollow") == "yes",
        )
    except FedisoraError as exc:
        return await _settings_page(request, live, status=exc.status, error=str(exc))
    return RedirectResponse(f"/settings/invites?created={invite.code}", status_code=303)


async def _revoke(request: Request, back: str) -> Response:
    live = _live(request)
    form = await read_form(request)
    check_csrf(request, form)
    invite_id = row_id(str(request.path_params["invite_id"]))
    if invite_id is None:
        raise HTTPException(404, "no such invite")
    await invites.revoke(invite_id, live.account, live.user)
    return RedirectResponse(back, status_code=303)


async def settings_revoke(request: Request) -> Response:
    return await _revoke(request, "/settings/invites")


async def admin_invites(request: Request) -> Response:
    await _admin_user(request)
    rows = await invites.views(await invites.invites_of(None, before=_before(request), limit=PAGE))
    return render(
        request,
        "admin/invites.html",
        rows=rows,
        base_url=request.app.state.settings.base_url,
        csrf=csrf_token(request),
        older=rows[-1].invite.pk if len(rows) == PAGE else None,
    )


async def admin_revoke(request: Request) -> Response:
    await _admin_user(request)
    return await _revoke(request, "/admin/invites")


def routes() -> list[BaseRoute]:
    return [
        Route("/settings/invites", settings_invites, methods=["GET", "POST"]),
        Route("/settings/invites/{invite_id}/revoke", settings_revoke, methods=["POST"]),
        Route("/admin/invites", admin_invites),
        Route("/admin/invites/{invite_id}/revoke", admin_revoke, methods=["POST"]),
    ]
