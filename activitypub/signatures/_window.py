"""The time window a signature must fall in: Mastodon's rule, shared by both schemes.

From Mastodon's ``SignedRequest#matches_time_window?`` (app/lib/signed_request.rb):

* a signature is valid from ``created`` until ``expires``;
* without ``expires`` it expires ``DEFAULT_VALIDITY`` (5 min) after ``created``;
* it never lasts longer than ``MAX_VALIDITY`` (12 h) after ``created``, whatever
  ``expires`` says;
* both ends are stretched by ``CLOCK_SKEW`` (1 h): ``created`` may be up to 1 h in
  the future, and the signature is accepted until 1 h after it expires.

So a typical signature (``created`` or ``Date`` only) is accepted from 1 h before
to 65 min after its creation time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from activitypub.errors import SignatureExpired

__all__ = ["CLOCK_SKEW", "DEFAULT_VALIDITY", "MAX_VALIDITY", "check_time_window", "timestamp"]

CLOCK_SKEW = 3600
DEFAULT_VALIDITY = 300
MAX_VALIDITY = 12 * 3600


def timestamp(now: datetime | float) -> float:
    """Seconds since the epoch; a naive datetime is taken to be UTC."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now.timestamp()
    return float(now)


def check_time_window(created: float | None, expires: float | None, now: float) -> None:
    """Raise :class:`SignatureExpired` unless ``now`` is inside the signature's window."""
    end: float | None = expires
    if created is not None:
        if created > now + CLOCK_SKEW:
            raise SignatureExpired("signature created in the future (beyond clock skew)")
        if end is None:
            end = created + DEFAULT_VALIDITY
        end = min(end, created + MAX_VALIDITY)
    if end is not None and now > end + CLOCK_SKEW:
        raise SignatureExpired("signature expired")
