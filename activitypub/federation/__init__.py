"""The I/O half of ActivityPub: HTTP endpoints, fetching, the inbox and delivery machines.

Set up in a process with one call, :func:`install` (the app's lifespan and the worker do)::

    from activitypub.federation import install
    install(engine)       # at start-up: subscribe the delivery listener to services.events
    await uninstall()     # at shutdown: unsubscribe, close the peer HTTP client

The durable-work machines are registered in :data:`fedisora.work.machines.PROVIDERS` as
``activitypub.federation.inbox:machines`` and ``activitypub.federation.delivery:machines``;
the routes are :func:`activitypub.federation.routes.routes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedisora.work.engine import Engine

__all__ = ["install", "uninstall"]


def install(engine: Engine | None = None) -> None:
    """Subscribe the listener that turns local actions into Delivery rows; rows created in
    this process wake *engine*'s runner (without one, the next sweep finds them)."""
    from activitypub.federation.delivery import on_event
    from activitypub.federation.rows import set_engine
    from fedisora.services import events

    set_engine(engine)
    events.subscribe(on_event)


async def uninstall() -> None:
    """Undo :func:`install` and close this process's peer HTTP client (at shutdown)."""
    from activitypub.federation.context import close_federation
    from activitypub.federation.delivery import on_event
    from activitypub.federation.rows import set_engine
    from fedisora.services import events

    set_engine(None)
    events.unsubscribe(on_event)
    await close_federation()
