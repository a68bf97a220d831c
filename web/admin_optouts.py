"""``/admin/optouts``: the rights holders' opt-out registry, for admins.

Pending requests with Approve and Reject (a reason required), the approved ones with Remove
(a reason required), and the subscriptions to other instances' lists: add one (its URL and
mode, review or auto), switch its mode, fetch it now, apply or discard the changes of a
version waiting for review, unsubscribe; each shows its last error. Every change is a POST
carrying the session's CSRF token, made by :mod:`fedisora.services.optouts` (which writes
the audit log).
A refusal shows the page again with the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.models import Account, OptOutState
from fedisora.services import optouts
from web.pages import render
from web.routes import _admin_user, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]


async def _page(
    request: Request, *, status: int = 200, error: str = "", notice: str = ""
) -> Response:
    return render(
        request,
        "admin/optouts.html",
        status=status,
        pending=await optouts.optouts(OptOutState.PENDING),
        approved=await optouts.optouts(OptOutState.APPROVED, source=optouts.LOCAL),
        subscribed=await optouts.optouts(OptOutState.APPROVED, limit=500),
        rejected=await optouts.optouts(OptOutState.REJECTED, limit=20),
        subscriptions=await optouts.subscriptions(),
        kinds=optouts.KINDS,
        csrf=csrf_token(request),
        error=error,
        notice=notice,
        max_reason=optouts.MAX_REASON,
    )


async def admin_optouts(request: Request) -> Response:
    await _admin_user(request)
    return await _page(request)


Action = Callable[[Account, int, dict[str, str]], Awaitable[str]]


def _action(do: Action, anchor: str) -> Callable[[Request], Awaitable[Response]]:
    """A POST on ``/admin/optouts/.../{id}/...``: admin, CSRF, then *do*; a refusal shows the
    page with the message, a success goes back to the page (with *do*'s notice if any)."""

    async def handler(request: Request) -> Response:
        admin = await _admin_user(request)
        ident = row_id(str(request.path_params["id"]))
        if ident is None:
            raise HTTPException(404, "no such opt-out or subscription")
        form, me = await staff_form(request, admin)
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            notice = await do(me, ident, values)
        except FedisoraError as exc:
            if exc.status == 404:
                raise HTTPException(404, exc.message) from None
            message = exc.message[:1].upper() + exc.message[1:] + "."
            return await _page(request, status=exc.status, error=message)
        if notice:
            return await _page(request, notice=notice)
        return RedirectResponse(f"/admin/optouts#{anchor}-{ident}", status_code=303)

    handler.__name__ = do.__name__
    return handler


async def _approve(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.approve(me, ident)
    return ""


async def _reject(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.reject(me, ident, form.get("reason", "")[: optouts.MAX_REASON * 2])
    return ""


async def _remove(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.remove(me, ident, form.get("reason", "")[: optouts.MAX_REASON * 2])
    return ""


async def _apply(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.apply_pending(me, ident)
    return ""


async def _discard(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.discard_pending(me, ident)
    return ""


async def _mode(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.set_mode(me, ident, form.get("mode", ""))
    return ""


async def _unsubscribe(me: Account, ident: int, form: dict[str, str]) -> str:
    await optouts.unsubscribe(me, ident)
    return ""


def _fetcher(request: Request) -> Action:
    async def _fetch(me: Account, ident: int, form: dict[str, str]) -> str:
        from fedisora.federation.context import get_federation

        fed = get_federation(request.app.state.settings)
        outcome = await optouts.fetch_now(fed, me, ident)
        return {
            "applied": "Fetched: the new version is applied.",
            "pending": "Fetched: a new version waits for review below.",
            "unchanged": "Fetched: no newer version.",
        }.get(outcome.result, "The fetch failed: see the subscription's last error.")

    return _fetch


async def admin_optouts_fetch(request: Request) -> Response:
    return await _action(_fetcher(request), "list")(request)


async def admin_optouts_subscribe(request: Request) -> Response:
    admin = await _admin_user(request)
    form, me = await staff_form(request, admin)
    try:
        row = await optouts.subscribe(
            me,
            str(form.get("url", ""))[: optouts.MAX_URL * 2],
            str(form.get("mode", "")),
            insecure=request.app.state.settings.insecure_http,
        )
    except FedisoraError as exc:
        return await _page(
            request, status=exc.status, error=exc.message[:1].upper() + exc.message[1:] + "."
        )
    return RedirectResponse(f"/admin/optouts#list-{row.pk}", status_code=303)


def _kw(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def routes() -> list[BaseRoute]:
    post = _kw(methods=["POST"])
    return [
        Route("/admin/optouts", admin_optouts),
        Route("/admin/optouts/{id}/approve", _action(_approve, "optout"), **post),
        Route("/admin/optouts/{id}/reject", _action(_reject, "optout"), **post),
        Route("/admin/optouts/{id}/remove", _action(_remove, "optout"), **post),
        Route("/admin/optouts/lists", admin_optouts_subscribe, **post),
        Route("/admin/optouts/lists/{id}/fetch", admin_optouts_fetch, **post),
        Route("/admin/optouts/lists/{id}/apply", _action(_apply, "list"), **post),
        Route("/admin/optouts/lists/{id}/discard", _action(_discard, "list"), **post),
        Route("/admin/optouts/lists/{id}/mode", _action(_mode, "list"), **post),
        Route("/admin/optouts/lists/{id}/unsubscribe", _action(_unsubscribe, "list"), **post),
    ]
