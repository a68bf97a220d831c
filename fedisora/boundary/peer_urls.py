"""The URL of another server that an admin gives (a relay, an opt-out list): one check for
every form that takes one. Pure: where the URL may lead (loopback, private addresses) is the
guarded client's to refuse when it is fetched (:mod:`fedisora.federation.http`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fedisora.errors import Invalid

__all__ = ["check_peer_url"]


def check_peer_url(url: str, *, what: str, insecure: bool = False, max_length: int = 2048) -> str:
    """*url* stripped, when it is an ``https://`` URL (``http://`` too with *insecure*, as
    on a test instance) with a host, no credentials, no fragment, no whitespace and at most
    *max_length* characters; else :class:`Invalid`, naming *what* the URL is of."""
    url = url.strip()
    schemes = ("https", "http") if insecure else ("https",)
    if not url:
        raise Invalid(f"{what}'s URL is needed")
    if len(url) > max_length:
        raise Invalid(f"{what}'s URL is too long (at most {max_length} characters)")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise Invalid(f"{what}'s URL is not a valid URL") from None
    if parts.scheme not in schemes or not host or any(c.isspace() for c in url):
        raise Invalid(f"{what}'s URL must be an {' or '.join(schemes)} URL with a host")
    if parts.fragment or parts.username or parts.password:
        raise Invalid(f"{what}'s URL may have no fragment or credentials")
    return url
