"""The exceptions services raise, each with the HTTP status the API and UI map it to."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "Conflict",
    "FedisoraError",
    "Forbidden",
    "Invalid",
    "NotFound",
    "RateLimited",
    "StorageFull",
]


class FedisoraError(Exception):
    """Base of every error a user can cause. ``str(err)`` is safe to show them."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Headers the HTTP answer carries besides the status (none by default)."""
        return {}


class Invalid(FedisoraError):
    """The request is well-formed but its values are not acceptable."""

    status = 422


class NotFound(FedisoraError):
    status = 404


class Forbidden(FedisoraError):
    status = 403


class Conflict(FedisoraError):
    status = 409


class RateLimited(FedisoraError):
    """Over a limit (429); *headers* say which and when to retry (see
    :mod:`fedisora.ratelimits`)."""

    status = 429

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self._headers = dict(headers or {})

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


class StorageFull(FedisoraError):
    """The server's disk is full: nothing was stored (507 Insufficient Storage)."""

    status = 507
