"""Mastodon pagination: ``max_id``/``since_id``/``min_id``/``limit`` in, a ``Link`` header out.

``max_id`` pages backwards (older), ``since_id`` returns the newest items above an id, and
``min_id`` returns the items immediately above an id (oldest first, then reversed so that every
page is newest first). The ``Link`` header names the next (older) and prev (newer) pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from tortoise.models import Model
from tortoise.queryset import QuerySet

from fedisora.api.params import Params
from fedisora.fastload import select

__all__ = ["Page", "link_header", "merge_pages", "page_of"]

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Page:
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int

    @classmethod
    def from_params(cls, params: Params, *, default: int = 20, maximum: int = 40) -> Page:
        limit = params.number("limit", default, high=2**31)
        return cls(
            max_id=params.id("max_id"),
            since_id=params.id("since_id"),
            min_id=params.id("min_id"),
            limit=max(1, min(limit, maximum)),
        )


async def page_of(
    query: QuerySet[M], page: Page, field: str = "id", *, related: Sequence[str] = ()
) -> list[M]:
    """Apply *page* to *query* on the time-ordered integer column *field*; newest first.
    *related*: foreign keys whose rows are loaded with the page's (``select_related``;
    :func:`fedisora.fastload.select`)."""
    if page.max_id is not None:
        query = query.filter(**{f"{field}__lt": page.max_id})
    if page.since_id is not None:
        query = query.filter(**{f"{field}__gt": page.since_id})
    if page.min_id is not None:
        query = query.filter(**{f"{field}__gt": page.min_id})
        rows = await select(query.order_by(field).limit(page.limit), related=related, order=field)
        return list(reversed(rows))
    newest = f"-{field}"
    return await select(query.order_by(newest).limit(page.limit), related=related, order=newest)


def link_header(request: Request, first_id: Any, last_id: Any) -> dict[str, str]:
    """A ``Link`` header for a page whose newest item has *first_id* and oldest *last_id*."""
    if first_id is None or last_id is None:
        return {}
    keep = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("max_id", "since_id", "min_id")
    ]
    # The public base URL, not the one the request arrived on (a TLS proxy speaks plain HTTP).
    base = request.app.state.settings.base_url + request.url.path
    next_url = f"{base}?{urlencode([*keep, ('max_id', str(last_id))])}"
    prev_url = f"{base}?{urlencode([*keep, ('min_id', str(first_id))])}"
    return {"Link": f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'}


def merge_pages(page: Page, *pages: Sequence[M]) -> list[M]:
    """Merge pages of different tables sharing one id space into one page, newest first."""
    rows = [row for rows in pages for row in rows]
    if page.min_id is not None:  # the items just above min_id: the oldest of the candidates
        rows = sorted(rows, key=lambda r: int(r.pk))[: page.limit]
        return sorted(rows, key=lambda r: int(r.pk), reverse=True)
    return sorted(rows, key=lambda r: int(r.pk), reverse=True)[: page.limit]
