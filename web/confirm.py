"""E-mail confirmation in the browser (:mod:`fedisora.services.email_confirmation`).

``/auth/confirm/<token>`` (the mail's link) confirms the address and says so, with a link to
log in: it logs nobody in (whoever holds the mail is not thereby the password's owner).
``/auth/confirm`` asks for the mail again (a CSRF-checked form, rate-limited per client
IP), answering the same whatever was typed; ``/auth/confirm/sent`` is where a sign-up that
needs confirmation ends.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora import ratelimits
from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError, RateLimited
from fedisora.services import email_confirmation
from web.pages import render
from web.sessions import csrf_matches, csrf_token

__all__ = ["routes"]


async def confirm(request: Request) -> Response:
    token = str(request.path_params["token"])
    try:
        user = await email_confirmation.confirm(token)
    except FedisoraError as exc:
        return render(
            request,
            "confirm.html",
            status=exc.status,
            error=exc.message,
            csrf=csrf_token(request),
            login="",
        )
    return render(request, "confirm.html", confirmed=user.email, csrf=csrf_token(request))


async def resend(request: Request) -> Response:
    login = request.query_params.get("login", "")[:254]
    if request.method == "GET":
        return render(request, "confirm.html", csrf=csrf_token(request), login=login)
    form = await read_form(request)
    login = str(form.get("login", ""))[:254]
    if not csrf_matches(request, form.get("csrf")):
        return render(
            request,
            "confirm.html",
            status=403,
            error="The form expired; please try again.",
            csrf=csrf_token(request),
            login=login,
        )
    try:
        await email_confirmation.resend(
            request.app.state.settings,
            login,
            ip=client_ip(request),
            store=ratelimits.for_app(request.app),
        )
    except RateLimited as exc:
        response = render(
            request,
            "confirm.html",
            status=429,
            error="Too many mails asked for from your network: try again later.",
            csrf=csrf_token(request),
            login=login,
        )
        response.headers.update(exc.headers())
        return response
    return RedirectResponse("/auth/confirm/sent", status_code=303)


async def sent(request: Request) -> Response:
    return render(request, "confirm_sent.html")


def routes() -> list[BaseRoute]:
    return [
        Route("/auth/confirm", resend, methods=["GET", "POST"]),
        Route("/auth/confirm/sent", sent),
        Route("/auth/confirm/{token}", confirm),
    ]
