"""Mastodon's markers: ``GET /api/v1/markers?timeline[]=home&timeline[]=notifications`` and
``POST /api/v1/markers`` (``home[last_read_id]=…``, ``notifications[last_read_id]=…``, as a
form or JSON). The rules are :mod:`fedisora.services.markers`'."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.entities import iso
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.params import parse_id
from fedisora.errors import Invalid
from fedisora.services.markers import TIMELINES, SavedMarker, get_markers, save_markers

__all__ = ["routes"]


def _entities(markers: dict[str, SavedMarker]) -> dict[str, Any]:
    return {
        name: {
            "last_read_id": str(m.last_read_id),
            "version": m.version,
            "updated_at": iso(m.updated_at),
        }
        for name, m in markers.items()
    }


@endpoint("read", "read:statuses", user=True)
async def get(ctx: Ctx) -> Response:
    return json(_entities(await get_markers(ctx.me, ctx.params.texts("timeline"))))


@endpoint("write", "write:statuses", user=True)
async def save(ctx: Ctx) -> Response:
    positions: dict[str, int] = {}
    for name in TIMELINES:
        given = ctx.params.mapping(name)
        if not given:
            continue
        raw = given.get("last_read_id")
        if not isinstance(raw, (str, int)) or isinstance(raw, bool) or parse_id(raw) < 0:
            raise Invalid(f"{name}[last_read_id] must be the id of a status or a notification")
        positions[name] = parse_id(raw)
    if not positions:
        raise Invalid("give home[last_read_id] or notifications[last_read_id]")
    return json(_entities(await save_markers(ctx.me, positions)))


def routes() -> list[BaseRoute]:
    return [
        *api_route("/api/v1/markers", get, ["GET"]),
        *api_route("/api/v1/markers", save, ["POST"]),
    ]
