"""Fixed-window rate limits kept in process memory, with Mastodon's X-RateLimit-* headers.

One web process answers a small instance; several processes would each count separately, which
only loosens the limits by that factor. Limits reset with the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["Decision", "Limiter"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix time

    def headers(self) -> dict[str, str]:
        reset = datetime.fromtimestamp(self.reset_at, UTC).isoformat(timespec="milliseconds")
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset.replace("+00:00", "Z"),
        }


@dataclass
class Limiter:
    """*limit* requests per *window* seconds for each key."""

    limit: int
    window: float
    clock: Callable[[], float] = time.time
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def hit(self, key: str) -> Decision:
        now = self.clock()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if len(self._windows) > 100_000:  # bound memory: forget expired windows
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
        reset_at = start + self.window
        if count >= self.limit:
            self._windows[key] = (start, count)
            return Decision(False, self.limit, 0, reset_at)
        count += 1
        self._windows[key] = (start, count)
        return Decision(True, self.limit, self.limit - count, reset_at)
