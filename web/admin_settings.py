"""``/admin/settings``: the instance's name, descriptions, contact e-mail, registration mode
and message, and rate limits, for admins.

One form, saved all at once by :func:`fedisora.services.instance_settings.save` (which
validates every field first, saves nothing when one is refused, and writes the audit log);
a refusal shows the page again with each field's message and what was typed. The form's
values are the ones in force: the environment's defaults until a value is saved.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.config import REGISTRATION_MODES
from fedisora.ratelimits import DEFAULTS
from fedisora.services import instance_settings
from fedisora.services.instance_settings import FIELDS, SettingsInvalid, limits_text
from web.pages import render
from web.routes import _admin_user, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]


async def _page(
    request: Request,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    settings = request.app.state.settings
    values = await instance_settings.effective(settings)
    defaults = instance_settings.defaults(settings)
    shown = {key: str(getattr(values, key)) for key in FIELDS}
    shown.update(typed or {})
    return render(
        request,
        "admin/settings.html",
        status=status,
        values=shown,
        defaults={key: str(getattr(defaults, key)) for key in FIELDS},
        errors=errors or {},
        labels=FIELDS,
        saved=saved,
        modes=REGISTRATION_MODES,
        builtin_limits=limits_text(DEFAULTS),
        limits_in_force=limits_text(values.limits),
        csrf=csrf_token(request),
        max_name=instance_settings.MAX_NAME,
        max_short=instance_settings.MAX_SHORT_DESCRIPTION,
        max_description=instance_settings.MAX_DESCRIPTION,
        max_message=instance_settings.MAX_MESSAGE,
    )


async def admin_settings(request: Request) -> Response:
    admin = await _admin_user(request)
    if request.method == "GET":
        return await _page(request, saved=request.query_params.get("saved") == "1")
    form, me = await staff_form(request, admin)
    typed = {key: str(form.get(key, "")) for key in FIELDS if key in form}
    try:
        await instance_settings.save(request.app.state.settings, me, typed)
    except SettingsInvalid as exc:
        return await _page(request, status=422, typed=typed, errors=exc.errors)
    return RedirectResponse("/admin/settings?saved=1", status_code=303)


def routes() -> list[BaseRoute]:
    return [Route("/admin/settings", admin_settings, methods=["GET", "POST"])]
