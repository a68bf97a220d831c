"""The public page of a local clip.

A browser gets it at the clip's ActivityPub id ``/users/<name>/clips/<id>`` (ActivityPub
clients get the ``Note`` there: :mod:`fedisora.federation.routes` hands the browser branch
to :func:`clip_page`) and at ``/@<name>/<id>``, the clip's ``url``.

Who may open it is :func:`fedisora.services.visibility.can_see_clip` with the session's
account as viewer: a followers-only or direct clip is a 404 to anyone else, as its JSON is.
The comments listed are those the viewer may see (the API's batch rules), minus blocked and
muted authors, oldest first, :data:`~fedisora.services.threads.COMMENTS_PAGE` at a time: a
"more comments" link (a plain link with the ``after`` cursor, no script needed) shows the next
ones. A remote comment's text is re-rendered here from its plain text.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise.queryset import QuerySet

from activitypub.objects import web_url
from fedisora import urls
from fedisora.api.replay_cache import visitor_html
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.errors import FedisoraError, Invalid
from fedisora.fastload import by_ids, prepared, prepared_one
from fedisora.ids import row_id
from fedisora.models import Account, Clip, Comment
from fedisora.negotiation import wants_activity
from fedisora.services import idempotency, interactions
from fedisora.services.account_deletion import is_deleted
from fedisora.services.accounts import could_name_local
from fedisora.services.interactions import MAX_COMMENT
from fedisora.services.remixes import approved
from fedisora.services.text import clean_name
from fedisora.services.threads import COMMENTS_PAGE, clip_comments
from fedisora.services.visibility import (
    can_see_comment,
    shown_sensitive,
    visible_to,
)
from web.clips import (
    ClipCard,
    author_href,
    clip_cards,
    profile_path,
    remote_html,
    session_account,
)
from web.feed import action_form, back_to, feed_items
from web.opengraph import clip_meta, handle, shorten
from web.pages import html_errors, render
from web.profiles import find_local

__all__ = ["CommentView", "RemixSource", "clip_page", "routes"]

_NO_CLIP = "There is no such clip here, or it is not visible to you."
REMIXES_SHOWN = 12
"""Remixes shown under a clip (the newest)."""


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

    @property
    def sensitive(self) -> bool:
        """Behind a click: its own flag, or its author marked sensitive by a moderator."""
        return shown_sensitive(self.comment, self.author)


@dataclass(frozen=True)
class RemixSource:
    """The clip a remix was made from, when the viewer may see it."""

    href: str | None
    author: Account
    local: bool


def comment_html(comment: Comment) -> Markup:
    """A comment's text as a page shows it: a local one as rendered here from its author's
    text (:mod:`fedisora.services.interactions`), a remote one re-rendered from plain text."""
    return Markup(comment.content) if comment.local else remote_html(comment.text)


def clip_id_or_404(value: object) -> int:
    """A clip id from a path (404 with the pages' message for anything else)."""
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
    accounts = {a.pk: a for a in await by_ids(Account, account_ids)}
    views = []
    for c in shown:
        author = accounts.get(c.account_id)
        if author is None:
            continue
        html = comment_html(c)
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


async def _remix_source(
    viewer: Account | None, clip: Clip, authors: dict[int, Account]
) -> RemixSource | None:
    if clip.remix_of_id is None:
        return None
    found = await by_ids(Clip, [clip.remix_of_id])
    source = found[0] if found else None
    # (its author's row read once, for the check and the link; kept in *authors*)
    if source is None or not await visible_to(viewer, [source], authors=authors):
        return None
    author = authors[source.account_id]
    if source.local:
        href: str | None = f"{profile_path(author)}/{source.pk}"
    else:
        href = web_url(source.url) or web_url(source.uri)
    return RemixSource(href=href, author=author, local=source.local)


def _local_clip(clip_id: int, account_id: int) -> QuerySet[Clip]:
    return Clip.filter(pk=clip_id, account_id=account_id, local=True)


async def _page_clip(request: Request) -> tuple[Account, Clip, Account | None]:
    """The local clip the path names, its author and the viewer; the page's errors as
    :class:`HTTPException` (404 for a clip the viewer may not see, as for a missing one)."""
    owner = await find_local(str(request.path_params["username"]))
    clip_id = clip_id_or_404(request.path_params["clip_id"])
    deleted = await is_deleted(owner)
    if owner.suspended_at is not None and not deleted:
        raise HTTPException(403, f"@{owner.username} is suspended by this instance's moderators.")
    clip = await prepared_one("clip_page", Clip, _local_clip, clip_id, owner.pk)
    if clip is None:
        raise HTTPException(404, _NO_CLIP)
    if clip.deleted_at is not None or deleted:
        raise HTTPException(410, "This clip was deleted.")
    viewer = await session_account(request)
    # (the owner's row, just read, is the author's: not read again for the check)
    if not await visible_to(viewer, [clip], authors={owner.pk: owner}):
        raise HTTPException(404, _NO_CLIP)
    return owner, clip, viewer


async def _reply_target(viewer: Account | None, clip: Clip, raw: object) -> CommentView | None:
    """The comment a new comment answers (``reply_to``), when it is one the viewer may see
    under this clip; else None (the composer then answers the clip)."""
    if viewer is None or not isinstance(raw, str) or not raw:
        return None
    pk = row_id(raw)
    if pk is None:
        return None
    found = await Comment.get_or_none(pk=pk, clip_id=clip.pk, deleted_at=None)
    if found is None or not await can_see_comment(viewer, found):
        return None
    if found.account_id in await hidden_account_ids(viewer):
        return None
    author = await Account.get(pk=found.account_id)
    return CommentView(found, author, comment_html(found), author_href(author), None)


async def _remixes(
    viewer: Account | None, clip: Clip, authors: dict[int, Account]
) -> list[ClipCard]:
    """The newest approved remixes of *clip* the viewer may see (the remix lineage below);
    *authors*: the account rows this request read (:func:`web.clips.clip_cards`)."""

    def newest(source_id: int) -> QuerySet[Clip]:
        query = Clip.filter(approved(clip.local), remix_of_id=source_id, deleted_at=None)
        return query.order_by("-id").limit(REMIXES_SHOWN)

    rows = await prepared(("clip_page_remixes", clip.local), Clip, newest, clip.pk)
    return await clip_cards(viewer, rows, authors=authors)


async def clip_page_response(
    request: Request,
    *,
    status: int = 200,
    comment_error: str | None = None,
    comment_text: str = "",
    reply_to: object = None,
) -> Response:
    """The clip page, with the composer's state after a refused comment."""
    owner, clip, viewer = await _page_clip(request)
    authors = {owner.pk: owner}  # the account rows read: each read once for the page
    cards = await clip_cards(viewer, [clip], mutes=False, authors=authors)
    if not cards:
        raise HTTPException(404, _NO_CLIP)
    card = cards[0]
    item = (await feed_items(viewer, [card]))[0]
    after = _after_param(request)
    comments, next_after = await _comments(viewer, clip, after)
    if reply_to is None:
        reply_to = request.query_params.get("reply_to")
    settings = request.app.state.settings
    name = clean_name(owner.display_name) or owner.username
    summary = shorten(f"CW: {clip.spoiler_text}" if clip.spoiler_text else clip.caption, 60)
    page = f"{profile_path(owner)}/{clip.pk}"
    return render(
        request,
        "clip.html",
        status=status,
        card=card,
        item=item,
        here=page,
        clip=clip,
        author=owner,
        viewer=viewer,
        handle=handle(owner, settings),
        author_href=profile_path(owner),
        title=f"{name}: “{summary}”" if summary else f"A clip by {name}",
        comments=comments,
        comments_after=after,
        first_comments_href=f"{page}#comments",
        next_comments_href=f"{page}?after={next_after}#comments" if next_after else None,
        remix=await _remix_source(viewer, clip, authors),
        remixes=await _remixes(viewer, clip, authors),
        download_href=card.video_src if clip.local else None,
        reply_to=await _reply_target(viewer, clip, reply_to),
        comment_error=comment_error,
        comment_text=comment_text,
        form_token=secrets.token_urlsafe(18),
        max_comment=MAX_COMMENT,
        meta=clip_meta(clip, owner, card.media, settings),
    )


@html_errors
async def clip_page(request: Request) -> Response:
    return await visitor_html(request, lambda: clip_page_response(request))


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


@html_errors
async def post_comment(request: Request) -> Response:
    """``POST /@<name>/<id>/comments``: a comment on the clip (``text``; ``parent_id`` to
    answer a comment; ``spoiler_text``), through the API's own service; a refusal comes back
    as the page with the message and the text kept."""
    owner, clip, _viewer = await _page_clip(request)
    me, form, refused = await action_form(request)
    if refused is not None:
        return refused
    assert me is not None
    text = str(form.get("text", ""))[: MAX_COMMENT * 2]
    parent_raw = form.get("parent_id")
    parent = None
    # The form's one-time token: the same form sent twice (a double click, a resent POST)
    # makes one comment, as an API client's Idempotency-Key does.
    token = str(form.get("form_token", "")).strip()
    once = idempotency.Key(me.pk, f"web-comment {token}"[: idempotency.MAX_KEY]) if token else None
    made = await idempotency.previous(once) if once is not None else None
    if made is not None:
        return _to_comment(owner, clip, made)
    try:
        if isinstance(parent_raw, str) and parent_raw:
            target = await _reply_target(me, clip, parent_raw)
            if target is None:
                raise Invalid("The comment you are answering is gone or not visible to you.")
            parent = target.comment
        row = await interactions.comment(
            me,
            clip,
            text,
            parent=parent,
            spoiler_text=str(form.get("spoiler_text", "")).strip()[:500],
            once=once,
        )
    except idempotency.Replayed:
        assert once is not None  # its twin, sent at the same moment, made the comment
        made = await idempotency.previous(once)
        if made is None:
            raise HTTPException(
                409, "This comment was sent twice at once; reload the page."
            ) from None
        return _to_comment(owner, clip, made)
    except FedisoraError as exc:
        message = exc.message
        if message.startswith("comment is") or message.startswith("a comment"):
            message = message[0].upper() + message[1:] + "."
        return await clip_page_response(
            request,
            status=exc.status,
            comment_error=message,
            comment_text=text,
            reply_to=parent_raw,
        )
    return _to_comment(owner, clip, row.pk)


def _to_comment(owner: Account, clip: Clip, comment_id: int) -> Response:
    """Back to the clip page, its comments starting at *comment_id*."""
    anchor = f"comment-{comment_id}"
    return RedirectResponse(
        f"{profile_path(owner)}/{clip.pk}?after={comment_id - 1}#{anchor}", status_code=303
    )


@html_errors
async def delete_comment(request: Request) -> Response:
    """``POST /comments/<id>/delete``: the author of the comment (or of the clip) deletes it,
    through the same service as the API's ``DELETE /api/v1/statuses/:id``."""
    me, form, refused = await action_form(request)
    if refused is not None:
        return refused
    assert me is not None
    pk = row_id(str(request.path_params["comment_id"]))
    row = await Comment.get_or_none(pk=pk, deleted_at=None) if pk is not None else None
    if row is None or not await can_see_comment(me, row):
        raise HTTPException(404, "There is no such comment here, or it is not visible to you.")
    try:
        await interactions.delete_comment(me, row)
    except FedisoraError as exc:
        raise HTTPException(exc.status, exc.message) from None
    return RedirectResponse(back_to(request, form, "#comments"), status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/@{username}/{clip_id}", clip_at),
        Route("/@{username}/{clip_id}/comments", post_comment, methods=["POST"]),
        Route("/comments/{comment_id}/delete", delete_comment, methods=["POST"]),
    ]
