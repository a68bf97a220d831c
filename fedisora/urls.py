"""Canonical URLs of local objects. Set once per process with :func:`configure`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from fedisora.config import Settings

__all__ = ["Urls", "configure", "current"]


class Urls:
    def __init__(self, base_url: str, secret_key: str = "", media_base: str = "") -> None:
        self.base = base_url.rstrip("/")
        # Where clients fetch stored media: this server's /media/ unless the media store is a
        # public bucket (FEDISORA_S3_SERVE=public), whose URL is then given out directly.
        self.media_base = media_base.rstrip("/") or f"{self.base}/media"
        self._proxy_key = hashlib.sha256(b"fedisora media proxy\0" + secret_key.encode()).digest()

    def media_proxy_token(self, media_id: int, kind: str, remote_url: str) -> str:
        """What proves that this server handed out the proxy URL of *remote_url* (a stored
        remote media's) for *kind*: an HMAC under a key derived from the secret key."""
        message = f"{media_id}\0{kind}\0{remote_url}".encode()
        digest = hmac.new(self._proxy_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    def media_proxy(self, media_id: int, kind: str, remote_url: str) -> str:
        """Where this server serves a remote clip's video (``original``) or poster
        (``small``): see :mod:`fedisora.federation.media_proxy`."""
        token = self.media_proxy_token(media_id, kind, remote_url)
        return f"{self.base}/media_proxy/{media_id}/{token}/{kind}"

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
        """The URL of the stored media file with key *relative_path*."""
        return f"{self.media_base}/{relative_path}"

    def tag(self, name: str) -> str:
        return f"{self.base}/tags/{name}"


_current: Urls | None = None


def configure(settings: Settings) -> Urls:
    global _current
    public = settings.media_backend == "s3" and settings.s3_serve == "public"
    _current = Urls(
        settings.base_url, settings.secret_key, settings.s3_public_url if public else ""
    )
    return _current


def current() -> Urls:
    if _current is None:
        raise RuntimeError("fedisora.urls.configure(settings) was not called")
    return _current
