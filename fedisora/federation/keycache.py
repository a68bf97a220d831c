"""Small in-memory caches of federation facts (see :mod:`fedisora.federation.verify`).

Each entry lives for a fixed time; the oldest entry goes first when the cache is full. They
spare a database query per POST for facts that change rarely (an actor's key, whether a
local inbox exists); every such fact is checked again when the stored item is processed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from activitypub.keys import PublicKey
from fedisora import cachestats
from fedisora.models import Account

__all__ = ["KEY_CACHE_SECONDS", "KEY_CACHE_SIZE", "KeyCache", "TimedCache"]

KEY_CACHE_SECONDS = 60.0
KEY_CACHE_SIZE = 10_000

K = TypeVar("K")
V = TypeVar("V")


class TimedCache(Generic[K, V]):
    """*key* -> value, each for *seconds* (or what :meth:`put` says), at most *size* entries."""

    def __init__(
        self,
        seconds: float,
        size: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str | None = None,
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self.name = name  # with one, its hits and misses show in /metrics
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] < self.clock():
            del self._entries[key]
            entry = None
        if self.name is not None:
            cachestats.record(self.name, entry is not None)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, *, seconds: float | None = None) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]  # dicts keep insertion order
        lifetime = self.seconds if seconds is None else seconds
        self._entries[key] = (self.clock() + lifetime, value)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class KeyCache(TimedCache[str, tuple[Account, PublicKey]]):
    """key id -> (owner, public key)."""

    def __init__(self, seconds: float = KEY_CACHE_SECONDS, size: int = KEY_CACHE_SIZE) -> None:
        super().__init__(seconds, size, name="actor_keys")

    def forget(self, owner_uri: str) -> None:
        """Drop every key of *owner_uri* (it was suspended, deleted or changed here)."""
        for key_id in [k for k, (_, (a, _)) in self._entries.items() if a.uri == owner_uri]:
            del self._entries[key_id]
