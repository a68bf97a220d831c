"""The public page of a local clip.

A browser gets it at the clip's ActivityPub id ``/users/<name>/clips/<id>`` (ActivityPub
clients get the ``Note`` there: :mod:`activitypub.federation.routes` hands the browser branch
to :func:`clip_page`) and at ``/@<name>/<id>``, the clip's ``url``.

Who may open it is :func:`fedisora.services.visibility.can_see_clip` with the session's
account as viewer: a followers-only or direct clip is a 404 to anyone else, as its JSON is.
The comments listed are those the viewer may see (the API's batch rules), minus blocked and
muted authors, oldest first, :data:`~fedisora.services.threads.COMMENTS_PAGE` at a time: a
"more comments" link (a plain link with the ``after`` cursor, no script needed) shows the next
ones. A remote comment's text is re-rendered here from its plain text.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from activitypub.federation.routes import wants_activity
from activitypub.objects import web_url
from fedisora import urls
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.ids import row_id
from fedisora.models import Account, Clip, Comment
from fedisora.services.account_deletion import is_deleted
from fedisora.services.accounts import could_name_local
from fedisora.services.text import clean_name
from fedisora.services.threads import COMMENTS_PAGE, clip_comments
from fedisora.services.visibility import can_see_clip
from web.clips import author_href, clip_cards, profile_path, remote_html, session_account
from web.opengraph import clip_meta, handle, shorten
from web.pages import html_errors, render
from web.profiles import find_local

__all__ = ["CommentView", "RemixSource", "clip_page", "routes"]

_NO_CLIP = "There is no such clip here, or it is not visible to you."


@dataclass(frozen=True)
class CommentView:
    """One comment as ``clip.html`` shows it."""

    comment: Comment
    author: Account
    html: Markup
    author_href: str | None
    in_reply_to: Account | None
    """The author of the comment this one answers, when the viewer may see that comment."""

    @property
    def remote(self) -> bool:
        return not self.comment.local


@dataclass(frozen=True)
class RemixSource:
    """The clip a remix was made from, when the viewer may see it."""

    href: str | None
    author: Account
    local: bool


def _clip_id(value: object) -> int:
    found = row_id(str(value))
    if found is None:
        raise HTTPException(404, _NO_CLIP)
    return found


def _after_param(request: Request) -> int | None:
    """The ``after`` cursor of the comments (None: the first ones); anything else than a
    comment id is a 400."""
    raw = request.query_params.get("after", "")
    if raw == "":
        return None
    found = row_id(raw)
    if found is None:
        raise HTTPException(400, "after must be the id of a comment (a whole number).")
    return found


async def _comments(
    viewer: Account | None, clip: Clip, after: int | None
) -> tuple[list[CommentView], int | None]:
    """One page of the comments under *clip* that *viewer* may see, oldest first, after the
    comment id *after*; and the cursor of the next page (None: no more)."""
    page = await clip_comments(viewer, clip, after=after, limit=COMMENTS_PAGE)
    shown = page.comments  # blocked and muted authors are left out by the query
    hidden = await hidden_account_ids(viewer)
    by_id: dict[int, Comment] = {c.pk: c for c in shown}
    # The comments answered on an earlier page: named only when the viewer may see them.
    missing = {c.parent_id for c in shown if c.parent_id is not None} - set(by_id)
    if missing:
        parents = await Comment.filter(pk__in=sorted(missing))
        for answered in await visible_statuses(viewer, parents):
            if answered.account_id not in hidden:
                by_id[answered.pk] = answered
    account_ids = {c.account_id for c in by_id.values()}
    accounts = {a.pk: a for a in await Account.filter(pk__in=account_ids)}
    views = []
    for c in shown:
        author = accounts.get(c.account_id)
        if author is None:
            continue
        # A local comment was rendered here from its author's text (interactions.py).
        html = Markup(c.content) if c.local else remote_html(c.text)
        parent = by_id.get(c.parent_id) if c.parent_id is not None else None
        views.append(
            CommentView(
                comment=c,
                author=author,
                html=html,
                author_href=author_href(author),
                in_reply_to=accounts.get(parent.account_id) if parent is not None else None,
            )
        )
    return views, page.after


async def _remix_source(viewer: Account | None, clip: Clip) -> RemixSource | None:
    if clip.remix_of_id is None:
        return None
    source = await Clip.get_or_none(pk=clip.remix_of_id)
    if source is None or not await can_see_clip(viewer, source):
        return None
    author = await Account.get(pk=source.account_id)
    if source.local:
        href: str | None = f"{profile_path(author)}/{source.pk}"
    else:
        href = web_url(source.url) or web_url(source.uri)
    return RemixSource(href=href, author=author, local=source.local)


@html_errors
async def clip_page(request: Request) -> Response:
    owner = await find_local(str(request.path_params["username"]))
    clip_id = _clip_id(request.path_params["clip_id"])
    deleted = await is_deleted(owner)
    if owner.suspended_at is not None and not deleted:
        raise HTTPException(403, f"@{owner.username} is suspended by this instance's moderators.")
    clip = await Clip.get_or_none(pk=clip_id, account_id=owner.pk, local=True)
    if clip is None:
        raise HTTPException(404, _NO_CLIP)
    if clip.deleted_at is not None or deleted:
        raise HTTPException(410, "This clip was deleted.")
    viewer = await session_account(request)
    if not await can_see_clip(viewer, clip):
        raise HTTPException(404, _NO_CLIP)
    cards = await clip_cards(viewer, [clip], mutes=False)
    if not cards:
        raise HTTPException(404, _NO_CLIP)
    card = cards[0]
    after = _after_param(request)
    comments, next_after = await _comments(viewer, clip, after)
    settings = request.app.state.settings
    name = clean_name(owner.display_name) or owner.username
    summary = shorten(f"CW: {clip.spoiler_text}" if clip.spoiler_text else clip.caption, 60)
    return render(
        request,
        "clip.html",
        card=card,
        clip=clip,
        author=owner,
        handle=handle(owner, settings),
        author_href=profile_path(owner),
        title=f"{name}: “{summary}”" if summary else f"A clip by {name}",
        comments=comments,
        comments_after=after,
        first_comments_href=f"{profile_path(owner)}/{clip.pk}#comments",
        next_comments_href=(
            f"{profile_path(owner)}/{clip.pk}?after={next_after}#comments" if next_after else None
        ),
        remix=await _remix_source(viewer, clip),
        meta=clip_meta(clip, owner, card.media, settings),
    )


async def clip_at(request: Request) -> Response:
    """``/@<name>/<id>``: the clip page; ActivityPub clients are sent to the ``Note``."""
    username = str(request.path_params["username"])
    raw = str(request.path_params["clip_id"])
    if wants_activity(request):
        clip_id = row_id(raw)
        if not could_name_local(username) or clip_id is None:
            return JSONResponse({"error": "no such clip"}, 404, headers={"Vary": "Accept"})
        return RedirectResponse(
            urls.current().clip(username, clip_id), status_code=302, headers={"Vary": "Accept"}
        )
    return await clip_page(request)


def routes() -> list[BaseRoute]:
    return [
        Route("/@{username}/{clip_id}", clip_at),
    ]
