"""Routes of the client API (filled in by the Mastodon API modules)."""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    from fedisora.api import accounts, instance, markers, oauth, statuses, timelines

    return [
        *oauth.routes(),
        *instance.routes(),
        *accounts.routes(),
        *statuses.routes(),
        *timelines.routes(),
        *markers.routes(),
        *_fedisora_media_routes(),
        *_streaming_and_search_routes(),
        *_admin_routes(),
        *_for_you_routes(),
    ]


def _for_you_routes() -> list[BaseRoute]:
    """For You's feedback from players, and people's control of what it learned."""
    from fedisora.api import feedback

    return feedback.routes()


def _streaming_and_search_routes() -> list[BaseRoute]:
    """The streaming API (WebSocket and server-sent events) and ``/api/v2/search``."""
    from fedisora.api import search, streaming

    return [*streaming.routes(), *search.routes()]


def _fedisora_media_routes() -> list[BaseRoute]:
    """Media uploads, fedisora's render, likeness, opt-out and provenance lookup endpoints
    and their OpenAPI description."""
    from fedisora.api import likeness, media, openapi, optouts, provenance, renders

    return [
        *media.routes(),
        *provenance.routes(),
        *renders.routes(),
        *likeness.routes(),
        *optouts.routes(),
        *openapi.routes(),
    ]


def _admin_routes() -> list[BaseRoute]:
    """Mastodon's admin API (accounts: look up, suspend, unsuspend, delete; reports; domain
    blocks and allows), filing reports, the public list of domain blocks and users' own
    domain blocks."""
    from fedisora.api import admin, domain_blocks, reports

    return [*admin.routes(), *reports.routes(), *domain_blocks.routes()]
