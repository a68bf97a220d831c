"""``GET /api/v2/search``: accounts, hashtags and statuses, as Mastodon answers it; the
searching is :mod:`fedisora.services.search` (the web page ``/search`` searches there too).

Without a user token, ``resolve`` and ``offset`` answer 401 like Mastodon.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.entities import render_accounts, status_entities, tag_entities
from fedisora.api.http import Ctx, Unauthorized, api_route, endpoint, json
from fedisora.errors import Invalid
from fedisora.services.search import (
    MAX_QUERY,
    search_accounts,
    search_hashtags,
    search_statuses,
)

__all__ = ["routes"]

TYPES = ("accounts", "hashtags", "statuses")


@endpoint("read", "read:search")
async def search(ctx: Ctx) -> Response:
    p = ctx.params
    q = p.required_text("q", max_length=MAX_QUERY)
    kind = p.text("type")
    if kind is not None and kind and kind not in TYPES:
        raise Invalid(f"type must be one of {', '.join(TYPES)}")
    limit = max(1, min(p.number("limit", 20, high=2**31), 40))
    offset = p.number("offset", 0, high=10_000)
    resolve = p.flag("resolve")
    if ctx.account is None and resolve:
        raise Unauthorized(
            "Search queries that resolve remote resources are not supported without authentication"
        )
    if ctx.account is None and offset:
        raise Unauthorized("Search queries pagination is not supported without authentication")
    body: dict[str, Any] = {"accounts": [], "statuses": [], "hashtags": []}
    if kind in (None, "", "accounts"):
        found = await search_accounts(
            ctx.account,
            q,
            settings=ctx.settings,
            offset=offset,
            limit=limit,
            resolve=resolve,
            following=p.flag("following"),
        )
        body["accounts"] = await render_accounts(found)
    if kind in (None, "", "hashtags"):
        body["hashtags"] = await tag_entities(await search_hashtags(q, offset, limit))
    if kind in (None, "", "statuses") and ctx.account is not None:
        statuses = await search_statuses(
            ctx.account, q, offset=offset, limit=limit, author=p.id("account_id")
        )
        body["statuses"] = await status_entities(ctx.account, statuses)
    return json(body)


def routes() -> list[BaseRoute]:
    return [*api_route("/api/v2/search", search, ["GET"])]
