"""What the public pages tell link previews and crawlers about themselves.

Mastodon builds its link previews from OpenGraph (and Twitter card) tags, and finds the
ActivityPub object behind a page from ``<link rel="alternate" type="application/activity+json">``.
Only public and unlisted content gets either: a followers-only or direct clip's page says
nothing about the clip in its head (its body is for the viewer who may see it).

Every value is plain text; ``_meta.html`` escapes it into the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activitypub.objects import web_url
from fedisora import urls
from fedisora.config import Settings
from fedisora.models import Account, Clip, MediaFile, Visibility
from fedisora.services.instance_settings import cached
from fedisora.services.text import clean_name
from fedisora.services.visibility import shown_sensitive

__all__ = ["PageMeta", "clip_meta", "profile_meta", "shorten", "tag_meta"]

DESCRIPTION_LENGTH = 300
NOINDEX = "noindex, noarchive"


@dataclass(frozen=True)
class PageMeta:
    """The ``<head>`` tags of a page: ``_meta.html`` renders them."""

    canonical: str
    alternate: str | None = None
    """The page's ActivityPub object."""
    properties: list[tuple[str, str]] = field(default_factory=list)
    """OpenGraph ``<meta property=... content=...>`` pairs, in order."""
    names: list[tuple[str, str]] = field(default_factory=list)
    """``<meta name=... content=...>`` pairs (description, robots, twitter:*)."""


def shorten(text: str, limit: int = DESCRIPTION_LENGTH) -> str:
    """*text* on one line, cut at a word boundary to at most *limit* characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0] or flat[: limit - 1]
    return cut + "…"


def handle(account: Account, settings: Settings) -> str:
    """``name@domain``, as a local account is known across the fediverse."""
    return f"{account.username}@{settings.domain}"


def _title(account: Account, settings: Settings) -> str:
    name = clean_name(account.display_name) or account.username
    return f"{name} (@{handle(account, settings)})"


def _card(title: str, description: str, image: str | None) -> list[tuple[str, str]]:
    names = [
        ("description", description),
        ("twitter:card", "summary_large_image" if image else "summary"),
        ("twitter:title", title),
        ("twitter:description", description),
    ]
    if image:
        names.append(("twitter:image", image))
    return names


def profile_meta(account: Account, settings: Settings) -> PageMeta:
    url = account.url or urls.current().profile(account.username)
    title = _title(account, settings)
    counts = (
        f"{account.clips_count} clips, {account.following_count} following, "
        f"{account.followers_count} followers"
    )
    bio = shorten(account.note)
    description = shorten(f"{counts} · {bio}" if bio else counts)
    avatar = web_url(account.avatar_url)
    properties = [
        ("og:site_name", cached(settings).instance_name),
        ("og:type", "profile"),
        ("og:url", url),
        ("og:title", title),
        ("og:description", description),
        ("profile:username", handle(account, settings)),
    ]
    if avatar:
        properties.append(("og:image", avatar))
    names = _card(title, description, avatar)
    if not account.indexable:
        names.append(("robots", NOINDEX))
    return PageMeta(canonical=url, alternate=account.uri, properties=properties, names=names)


def clip_meta(clip: Clip, author: Account, media: MediaFile | None, settings: Settings) -> PageMeta:
    """A local clip's page. A sensitive clip (or one behind a content warning) is described
    by its warning, and its video and poster stay out of previews, as Mastodon does."""
    u = urls.current()
    url = clip.url or u.clip_page(author.username, clip.pk)
    if clip.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        return PageMeta(canonical=url, names=[("robots", NOINDEX)])
    title = _title(author, settings)
    sensitive = shown_sensitive(clip, author)
    hidden = sensitive or bool(clip.spoiler_text)
    if clip.spoiler_text:
        description = shorten(f"CW: {clip.spoiler_text}")
    elif sensitive:
        description = "Sensitive content"
    else:
        description = shorten(clip.caption) or f"A clip by @{handle(author, settings)}"
    properties = [
        ("og:site_name", cached(settings).instance_name),
        ("og:type", "video.other"),
        ("og:url", url),
        ("og:title", title),
        ("og:description", description),
    ]
    image = None
    if not hidden and media is not None and media.file:
        video = u.media(media.file)
        properties.append(("og:video", video))
        if video.startswith("https://"):
            properties.append(("og:video:secure_url", video))
        properties.append(("og:video:type", media.content_type or "video/mp4"))
        if media.width and media.height:
            properties += [
                ("og:video:width", str(media.width)),
                ("og:video:height", str(media.height)),
            ]
        if media.poster_file:
            image = u.media(media.poster_file)
    if image is None:
        image = web_url(author.avatar_url)
    if image:
        properties.append(("og:image", image))
    names = _card(title, description, image)
    if not author.indexable or clip.visibility == Visibility.UNLISTED:
        names.append(("robots", NOINDEX))
    return PageMeta(canonical=url, alternate=clip.uri, properties=properties, names=names)


def tag_meta(name: str, settings: Settings) -> PageMeta:
    url = urls.current().tag(name)
    description = f"Public clips tagged #{name}, here and on other instances"
    return PageMeta(
        canonical=url,
        properties=[
            ("og:site_name", cached(settings).instance_name),
            ("og:type", "website"),
            ("og:url", url),
            ("og:title", f"#{name}"),
            ("og:description", description),
        ],
        names=_card(f"#{name}", description, None),
    )
