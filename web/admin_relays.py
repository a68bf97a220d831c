"""``/admin/relays``: the ActivityPub relays this instance subscribes to, for admins.

Each relay with its state (waiting for its Accept, accepted, refused) and a Remove button;
a form adds one by its inbox URL (Mastodon's form) or its actor's URL (LitePub's). Every
change is a POST carrying the session's CSRF token, made by :mod:`fedisora.services.relays`
(which writes the audit log and the Follow or Undo to the relay). A refusal shows the page
again with the message and the URL typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.services import relays
from web.pages import render
from web.routes import _admin_user, staff_form
from web.sessions import csrf_token

if TYPE_CHECKING:
    from fedisora.federation.context import Federation

__all__ = ["routes"]


async def _page(request: Request, *, status: int = 200, error: str = "", url: str = "") -> Response:
    return render(
        request,
        "admin/relays.html",
        status=status,
        relays=await relays.list_relays(),
        csrf=csrf_token(request),
        error=error,
        url=url,
    )


def _fed(request: Request) -> Federation:
    from fedisora.federation.context import get_federation

    return get_federation(request.app.state.settings)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


async def admin_relays(request: Request) -> Response:
    await _admin_user(request)
    return await _page(request)


async def admin_relays_add(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    url = str(form.get("url") or "")[:2048]
    try:
        row = await relays.add(url, by=me, fed=_fed(request))
    except FedisoraError as exc:
        return await _page(request, status=exc.status, error=_sentence(exc.message), url=url)
    return RedirectResponse(f"/admin/relays#relay-{row.pk}", status_code=303)


async def admin_relays_remove(request: Request) -> Response:
    staff = await _admin_user(request)
    relay_id = row_id(request.path_params["id"])
    if relay_id is None:
        raise HTTPException(404, "There is no such relay.")
    _, me = await staff_form(request, staff)
    try:
        await relays.remove(relay_id, by=me, fed=_fed(request))
    except FedisoraError as exc:
        return await _page(request, status=exc.status, error=_sentence(exc.message))
    return RedirectResponse("/admin/relays", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/relays", admin_relays),
        Route("/admin/relays", admin_relays_add, methods=["POST"]),
        Route("/admin/relays/{id}/remove", admin_relays_remove, methods=["POST"]),
    ]
