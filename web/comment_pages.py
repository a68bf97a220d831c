"""The page of a local comment, for a browser at the comment's ActivityPub id.

``/users/<name>/comments/<id>`` serves ActivityPub clients the ``Note``
(:func:`fedisora.federation.routes.comment_object`) and a browser this page: the comment,
the clip it is on, the comment it answers, and a link to it in the clip's thread. Who may
open it is :func:`fedisora.services.visibility.can_see_comment` with the session's account
as viewer (the same rule as the JSON's); the clip and the answered comment are linked only
when the viewer may see them.
"""

from __future__ import annotations

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from activitypub.objects import web_url
from fedisora.ids import row_id
from fedisora.models import Account, Clip, Comment
from fedisora.services.account_deletion import is_deleted
from fedisora.services.text import clean_name
from fedisora.services.visibility import can_see_clip, can_see_comment, shown_sensitive
from web.clips import author_href, profile_path, session_account
from web.opengraph import shorten
from web.pages import html_errors, render
from web.profiles import find_local

__all__ = ["clip_href", "comment_anchor", "comment_href", "comment_page"]

_NO_COMMENT = "There is no such comment here, or it is not visible to you."


def comment_anchor(comment: Comment) -> str:
    """The id of a comment's ``article`` on its clip's page."""
    return f"comment-{comment.pk}"


def clip_href(clip: Clip, author: Account) -> str | None:
    if clip.local:
        return f"{profile_path(author)}/{clip.pk}"
    return web_url(clip.url) or web_url(clip.uri)


def comment_href(comment: Comment) -> str | None:
    """Where a link to *comment* goes: its own page (a local one is served here)."""
    return web_url(comment.url) or web_url(comment.uri)


@html_errors
async def comment_page(request: Request) -> Response:
    owner = await find_local(str(request.path_params["username"]))
    pk = row_id(str(request.path_params["comment_id"]))
    comment = None
    if pk is not None:
        comment = await Comment.get_or_none(pk=pk, account_id=owner.pk, local=True)
    if comment is None:
        raise HTTPException(404, _NO_COMMENT)
    if comment.deleted_at is not None or await is_deleted(owner):
        raise HTTPException(410, "This comment was deleted.")
    viewer = await session_account(request)
    if not await can_see_comment(viewer, comment):
        raise HTTPException(404, _NO_COMMENT)
    clip = await Clip.get(pk=comment.clip_id)
    clip_author = await Account.get(pk=clip.account_id)
    clip_visible = clip.deleted_at is None and await can_see_clip(viewer, clip)
    parent = parent_author = None
    if comment.parent_id is not None:
        answered = await Comment.get_or_none(pk=comment.parent_id, deleted_at=None)
        if answered is not None and await can_see_comment(viewer, answered):
            parent = answered
            parent_author = await Account.get(pk=answered.account_id)
    thread_href = None
    if clip_visible and clip.local:
        # The clip page's comments start right at this one (its cursor is "after the id
        # before it"), so the link lands on it whatever page of the thread it is on.
        anchor = comment_anchor(comment)
        thread_href = f"{clip_href(clip, clip_author)}?after={comment.pk - 1}#{anchor}"
    name = clean_name(owner.display_name) or owner.username
    summary = shorten(comment.spoiler_text or comment.text, 60)
    return render(
        request,
        "comment.html",
        comment=comment,
        html=Markup(comment.content),  # rendered here from its author's text
        sensitive=shown_sensitive(comment, owner),
        author=owner,
        author_href=profile_path(owner),
        title=f"{name}: “{summary}”" if summary else f"A comment by {name}",
        clip=clip if clip_visible else None,
        clip_author=clip_author,
        clip_href=clip_href(clip, clip_author) if clip_visible else None,
        parent=parent,
        parent_author=parent_author,
        parent_href=comment_href(parent) if parent is not None else None,
        parent_author_href=author_href(parent_author) if parent_author is not None else None,
        thread_href=thread_href,
    )
