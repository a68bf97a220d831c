"""Signing up in the browser (``/signup``), through the same service as the client API.

``FEDISORA_REGISTRATIONS`` decides what the page offers: a form (open), a form that also asks
why the visitor wants to join and ends on a "waiting for approval" page (approval), or the
admin's message and no form (closed). A new account on an open server is logged in at once.

``/invite/<code>`` is the same form for an invite's holder: it works whatever the mode, the
account is approved at once and logged in (:mod:`fedisora.services.invites`); an unknown code
is a 404 page, a revoked, expired or used-up one a 410 page saying which.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora import ratelimits
from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.for_you import signals
from fedisora.models import Account, Invite
from fedisora.services import email_confirmation, rules
from fedisora.services.instance_settings import cached, effective
from fedisora.services.invites import find_usable
from fedisora.services.signup import MAX_REASON, SIGNUP_RATE, closed_message, sign_up
from web.pages import render
from web.sessions import begin_session, csrf_matches, csrf_token, current_session

__all__ = ["routes"]

_FIELDS = ("username", "email", "reason", "tags")
"""What the form shows again after a refusal (never the passwords)."""


async def _page(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    invite: Invite | None = None,
    inviter: Account | None = None,
    **values: Any,
) -> Response:
    current = cached(request.app.state.settings)  # loaded as the request started
    return render(
        request,
        "signup.html",
        status=status,
        error=error,
        mode="invite" if invite is not None else current.registrations,
        invite=invite,
        inviter=inviter,
        closed_message=closed_message(current),
        message=current.registrations_message,
        max_reason=MAX_REASON,
        rules=await rules.rules(),
        csrf=csrf_token(request),
        values={name: values.get(name, "") for name in _FIELDS},
    )


async def signup(request: Request) -> Response:
    if current_session(request) is not None:
        return RedirectResponse("/", status_code=303)
    if request.method == "GET":
        return await _page(request, status=200)
    return await _submit(request, None)


async def invite_signup(request: Request) -> Response:
    """The sign-up form of an invite link. The invite is checked again when the form is
    sent (its last use may have gone meanwhile), in the account's transaction."""
    code = str(request.path_params["code"])
    invite = await find_usable(code)  # 404 / 410 pages
    if current_session(request) is not None:
        return RedirectResponse("/", status_code=303)
    if request.method == "GET":
        inviter = await Account.get_or_none(pk=invite.creator_id)
        return await _page(request, status=200, invite=invite, inviter=inviter)
    return await _submit(request, invite)


async def _submit(request: Request, invite: Invite | None) -> Response:
    settings = request.app.state.settings
    values_now = await effective(settings)
    form = await read_form(request)
    values: dict[str, Any] = {name: str(form.get(name, ""))[:MAX_REASON] for name in _FIELDS}
    if invite is not None:
        values["invite"] = invite
        values["inviter"] = await Account.get_or_none(pk=invite.creator_id)
    if not csrf_matches(request, form.get("csrf")):
        return await _page(
            request, status=403, error="The form expired; please try again.", **values
        )
    if invite is None and values_now.registrations == "closed":
        return await _page(request, status=403, error=closed_message(values_now), **values)
    decision = await ratelimits.for_app(request.app).hit(SIGNUP_RATE, f"ip:{client_ip(request)}")
    if not decision.allowed:
        response = await _page(
            request,
            status=429,
            error="Too many sign-ups from your network: try again later.",
            **values,
        )
        response.headers.update(decision.headers())
        return response
    password = str(form.get("password", ""))
    if password != str(form.get("confirm_password", "")):
        return await _page(request, status=422, error="The two passwords differ.", **values)
    try:  # For You's cold start: hashtags picked now (optional; changeable in settings)
        tags = signals.normalize_tags(re.split(r"[\s,]+", values["tags"]))
    except FedisoraError as exc:
        return await _page(request, status=422, error=f"Hashtags: {exc}", **values)
    try:
        account = await sign_up(
            settings,
            username=values["username"].strip(),
            email=values["email"].strip(),
            password=password,
            agreement=form.get("agreement") == "yes",
            reason=str(form.get("reason", "")) if invite is None else "",
            invite_code=invite.code if invite is not None else None,
        )
    except FedisoraError as exc:
        message = str(exc)
        if message == "agreement must be accepted":
            message = "Please accept the server's rules to sign up."
        return await _page(request, status=exc.status, error=message, **values)
    if tags:
        await signals.update_settings(account, tags=tags)
    if email_confirmation.required(settings):  # nobody is logged in before confirming
        return RedirectResponse("/auth/confirm/sent", status_code=303)
    if invite is None and values_now.registrations == "approval":
        return RedirectResponse("/signup/pending", status_code=303)
    await begin_session(request, account)
    return RedirectResponse("/", status_code=303)


async def pending(request: Request) -> Response:
    """Where an approval sign-up ends (the same page for everyone: it names no account)."""
    return render(request, "signup_pending.html")


def routes() -> list[BaseRoute]:
    return [
        Route("/signup", signup, methods=["GET", "POST"]),
        Route("/signup/pending", pending),
        Route("/invite/{code}", invite_signup, methods=["GET", "POST"]),
    ]
