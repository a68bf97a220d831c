"""Hashtag pages: ``/tags/<name>``, where the hashtag links of captions (ours and those
federated with our clips' ``Hashtag`` tags) lead.

As Mastodon's tag pages: the public clips (never unlisted, followers-only or direct) that
carry the tag, local and remote, newest first; an unknown tag is an empty page. Names are
matched as captions' hashtags are stored (:func:`fedisora.services.text.parse_text`): in
lower case, without the ``#``; a name no caption could hold is a 404.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fedisora.api.visibility import hidden_account_ids
from fedisora.models import Clip, Tag, Visibility
from fedisora.services.visibility import without_limited
from web.clips import PAGE, clip_cards, max_id_param, session_account
from web.opengraph import tag_meta
from web.pages import html_errors, render

__all__ = ["normalise_tag", "routes", "tag_page"]

_TAG_RE = re.compile(r"\w{1,100}")
"""A hashtag's name, as ``fedisora.services.text.HASHTAG_RE`` finds it in a caption."""


def normalise_tag(raw: str) -> str | None:
    """The stored form of the tag *raw* names (``#Sea`` and ``sea`` are ``sea``), or None
    when it is not a hashtag (empty, too long, punctuation, digits only)."""
    name = raw.removeprefix("#")
    if _TAG_RE.fullmatch(name) is None or name.isdigit():
        return None
    return name.lower()


@html_errors
async def tag_page(request: Request) -> Response:
    name = normalise_tag(str(request.path_params["name"]))
    if name is None:
        raise HTTPException(404, "That is not a hashtag.")
    max_id = max_id_param(request)
    viewer = await session_account(request)
    rows: list[Clip] = []
    tag = await Tag.get_or_none(name=name)
    if tag is not None:
        query = Clip.filter(
            clip_tags__tag_id=tag.pk,
            visibility=Visibility.PUBLIC,
            deleted_at=None,
            account__suspended_at=None,
            account__origin_suspended_at=None,
        )
        query = await without_limited(query, viewer)  # silenced accounts: followers only
        hidden = await hidden_account_ids(viewer)
        if hidden:
            query = query.exclude(account_id__in=sorted(hidden))
        if max_id is not None:
            query = query.filter(id__lt=max_id)
        rows = await query.order_by("-id").limit(PAGE)
    return render(
        request,
        "tag.html",
        tag_name=name,
        cards=await clip_cards(viewer, rows),
        max_id=max_id,
        older=rows[-1].pk if len(rows) == PAGE else None,
        meta=tag_meta(name, request.app.state.settings),
    )


def routes() -> list[BaseRoute]:
    return [Route("/tags/{name}", tag_page)]
