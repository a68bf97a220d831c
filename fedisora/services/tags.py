"""Hashtags as anyone may see them: which tags exist, and how much they are used.

A tag row is written for every clip that carries it, private and direct ones included (the
clip's own ``tags`` need it). What is shown about a tag outside those clips (that it exists,
its use counts and authors, search results, trends) comes only from clips anyone may see:
public and unlisted ones, not deleted, whose author is not suspended (Mastodon counts tag
history on public and unlisted statuses alone). So a tag used only in followers-only or
direct clips is, to everyone, a tag that does not exist.
"""

from __future__ import annotations

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from fedisora.models import ClipTag, Tag, Visibility

__all__ = ["COUNTED", "counted_uses", "find_visible", "visible_tags"]

COUNTED = (Visibility.PUBLIC, Visibility.UNLISTED)
"""The visibilities of the clips a tag's existence and counts come from."""


def counted_uses(*, visibility: tuple[Visibility, ...] = COUNTED) -> QuerySet[ClipTag]:
    """The uses of tags that anyone may see (narrow *visibility* further for trends, which
    count public clips only)."""
    return ClipTag.filter(
        clip__visibility__in=list(visibility),
        clip__deleted_at=None,
        clip__account__suspended_at=None,
        clip__account__origin_suspended_at=None,
    )


def visible_tags() -> QuerySet[Tag]:
    """Tags with at least one use anyone may see."""
    return Tag.filter(id__in=Subquery(counted_uses().values("tag_id")))


async def find_visible(name: str) -> Tag | None:
    """The tag called *name* (stored form: lower case, no ``#``), if anyone may see it."""
    return await visible_tags().get_or_none(name=name)
