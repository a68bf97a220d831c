"""Content negotiation between an object's ActivityPub document and its web page, decided here
and nowhere else.

Every URL that is an ActivityPub id (an actor, a clip, a comment) answers a server with JSON
and a browser with a page; the web's own URLs (``/@name``, ``/@name/<id>``) send a server to
the id. The federation routes know no web module and the web knows no route module: the app
(:func:`fedisora.app.create_app`) hands the pages that show objects to the routes as
:class:`ObjectPages` on ``app.state.object_pages``. An app built without them (no web) answers
JSON everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from fedisora.models import Account

__all__ = ["ObjectPages", "object_pages", "wants_activity", "wants_page"]


def wants_activity(request: Request) -> bool:
    """ActivityPub clients ask for activity+json or ld+json (or JSON and not HTML)."""
    accept = request.headers.get("accept", "").lower()
    if "application/activity+json" in accept or "application/ld+json" in accept:
        return True
    return "json" in accept and "html" not in accept


def wants_page(request: Request) -> bool:
    """Whether a browser asks (it names ``text/html``, and not ActivityPub): what used to
    answer only JSON answers a page only then, so a server sending no ``Accept`` still
    gets the JSON."""
    return "html" in request.headers.get("accept", "").lower() and not wants_activity(request)


Page = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ObjectPages:
    """The web pages that show ActivityPub objects, for the routes that serve those objects."""

    profile: Callable[[Request, str], Awaitable[Response]]  # (request, username)
    instance_actor: Callable[[Request, Account], Response]  # what a browser gets at /actor
    clip: Page  # path params username, clip_id
    comment: Page  # path params username, comment_id


def object_pages(request: Request) -> ObjectPages | None:
    """The pages the app serves objects with, or None when it has no web pages."""
    pages: ObjectPages | None = getattr(request.app.state, "object_pages", None)
    return pages
