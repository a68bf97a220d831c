"""Why a received activity changes nothing: the exceptions every handler of received
activities raises (ingest, likeness, cameo checks, quote checks), in a module of their own so
that those handlers need not import one another to share them."""

from __future__ import annotations

__all__ = ["Gone", "Ignored"]


class Ignored(Exception):
    """The activity is valid but has nothing for us to do; the message says why."""


class Gone(Ignored):
    """The object was deleted: its origin answers 404 or 410, or we hold its tombstone."""
