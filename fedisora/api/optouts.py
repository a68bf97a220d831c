"""The opt-out registry's endpoints (fedisora's own; thin handlers over
:mod:`fedisora.services.optouts`).

- ``POST /api/fedisora/v1/optouts`` (no token needed; JSON or a form; rate limit ``optout``
  per address): ``who``, ``kind`` (``public_figure`` or ``protected_work``), ``terms`` (a
  list, ``terms[]``, or one per line; the name when none), ``evidence``, ``contact``
  (required: an e-mail address or a URL). 202 ``{"id", "state": "pending"}``; 422
  ``{"error"}`` naming what is wrong.
- ``GET /api/fedisora/v1/optouts/list``: the approved opt-outs as a list signed by the
  instance actor (:mod:`fedisora.policy.optout_list`): public fields only.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.services import optouts

__all__ = ["PREFIX", "routes"]

PREFIX = "/api/fedisora/v1/optouts"
# a field's bound, doubled: longer input is refused by the service with its own message
_SLACK = 2


@endpoint(rate=optouts.RATE)
async def create_optout(ctx: Ctx) -> Response:
    p = ctx.params
    row = await optouts.submit(
        who=p.text("who", "", max_length=optouts.MAX_WHO * _SLACK) or "",
        kind=p.text("kind", "", max_length=64) or "",
        terms=[t[: 200 * _SLACK] for t in p.texts("terms")][: optouts.MAX_TERMS * _SLACK],
        evidence=p.text("evidence", "", max_length=optouts.MAX_EVIDENCE * _SLACK) or "",
        contact=p.text("contact", "", max_length=optouts.MAX_CONTACT * _SLACK) or "",
    )
    return json({"id": str(row.pk), "state": row.state.value}, 202)


@endpoint()
async def published(ctx: Ctx) -> Response:
    return json(await optouts.published_list(), headers={"Cache-Control": "max-age=60"})


def routes() -> list[BaseRoute]:
    return [
        *api_route(PREFIX, create_optout, ["POST"]),
        *api_route(f"{PREFIX}/list", published, ["GET"]),
    ]
