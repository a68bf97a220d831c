"""The exceptions services raise, each with the HTTP status the API and UI map it to."""

from __future__ import annotations

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
    status = 429


class StorageFull(FedisoraError):
    """The server's disk is full: nothing was stored (507 Insufficient Storage)."""

    status = 507
