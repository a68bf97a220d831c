"""How signals become interests: a weight per signal, and exponential decay.

An :class:`~fedisora.models.Interest` row stores a weight as of its ``updated_at``; its value
at any later time is that weight halved every :data:`HALF_LIFE`. A new signal adds its
weight to the decayed value (:func:`added`), so interests age without any sweep, and
old tastes fade within weeks unless renewed. Pure functions of numbers and times.
"""

from __future__ import annotations

from datetime import datetime, timedelta

HALF_LIFE = timedelta(days=14)

#: What one signal adds to the viewer's interest in the clip's creator and in each of its
#: hashtags. Negative signals lower them; "not interested" also hides the clip itself.
SIGNAL_WEIGHTS: dict[str, float] = {
    "impression": 0.0,  # being shown says nothing by itself
    "watch": 0.4,  # per complete viewing's worth of watch time, capped (see signals)
    "complete": 1.0,
    "replay": 1.0,
    "skip": -0.6,  # swiped away in under 2 s
    "like": 3.0,
    "comment": 4.0,
    "boost": 4.0,
    "remix": 5.0,
    "follow": 6.0,
    "show_less": -4.0,
    "not_interested": -8.0,
}

#: Interests are kept within these bounds, so that no burst of signals dominates for long.
MAX_WEIGHT = 50.0
MIN_WEIGHT = -50.0


def decayed(weight: float, since: datetime, now: datetime) -> float:
    """*weight* as of *since*, decayed to *now* (never grown: a *since* in the future is
    taken as *now*)."""
    age = max(0.0, (now - since).total_seconds())
    factor: float = 0.5 ** (age / HALF_LIFE.total_seconds())
    return weight * factor


def added(weight: float, since: datetime, delta: float, now: datetime) -> float:
    """The interest after a signal worth *delta* at *now*, clamped to the bounds."""
    return max(MIN_WEIGHT, min(MAX_WEIGHT, decayed(weight, since, now) + delta))
