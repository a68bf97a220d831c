"""OAuth scopes as Mastodon defines them: read/write/follow/push/profile and granular forms."""

from __future__ import annotations

from collections.abc import Iterable

from fedisora.errors import Invalid

__all__ = ["ALL_SCOPES", "allows", "normalize"]

_READ = (
    "accounts",
    "blocks",
    "bookmarks",
    "favourites",
    "filters",
    "follows",
    "lists",
    "mutes",
    "notifications",
    "search",
    "statuses",
)
_WRITE = (
    "accounts",
    "blocks",
    "bookmarks",
    "conversations",
    "favourites",
    "filters",
    "follows",
    "lists",
    "media",
    "mutes",
    "notifications",
    "reports",
    "statuses",
)
TOP_LEVEL = ("read", "write", "follow", "push", "profile")
# Admin scopes are never implied by read/write (Mastodon): only admin:read / admin:write.
_ADMIN = (
    "admin:read",
    "admin:write",
    "admin:read:accounts",
    "admin:write:accounts",
    "admin:read:reports",
    "admin:write:reports",
    "admin:read:domain_blocks",
    "admin:write:domain_blocks",
    "admin:read:domain_allows",
    "admin:write:domain_allows",
)
ALL_SCOPES: tuple[str, ...] = (
    *TOP_LEVEL,
    *(f"read:{s}" for s in _READ),
    *(f"write:{s}" for s in _WRITE),
    *_ADMIN,
)
# The deprecated "follow" scope covers these granular ones (Mastodon's doorkeeper config).
_FOLLOW_COVERS = {
    "read:follows",
    "write:follows",
    "read:blocks",
    "write:blocks",
    "read:mutes",
    "write:mutes",
}


def normalize(raw: str | Iterable[str] | None, *, default: str = "read") -> list[str]:
    """Parse a scope string (space- or plus-separated) into known scopes, keeping order."""
    if raw is None:
        parts: list[str] = default.split()
    elif isinstance(raw, str):
        parts = raw.replace("+", " ").split()
    else:
        parts = [p for item in raw for p in str(item).replace("+", " ").split()]
    if not parts:
        parts = default.split()
    out: list[str] = []
    for scope in parts:
        if scope not in ALL_SCOPES:
            raise Invalid(f"unknown scope {scope!r}")
        if scope not in out:
            out.append(scope)
    return out


def allows(granted: Iterable[str], *required: str) -> bool:
    """Whether *granted* satisfies any of the *required* scopes."""
    have = set(granted)
    for scope in required:
        if scope in have:
            return True
        top, _, _ = scope.partition(":")
        if top in ("read", "write") and top in have:
            return True
        if top == "admin" and scope.rpartition(":")[0] in have:  # admin:write:accounts
            return True
        if "follow" in have and scope in _FOLLOW_COVERS:
            return True
    return False


def within(requested: Iterable[str], allowed: Iterable[str]) -> bool:
    """Whether every requested scope is granted by the *allowed* (application) scopes."""
    allowed_list = list(allowed)
    return all(allows(allowed_list, scope) for scope in requested)
