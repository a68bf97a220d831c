"""Domain events: the seam between the services and whatever reacts to them (federation, streaming).

Services call :func:`emit` after their transaction commits. Listeners must be quick and must
not lose work: federation's listener only writes durable Delivery rows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "emit", "subscribe", "unsubscribe"]

log = logging.getLogger("fedisora.events")


@dataclass(frozen=True)
class Event:
    """``kind`` is one of: clip.created, clip.updated, clip.deleted, comment.created,
    comment.deleted, like.created, like.deleted, boost.created, boost.deleted,
    follow.requested, follow.accepted, follow.rejected, follow.deleted, block.created,
    block.deleted, account.updated, account.deleted, account.suspended, account.unsuspended,
    notification.created."""

    kind: str
    actor_id: int
    data: dict[str, Any]


Listener = Callable[[Event], Awaitable[None]]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


async def emit(kind: str, actor_id: int, **data: Any) -> None:
    event = Event(kind, actor_id, data)
    for listener in list(_listeners):
        try:
            await listener(event)
        except Exception:
            log.exception("listener %r failed on %s", listener, kind)
