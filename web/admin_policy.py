"""``/admin/policy``: the prompt policy's lists of protected public figures and of protected
characters and works, for admins.

Both lists on one page, each with a form to add a term (and a note saying why) and a remove
button per term; every change is a POST carrying the session's CSRF token, made by
:mod:`fedisora.services.prompt_policy` (which writes the audit log). A refused term (too
short, already listed) shows the page again with the message and what was typed.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.models import PolicyList
from fedisora.policy.matcher import LISTS, MAX_TERM_CHARS
from fedisora.services import prompt_policy
from web.pages import render
from web.routes import _admin_user, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]


async def _page(
    request: Request, *, status: int = 200, error: str = "", typed: dict[str, Any] | None = None
) -> Response:
    rows = await prompt_policy.terms()
    lists = [
        {
            "name": kind.value,
            "title": LISTS[kind.value],
            "terms": [r for r in rows if r.list_name == kind],
        }
        for kind in PolicyList
    ]
    return render(
        request,
        "admin/policy.html",
        status=status,
        lists=lists,
        csrf=csrf_token(request),
        error=error,
        typed=typed or {},
        max_term=MAX_TERM_CHARS,
        max_note=prompt_policy.MAX_NOTE_CHARS,
    )


async def admin_policy(request: Request) -> Response:
    await _admin_user(request)
    return await _page(request)


async def admin_policy_add(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    list_name = str(form.get("list", ""))
    term = str(form.get("term", ""))
    note = str(form.get("note", ""))
    try:
        row = await prompt_policy.add_term(me, list_name, term, note)
    except FedisoraError as exc:
        message = exc.message[:1].upper() + exc.message[1:] + "."
        typed = {"list": list_name, "term": term, "note": note}
        return await _page(request, status=exc.status, error=message, typed=typed)
    return RedirectResponse(f"/admin/policy#term-{row.pk}", status_code=303)


async def admin_policy_remove(request: Request) -> Response:
    admin = await _admin_user(request)
    term_id = row_id(str(request.path_params["term_id"]))
    if term_id is None:
        raise HTTPException(404, "no such policy term")
    _, me = await staff_form(request, admin)
    await prompt_policy.remove_term(me, term_id)
    return RedirectResponse("/admin/policy", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/policy", admin_policy),
        Route("/admin/policy/add", admin_policy_add, methods=["POST"]),
        Route("/admin/policy/{term_id}/remove", admin_policy_remove, methods=["POST"]),
    ]
