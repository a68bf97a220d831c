"""How often the process's in-memory caches answer: hits and misses per cache, read by
``/metrics`` (:mod:`fedisora.metrics`, ``fedisora_cache_lookups_total``).

A cache counts its own lookups with :func:`record` (as
:class:`~fedisora.federation.keycache.TimedCache` does when it has a name), or a
``functools.lru_cache`` is read at scrape time (:func:`watch_lru`). Counts are per process,
as the caches are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["record", "snapshot", "watch_lru"]

_counts: dict[str, list[int]] = {}
_lru: dict[str, Callable[[], Any]] = {}


def record(cache: str, hit: bool) -> None:
    counts = _counts.setdefault(cache, [0, 0])
    counts[0 if hit else 1] += 1


def watch_lru(cache: str, function: Any) -> None:
    """Report the hits and misses of *function*, a ``functools.lru_cache`` wrapper."""
    _lru[cache] = function.cache_info


def snapshot() -> dict[str, tuple[int, int]]:
    """(hits, misses) per cache name, now."""
    found = {name: (hits, misses) for name, (hits, misses) in _counts.items()}
    for name, info in _lru.items():
        stats = info()
        found[name] = (int(stats.hits), int(stats.misses))
    return found
