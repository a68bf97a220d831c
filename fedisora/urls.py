"""Canonical URLs of local objects. Set once per process with :func:`configure`."""

from __future__ import annotations

import uuid

from fedisora.config import Settings

__all__ = ["Urls", "configure", "current"]


class Urls:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def actor(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    def profile(self, username: str) -> str:
        return f"{self.base}/@{username}"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def featured(self, username: str) -> str:
        return f"{self.actor(username)}/collections/featured"

    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def key_id(self, username: str) -> str:
        return f"{self.actor(username)}#main-key"

    def ed25519_key_id(self, username: str) -> str:
        return f"{self.actor(username)}#ed25519-key"

    def clip(self, username: str, clip_id: int) -> str:
        return f"{self.actor(username)}/clips/{clip_id}"

    def clip_page(self, username: str, clip_id: int) -> str:
        return f"{self.profile(username)}/{clip_id}"

    def comment(self, username: str, comment_id: int) -> str:
        return f"{self.actor(username)}/comments/{comment_id}"

    def activity(self, username: str, kind: str) -> str:
        return f"{self.actor(username)}/{kind}/{uuid.uuid4()}"

    def media(self, relative_path: str) -> str:
        return f"{self.base}/media/{relative_path}"

    def tag(self, name: str) -> str:
        return f"{self.base}/tags/{name}"


_current: Urls | None = None


def configure(settings: Settings) -> Urls:
    global _current
    _current = Urls(settings.base_url)
    return _current


def current() -> Urls:
    if _current is None:
        raise RuntimeError("fedisora.urls.configure(settings) was not called")
    return _current
