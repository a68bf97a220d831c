"""The I/O half of ActivityPub: HTTP endpoints, fetching, the inbox and delivery machines.

Set up in a process with one call, :func:`install` (the app's lifespan and the worker do)::

    from fedisora.federation import install
    install(engine)       # at start-up: committed events and new rows wake engine's runners
    await uninstall()     # at shutdown: undo that, close the peer HTTP client

Local actions reach federation through the transactional outbox: the outbox machine
(:mod:`fedisora.services.outbox`) calls :func:`fedisora.federation.delivery.on_event`,
which writes the Delivery rows. The durable-work machines are registered in
:data:`fedisora.work.machines.PROVIDERS` (``fedisora.federation.inbox:machines``,
``fedisora.federation.delivery:machines`` and the checks); the routes are
:func:`fedisora.federation.routes.routes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedisora.work.engine import Engine

__all__ = ["install", "uninstall"]


def install(engine: Engine | None = None) -> None:
    """Rows created in this process (deliveries, inbox items, checks) wake *engine*'s
    runners, and so do committed events (:func:`fedisora.services.events.set_runner`).
    Without an engine (a CLI command, a test), this process processes its committed events
    at once through the outbox machine, and the next sweep of the instance's runners finds
    the rows that makes."""
    from fedisora.federation.rows import set_engine
    from fedisora.services import events

    set_engine(engine)
    events.set_runner(engine)


async def uninstall() -> None:
    """Undo :func:`install` and close this process's peer HTTP client (at shutdown)."""
    from fedisora.federation.context import close_federation
    from fedisora.federation.rows import set_engine
    from fedisora.services import events

    set_engine(None)
    events.clear_runner()
    await close_federation()
