"""The user's own settings: profile, browser sessions, authorized apps, password and the
export of their clips (deleting the account is in :mod:`web.accounts`).

``/settings/profile`` edits the display name, bio, pictures and whether followers need
approval (:func:`fedisora.services.profiles.update_profile`, as the API's
``update_credentials``); ``/settings/apps`` lists the apps holding a token and revokes one
(:mod:`fedisora.services.authorized_apps`); ``/settings/export`` downloads a ZIP archive of
the user's clips with their provenance intact (:mod:`fedisora.services.export`).

``/settings`` lists the user's sessions (browser, address, when it began and was last seen;
the current one marked) with a button to end each and one to end all the others;
``/settings/password`` changes the password, which ends every other session and revokes the
account's app tokens. Every change is a POST carrying the session's CSRF token; the pages
call :mod:`fedisora.services.sessions` and :mod:`fedisora.services.credentials`, as any
future API would.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.boundary.limits import IMAGE_SIZE_LIMIT
from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.models import utcnow
from fedisora.services.authorized_apps import authorized_apps, revoke_app
from fedisora.services.credentials import change_password
from fedisora.services.export import export_clips, export_name
from fedisora.services.passwords import PasswordChecksBusy, TooManyAttempts, guard_for
from fedisora.services.profiles import MAX_DISPLAY_NAME, MAX_NOTE, ProfileChange, update_profile
from fedisora.services.sessions import (
    LiveSession,
    end_other_sessions,
    end_session,
    list_sessions,
)
from fedisora.services.uploads import read_capped
from web.pages import own_url, render
from web.sessions import check_csrf, current_session, end_browser_session

__all__ = ["routes"]


def _logged_in(request: Request, here: str) -> LiveSession | RedirectResponse:
    """The live session, or (a GET without one) the way to the login page; a POST without
    one is a 401."""
    live = current_session(request)
    if live is not None:
        return live
    if request.method == "GET":
        return RedirectResponse(f"/login?next={here}", status_code=303)
    raise HTTPException(401, "Log in first.")


async def settings_page(request: Request) -> Response:
    live = _logged_in(request, "/settings")
    if isinstance(live, Response):
        return live
    sessions = await list_sessions(live.user)
    return render(
        request,
        "settings/index.html",
        account=live.account,
        sessions=sessions,
        current_id=live.session.pk,
        others=sum(1 for s in sessions if s.pk != live.session.pk),
    )


async def end_one_session(request: Request) -> Response:
    live = _logged_in(request, "/settings")
    if isinstance(live, Response):
        return live
    check_csrf(request, await read_form(request))
    session_id = row_id(str(request.path_params["session_id"]))
    if session_id == live.session.pk:
        await end_browser_session(request)  # ending this one is logging out
        return RedirectResponse("/", status_code=303)
    if session_id is None or not await end_session(live.user, session_id):
        raise HTTPException(404, "You have no such session (it may have ended already).")
    return RedirectResponse("/settings", status_code=303)


async def end_others(request: Request) -> Response:
    live = _logged_in(request, "/settings")
    if isinstance(live, Response):
        return live
    check_csrf(request, await read_form(request))
    await end_other_sessions(live.user, keep_id=live.session.pk)
    return RedirectResponse("/settings", status_code=303)


async def password_page(request: Request) -> Response:
    live = _logged_in(request, "/settings/password")
    if isinstance(live, Response):
        return live
    if request.method == "GET":
        return render(request, "settings/password.html", error=None, done=None)
    form = await read_form(request)
    check_csrf(request, form)
    headers: dict[str, str] = {}
    try:
        done = await change_password(
            live.user,
            current=str(form.get("current_password", "")),
            new=str(form.get("new_password", "")),
            confirmation=str(form.get("confirm_password", "")),
            guard=guard_for(request.app.state),
            ip=client_ip(request),
            keep_session_id=live.session.pk,
        )
    except (TooManyAttempts, PasswordChecksBusy) as exc:
        headers["Retry-After"] = str(exc.retry_after)
        error, status = exc.message, exc.status
    except FedisoraError as exc:
        error, status = exc.message, exc.status
    else:
        return render(request, "settings/password.html", error=None, done=done)
    response = render(request, "settings/password.html", status=status, error=error, done=None)
    response.headers.update(headers)
    return response


async def profile_page(request: Request) -> Response:
    live = _logged_in(request, "/settings/profile")
    if isinstance(live, Response):
        return live
    account = live.account
    error, status, saved = None, 200, False
    if request.method == "POST":
        form = await read_form(request)
        try:
            check_csrf(request, form)
            change = ProfileChange(
                display_name=str(form.get("display_name", "")),
                note=str(form.get("note", "")),
                locked=form.get("locked") == "on",
                discoverable=form.get("discoverable") == "on",
            )
            for name in ("avatar", "header"):
                upload = form.get(name)
                if isinstance(upload, UploadFile) and upload.filename:
                    data = await read_capped(upload, IMAGE_SIZE_LIMIT)
                    if data:
                        change.images[name] = data
            account = await update_profile(account, change, request.app.state.settings)
            saved = True
        except HTTPException as exc:
            error, status = str(exc.detail), exc.status_code
        except FedisoraError as exc:
            error, status = exc.message, exc.status
        finally:
            await form.close()
    return render(
        request,
        "settings/profile.html",
        status=status,
        account=account,
        avatar=own_url(account.avatar_url),
        error=error,
        saved=saved,
        max_display_name=MAX_DISPLAY_NAME,
        max_note=MAX_NOTE,
    )


async def apps_page(request: Request) -> Response:
    live = _logged_in(request, "/settings/apps")
    if isinstance(live, Response):
        return live
    return render(request, "settings/apps.html", apps=await authorized_apps(live.account))


async def revoke_app_access(request: Request) -> Response:
    live = _logged_in(request, "/settings/apps")
    if isinstance(live, Response):
        return live
    check_csrf(request, await read_form(request))
    app_id = row_id(str(request.path_params["app_id"]))
    try:
        if app_id is None:
            raise HTTPException(404, "You have not authorized that app.")
        await revoke_app(live.account, app_id)
    except FedisoraError as exc:
        raise HTTPException(exc.status, exc.message) from None
    return RedirectResponse("/settings/apps", status_code=303)


async def export_page(request: Request) -> Response:
    live = _logged_in(request, "/settings/export")
    if isinstance(live, Response):
        return live
    return render(request, "settings/export.html", account=live.account)


async def export_download(request: Request) -> Response:
    live = _logged_in(request, "/settings/export")
    if isinstance(live, Response):
        return live
    now = utcnow()
    chunks = export_clips(live.account, request.app.state.settings, now)
    name = export_name(live.account, now)
    return StreamingResponse(
        (chunk async for chunk in chunks if chunk),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/settings", settings_page),
        Route("/settings/profile", profile_page, methods=["GET", "POST"]),
        Route("/settings/apps", apps_page),
        Route("/settings/apps/{app_id}/revoke", revoke_app_access, methods=["POST"]),
        Route("/settings/export", export_page),
        Route("/settings/export.zip", export_download),
        Route("/settings/sessions/others/end", end_others, methods=["POST"]),
        Route("/settings/sessions/{session_id}/end", end_one_session, methods=["POST"]),
        Route("/settings/password", password_page, methods=["GET", "POST"]),
    ]
