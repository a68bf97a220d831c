"""How often the process's in-memory caches answer: hits and misses per cache, read by
``/metrics`` (:mod:`fedisora.metrics`, ``fedisora_cache_lookups_total``).

A cache counts its own lookups with :func:`record` (as
:class:`~fedisora.federation.keycache.TimedCache` does when it has a name), or its own
counters are read at scrape time: those of a ``functools.lru_cache`` (:func:`watch_lru`), or
any (hits, misses) a cache keeps (:func:`watch`, as the rendering cache
:mod:`fedisora.api.entity_cache` does). Counts are per process, as the caches are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["record", "snapshot", "watch", "watch_lru"]

_counts: dict[str, list[int]] = {}
_watched: dict[str, Callable[[], tuple[int, int]]] = {}


def record(cache: str, hit: bool) -> None:
    counts = _counts.setdefault(cache, [0, 0])
    counts[0 if hit else 1] += 1


def watch(cache: str, counts: Callable[[], tuple[int, int]]) -> None:
    """Report what *counts* returns at scrape time as *cache*'s (hits, misses): for a cache
    that keeps its own counters (nothing is done per lookup for the metrics)."""
    _watched[cache] = counts


def watch_lru(cache: str, function: Any) -> None:
    """Report the hits and misses of *function*, a ``functools.lru_cache`` wrapper."""
    info = function.cache_info
    watch(cache, lambda: (int(info().hits), int(info().misses)))


def snapshot() -> dict[str, tuple[int, int]]:
    """(hits, misses) per cache name, now."""
    found = {name: (hits, misses) for name, (hits, misses) in _counts.items()}
    for name, counts in _watched.items():
        found[name] = counts()
    return found
