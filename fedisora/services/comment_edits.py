"""Editing a comment's text (the clip-side counterpart is ``posts.edit_clip``)."""

from __future__ import annotations

from typing import Any

from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.models import Account, Comment, Mention, utcnow
from fedisora.services import events
from fedisora.services.entity_versions import bump_comments
from fedisora.services.interactions import MAX_COMMENT
from fedisora.services.posts import MAX_SPOILER, _render_caption

__all__ = ["edit_comment"]


async def edit_comment(
    editor: Account,
    row: Comment,
    *,
    text: str | None = None,
    sensitive: bool | None = None,
    spoiler_text: str | None = None,
    language: str | None = None,
) -> Comment:
    """Change a comment's text and flags; only its author may. Emits ``comment.updated`` in
    the transaction of the change (federated as an ``Update`` of its Note)."""
    if row.account_id != editor.pk:
        raise Forbidden("only the author can edit a comment")
    if row.deleted_at is not None:
        raise NotFound("that comment was deleted")
    new_text = row.text if text is None else text
    new_spoiler = row.spoiler_text if spoiler_text is None else spoiler_text
    if not new_text.strip():
        raise Invalid("a comment needs some text")
    if len(new_text) > MAX_COMMENT:
        raise Invalid(f"comment is {len(new_text)} characters; the limit is {MAX_COMMENT}")
    if len(new_spoiler) > MAX_SPOILER:
        raise Invalid(f"content warning is longer than {MAX_SPOILER} characters")
    content, mentioned, _tags = await _render_caption(new_text)
    row.text = new_text
    row.content = content
    row.spoiler_text = new_spoiler
    if sensitive is not None:
        row.sensitive = sensitive
    row.sensitive = row.sensitive or bool(new_spoiler)
    if language is not None:
        row.language = language
    row.edited_at = utcnow()
    async with events.transaction() as conn:
        await row.save(using_db=conn)
        for account in mentioned:
            await Mention.get_or_create(
                account=account, comment=row, target_key=f"comment:{row.pk}", using_db=conn
            )
        await bump_comments([row.pk], conn)  # its mentions: cached entities go
        versions: list[Any] = list(
            await Comment.filter(pk=row.pk).using_db(conn).values_list("version", flat=True)
        )
        row.version = int(versions[0])
        await events.emit(conn, "comment.updated", editor.pk, comment_id=row.pk)
    return row
