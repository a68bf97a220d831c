"""The instance's counts (users, posts, comments, known domains) as NodeInfo and the client
API's instance entities show them, each made at most every :data:`USAGE_TTL` seconds per app.

Crawlers ask for NodeInfo, and every client app asks for ``/api/v1/instance`` when it starts;
each count reads every local clip, comment, user or remote account. Mastodon, too, serves
these counts from a cache.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.datastructures import State

__all__ = ["USAGE_TTL", "kept"]

USAGE_TTL = 600.0
"""Seconds a count is served again before it is made anew."""

T = TypeVar("T")


async def kept(state: State, name: str, make: Callable[[], Awaitable[T]]) -> T:
    """The count *name* of the app whose *state* this is, made by *make* when this app has
    none younger than :data:`USAGE_TTL`."""
    store: dict[str, tuple[float, Any]] = getattr(state, "usage_counts", None) or {}
    state.usage_counts = store
    now = time.monotonic()
    found = store.get(name)
    if found is not None and now - found[0] < USAGE_TTL:
        value: T = found[1]
        return value
    value = await make()
    store[name] = (now, value)
    return value
