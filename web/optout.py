"""``/optout``: a rights holder asks that renders never name them or their work.

No login is needed; the form carries the browser's CSRF token and is rate-limited per
address (``optout``, as ``POST /api/fedisora/v1/optouts``, which calls the same service:
:func:`fedisora.services.optouts.submit`). A refused request shows the form again with the
message and what was typed; an accepted one says it waits for review.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fedisora import ratelimits
from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.services import optouts
from web.pages import render
from web.sessions import csrf_matches, csrf_token

__all__ = ["routes"]

_FIELDS = ("who", "kind", "terms", "evidence", "contact")
_SLACK = 2  # what is shown again of an over-long field: enough to see what was too long


def _page(
    request: Request,
    *,
    status: int = 200,
    error: str = "",
    done: int | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "optout.html",
        status=status,
        error=error,
        done=done,
        kinds=optouts.KINDS,
        csrf=csrf_token(request),
        values=values or {"kind": "public_figure"},
        max_who=optouts.MAX_WHO,
        max_terms=optouts.MAX_TERMS,
        max_evidence=optouts.MAX_EVIDENCE,
        max_contact=optouts.MAX_CONTACT,
    )


def _message(exc: FedisoraError) -> str:
    return exc.message[:1].upper() + exc.message[1:] + "."


async def optout(request: Request) -> Response:
    if request.method == "GET":
        return _page(request)
    form = await read_form(request)
    limit = optouts.MAX_EVIDENCE * _SLACK
    values: dict[str, Any] = {name: str(form.get(name, ""))[:limit] for name in _FIELDS}
    if not csrf_matches(request, form.get("csrf")):
        return _page(
            request, status=403, error="The form expired; please try again.", values=values
        )
    decision = await ratelimits.for_app(request.app).hit(optouts.RATE, f"ip:{client_ip(request)}")
    if not decision.allowed:
        response = _page(
            request,
            status=429,
            error="Too many opt-out requests from your network: try again later.",
            values=values,
        )
        response.headers.update(decision.headers())
        return response
    try:
        row = await optouts.submit(
            who=values["who"],
            kind=values["kind"],
            terms=[values["terms"]],
            evidence=values["evidence"],
            contact=values["contact"],
        )
    except FedisoraError as exc:
        return _page(request, status=exc.status, error=_message(exc), values=values)
    return _page(request, status=202, done=row.pk)


def routes() -> list[BaseRoute]:
    return [Route("/optout", optout, methods=["GET", "POST"])]
