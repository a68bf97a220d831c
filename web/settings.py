"""The user's own settings: their browser sessions and their password (deleting the account
is in :mod:`web.accounts`).

``/settings`` lists the user's sessions (browser, address, when it began and was last seen;
the current one marked) with a button to end each and one to end all the others;
``/settings/password`` changes the password, which ends every other session and revokes the
account's app tokens. Every change is a POST carrying the session's CSRF token; the pages
call :mod:`fedisora.services.sessions` and :mod:`fedisora.services.credentials`, as any
future API would.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.services.credentials import change_password
from fedisora.services.passwords import PasswordChecksBusy, TooManyAttempts, guard_for
from fedisora.services.sessions import (
    LiveSession,
    end_other_sessions,
    end_session,
    list_sessions,
)
from web.pages import render
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


def routes() -> list[BaseRoute]:
    return [
        Route("/settings", settings_page),
        Route("/settings/sessions/others/end", end_others, methods=["POST"]),
        Route("/settings/sessions/{session_id}/end", end_one_session, methods=["POST"]),
        Route("/settings/password", password_page, methods=["GET", "POST"]),
    ]
