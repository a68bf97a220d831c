"""Time-ordered 64-bit ids, as Mastodon uses for statuses.

Clips and comments are both statuses to Mastodon clients, so they draw ids from one
sequence: milliseconds since the Unix epoch in the high 48 bits and 16 random bits below.
The ids sort by creation time (``max_id``/``since_id`` pagination relies on that), never
collide between the two tables in practice, and reveal no row counts.
"""

from __future__ import annotations

import re
import secrets
import time

__all__ = ["MAX_ID", "id_for_time", "new_id", "row_id"]

MAX_ID = 2**63 - 1
"""Ids are signed 64-bit integers in the database: a larger number names no row."""
_ID_RE = re.compile(r"[0-9]{1,19}")


def id_for_time(ms: int, low: int = 0) -> int:
    """The id a row created at *ms* milliseconds after the epoch would get (for range queries)."""
    return (ms << 16) | (low & 0xFFFF)


def new_id(now_ms: int | None = None) -> int:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return id_for_time(ms, secrets.randbits(16))


def row_id(raw: str) -> int | None:
    """*raw* (a path segment or query value) as a row id, or None when it cannot be one.

    Checked before ``int``: a number past :data:`MAX_ID` overflows the id column (a database
    error), a very long digit string is refused by ``int`` itself, and ``str.isdigit`` passes
    digits such as ``"²"`` that ``int`` does not take."""
    if _ID_RE.fullmatch(raw) is None or int(raw) > MAX_ID:
        return None
    return int(raw)
