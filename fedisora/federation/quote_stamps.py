"""The URLs of the QuoteAuthorization stamps (FEP-044f) of local clips: stateless, the
quoting post's URI is in the URL. Made by the inbox (answering a quote request), by delivery
(stamping an approved remix), read by the quote checks and served by the routes."""

from __future__ import annotations

import base64

from fedisora.models import Clip

__all__ = ["quote_stamp", "quoting_uri_of", "uri_token"]


def quote_stamp(clip: Clip, quoting_uri: str) -> str:
    """The URL of the QuoteAuthorization for *quoting_uri* quoting *clip* (stateless: the
    quoting post's URI is in the URL, and the stamp is served while the clip may be quoted)."""
    return f"{clip.uri}/quote_authorizations/{uri_token(quoting_uri)}"


def uri_token(text: str) -> str:
    """*text* (a URI) as one URL path segment: unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def quoting_uri_of(token: str) -> str | None:
    """The quoting post's URI a stamp URL's last segment names, or None when it names none."""
    try:
        uri = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return uri if uri.startswith(("https://", "http://")) and len(uri) <= 2048 else None
