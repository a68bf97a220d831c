"""Routes of the client API (filled in by the Mastodon API modules)."""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    from fedisora.api import accounts, instance, oauth, statuses, timelines

    return [
        *oauth.routes(),
        *instance.routes(),
        *accounts.routes(),
        *statuses.routes(),
        *timelines.routes(),
    ]
