"""Time-ordered 64-bit ids, as Mastodon uses for statuses.

Clips and comments are both statuses to Mastodon clients, so they draw ids from one
sequence: milliseconds since the Unix epoch in the high 48 bits and 16 random bits below.
The ids sort by creation time (``max_id``/``since_id`` pagination relies on that), never
collide between the two tables in practice, and reveal no row counts.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["id_for_time", "new_id"]


def id_for_time(ms: int, low: int = 0) -> int:
    """The id a row created at *ms* milliseconds after the epoch would get (for range queries)."""
    return (ms << 16) | (low & 0xFFFF)


def new_id(now_ms: int | None = None) -> int:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return id_for_time(ms, secrets.randbits(16))
