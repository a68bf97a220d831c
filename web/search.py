"""Search in the browser: ``/search?q=``.

Accounts, hashtags and clips (and comments), found by :mod:`fedisora.services.search`, the
API's ``/api/v2/search`` rules. As Mastodon's web app, a logged-in search resolves: an
unknown ``@name@host`` or an actor URL is looked up on its instance (and then listed, so it
can be followed); a visitor's search does neither that nor the text search of clips (the
API's rules for requests without a user). A local account links to its profile here, a
remote one to its own page (``rel="nofollow noopener ugc"``): remote profiles have no page
here.

An empty query shows the form; a too long one or one with control characters gets a message
(400), never an error page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fedisora.models import Account, Clip, Comment
from fedisora.services.search import search_accounts, search_hashtags, search_statuses
from web.clips import author_href, clip_cards, session_account
from web.comment_pages import comment_href
from web.feed import follow_states
from web.pages import html_errors, own_url, render

__all__ = ["MAX_QUERY", "FoundAccount", "routes", "search_page"]

MAX_QUERY = 500
"""The longest query the page searches (the API takes longer ones; nobody types these)."""
RESULTS = 20


@dataclass(frozen=True)
class FoundAccount:
    account: Account
    href: str | None
    avatar: str | None

    @property
    def remote(self) -> bool:
        return not self.account.local


@dataclass(frozen=True)
class FoundComment:
    comment: Comment
    author: Account
    href: str | None


def _problem(q: str) -> str | None:
    if len(q) > MAX_QUERY:
        return f"That search is {len(q)} characters long; search for at most {MAX_QUERY}."
    if not q.isprintable():
        return "A search cannot contain control characters."
    return None


@html_errors
async def search_page(request: Request) -> Response:
    raw = request.query_params.get("q", "")
    q = raw.strip()
    viewer = await session_account(request)
    context: dict[str, Any] = {
        "q": q,
        "accounts": [],
        "hashtags": [],
        "cards": [],
        "comments": [],
        "message": None,
        "searched": False,
        "logged_in": viewer is not None,
        "follows": {},
        "here": "/search",
    }
    problem = _problem(raw)
    if problem is not None:
        context.update(message=problem, q="")
        return render(request, "search.html", status=400, **context)
    if not q:
        return render(request, "search.html", **context)
    settings = request.app.state.settings
    accounts = await search_accounts(
        viewer, q, settings=settings, limit=RESULTS, resolve=viewer is not None
    )
    context["accounts"] = [
        FoundAccount(a, author_href(a), own_url(a.avatar_url) if a.local else None)
        for a in accounts
    ]
    context["follows"] = await follow_states(viewer, [a.pk for a in accounts])
    context["here"] = f"/search?{urlencode({'q': q})}"
    context["hashtags"] = await search_hashtags(q, 0, RESULTS)
    if viewer is not None:
        found = await search_statuses(viewer, q, limit=RESULTS)
        clips = [s for s in found if isinstance(s, Clip)]
        comments = [s for s in found if isinstance(s, Comment)]
        context["cards"] = await clip_cards(viewer, clips)
        authors = {a.pk: a for a in await Account.filter(pk__in={c.account_id for c in comments})}
        context["comments"] = [
            FoundComment(c, authors[c.account_id], comment_href(c))
            for c in comments
            if c.account_id in authors
        ]
    context["searched"] = True
    return render(request, "search.html", **context)


def routes() -> list[BaseRoute]:
    return [Route("/search", search_page)]
