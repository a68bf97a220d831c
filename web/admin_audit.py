"""``/admin/audit``: the audit log of moderation and administration actions, for admins.

Filtered by action (or a family: ``account.``), by the acting account (``@username``) and by
target; newest first, 50 a page with a ``max_id`` cursor. The log is written by the services
(:mod:`fedisora.services.audit`), never here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fedisora.ids import row_id
from fedisora.models import Account
from fedisora.services import audit
from web.pages import render
from web.routes import _admin_user

__all__ = ["routes"]

MAX_FILTER = 320


def _text(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if len(value) > MAX_FILTER:
        raise HTTPException(400, f"{name} is too long (at most {MAX_FILTER} characters).")
    return value


async def admin_audit(request: Request) -> Response:
    await _admin_user(request)
    action = _text(request, "action")
    actor = _text(request, "actor").removeprefix("@")
    target = _text(request, "target")
    raw_max = request.query_params.get("max_id", "")
    max_id = row_id(raw_max) if raw_max else None
    if raw_max and max_id is None:
        raise HTTPException(400, "max_id must be the id of an entry (a whole number).")
    actor_id: int | None = None
    message = ""
    if actor:
        found = await Account.get_or_none(username__iexact=actor, domain=None)
        if found is None:
            message = f"There is no local account @{actor}: showing no entries."
            actor_id = -1
        else:
            actor_id = found.pk
    kind, _, ident = target.partition(":")
    page = await audit.entries(
        action=action,
        actor_id=actor_id,
        target_type=kind if ident else "",
        target_id=ident,
        max_id=max_id,
    )
    filters = {k: v for k, v in (("action", action), ("actor", actor), ("target", target)) if v}
    older = None
    if page.older is not None:
        older = "/admin/audit?" + urlencode({**filters, "max_id": page.older})
    return render(
        request,
        "admin/audit.html",
        entries=page.entries,
        actions=await audit.actions(),
        action=action,
        actor=actor,
        target=target,
        message=message,
        older=older,
        first="/admin/audit?" + urlencode(filters) if max_id is not None else None,
    )


def routes() -> list[BaseRoute]:
    return [Route("/admin/audit", admin_audit)]
