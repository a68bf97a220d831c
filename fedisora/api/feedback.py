"""For You's signals and controls (fedisora's own; thin handlers over
:mod:`fedisora.for_you.signals`).

- ``POST /api/fedisora/v1/feedback`` (scope ``write`` or ``write:statuses``): a JSON body
  ``{"events": [{"clip_id": "123", "type": "impression", "watch_ms": 1234}, ...]}``, at most
  100 events; types ``impression``, ``watch``, ``complete``, ``replay``, ``skip`` (swiped
  away in under 2 s), ``not_interested``, ``show_less``. 200 ``{"accepted": n, "ignored":
  m}``: events about clips that do not exist or that you cannot see are ignored. 422 for a
  malformed batch (a negative ``watch_ms``, or one over an hour; larger watch times are
  clamped to a few loops of the clip); 429 over the ``feedback`` limit per account.
- ``GET /api/fedisora/v1/for_you/interests`` (``read``, ``read:accounts``): what For You
  learned, strongest first: ``{"creators": [{"key", "account", "acct", "weight",
  "events", "updated_at"}], "tags": [{"key", "name", "weight", ...}]}``.
- ``DELETE /api/fedisora/v1/for_you/interests`` (``write``, ``write:accounts``): forget
  everything, or one interest with ``?kind=creator&key=<account id>`` or
  ``?kind=tag&key=<hashtag>``: ``{"removed": n}``.
- ``GET``/``PATCH /api/fedisora/v1/for_you/settings``: ``personalised``, ``popular`` and
  ``discovery`` (0 to 1), ``include_unverified``, ``tags`` (up to 10 hashtags for the cold
  start). 422 names a bad value.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora import ratelimits
from fedisora.api.entities import iso
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.errors import Invalid
from fedisora.for_you import signals
from fedisora.models import ForYouSettings

__all__ = ["FEEDBACK", "INTERESTS", "SETTINGS", "routes", "settings_entity"]

FEEDBACK = "/api/fedisora/v1/feedback"
INTERESTS = "/api/fedisora/v1/for_you/interests"
SETTINGS = "/api/fedisora/v1/for_you/settings"


@endpoint("write", "write:statuses", user=True)
async def feedback(ctx: Ctx) -> Response:
    if "events" not in ctx.params:
        raise Invalid("events is required: a list of {clip_id, type, watch_ms} objects")
    events = ctx.params.items("events")
    counts = await signals.record_feedback(
        ctx.me, events, limits=ratelimits.for_app(ctx.request.app)
    )
    return json(counts)


def _entry(entry: signals.InterestEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": entry.key,
        "weight": round(entry.weight, 3),
        "events": entry.events,
        "updated_at": iso(entry.updated_at),
    }
    if entry.account is not None:
        out["acct"] = entry.account.acct
        out["account_id"] = str(entry.account.pk)
    else:
        out["name"] = entry.key
    return out


@endpoint("read", "read:accounts", user=True)
async def interests(ctx: Ctx) -> Response:
    found = await signals.interests_of(ctx.me)
    return json(
        {
            "creators": [_entry(e) for e in found if e.kind == "creator"],
            "tags": [_entry(e) for e in found if e.kind == "tag"],
        }
    )


@endpoint("write", "write:accounts", user=True)
async def reset(ctx: Ctx) -> Response:
    kind = ctx.params.text("kind", max_length=16)
    key = ctx.params.text("key", max_length=200)
    removed = await signals.reset_interests(ctx.me, kind=kind or None, key=key or None)
    return json({"removed": removed})


def settings_entity(row: ForYouSettings) -> dict[str, Any]:
    return {
        "personalised": row.personalised,
        "popular": row.popular,
        "discovery": row.discovery,
        "include_unverified": row.include_unverified,
        "tags": list(row.tags or []),
    }


@endpoint("read", "read:accounts", user=True)
async def get_settings(ctx: Ctx) -> Response:
    return json(settings_entity(await signals.settings_of(ctx.me)))


@endpoint("write", "write:accounts", user=True)
async def patch_settings(ctx: Ctx) -> Response:
    p = ctx.params
    flags: dict[str, bool | None] = {}
    for name in ("personalised", "include_unverified"):
        flags[name] = p.flag(name) if name in p else None
    row = await signals.update_settings(
        ctx.me,
        personalised=flags["personalised"],
        include_unverified=flags["include_unverified"],
        popular=p.raw("popular") if "popular" in p else None,
        discovery=p.raw("discovery") if "discovery" in p else None,
        tags=p.items("tags") if "tags" in p else None,
    )
    return json(settings_entity(row))


def routes() -> list[BaseRoute]:
    return [
        *api_route(FEEDBACK, feedback, ["POST"]),
        *api_route(INTERESTS, interests, ["GET"]),
        *api_route(INTERESTS, reset, ["DELETE"]),
        *api_route(SETTINGS, get_settings, ["GET"]),
        *api_route(SETTINGS, patch_settings, ["PATCH"]),
    ]
