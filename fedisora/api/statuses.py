"""Status endpoints. A clip is a status with one video; a comment is a reply; a remix a quote.

``POST /api/v1/statuses`` posts a clip when given ``media_ids`` naming a finished render (one
video whose provenance the render queue signed), a comment when given ``in_reply_to_id``, and a
remix when a clip also names ``quoted_status_id``. ``Idempotency-Key`` makes retries safe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.entities import reblog_entity, render_accounts, status_entities
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.lookup import get_status, get_status_row
from fedisora.api.pagination import Page, link_header, page_of
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.errors import Conflict, Forbidden, Invalid, NotFound
from fedisora.models import (
    Account,
    Bookmark,
    Boost,
    Clip,
    Comment,
    Like,
    MediaFile,
    RenderJob,
)
from fedisora.services import bookmarks, idempotency, interactions, posts, threads
from fedisora.services.comment_edits import edit_comment
from render.states import READY

__all__ = ["routes"]

Status = Clip | Comment


async def _one(ctx: Ctx, status: Status) -> Response:
    fresh = await type(status).get(pk=status.pk)
    return json((await status_entities(ctx.account, [fresh]))[0])


async def _create(ctx: Ctx, once: idempotency.Key | None) -> Status:
    p = ctx.params
    me = ctx.me
    text = p.text("status") or ""
    spoiler = p.text("spoiler_text", max_length=posts.MAX_SPOILER) or ""
    visibility = p.text("visibility")
    sensitive = p.flag("sensitive")
    language = p.text("language", max_length=16) or None
    media_ids = p.id_list("media_ids")
    if "poll" in p or p.mapping("poll"):
        raise Invalid("polls are not supported on this server")
    if p.text("scheduled_at"):
        raise Invalid("scheduled statuses are not supported on this server")
    reply_to = p.id("in_reply_to_id")
    if reply_to is not None:
        if media_ids:
            raise Invalid("comments cannot carry media: post a clip instead")
        target = await get_status(me, reply_to)
        if isinstance(target, Clip):
            clip, parent = target, None
        else:
            clip, parent = await Clip.get(pk=target.clip_id), target
        return await interactions.comment(
            me,
            clip,
            text,
            parent=parent,
            visibility=visibility,
            sensitive=sensitive,
            spoiler_text=spoiler,
            language=language,
            once=once,
        )
    if len(media_ids) != 1:
        raise Invalid(
            "a clip needs exactly one video from a finished render in media_ids "
            "(text-only posts are not supported: fedisora is a video platform)"
        )
    media = await MediaFile.get_or_none(pk=media_ids[0])
    if media is None or media.account_id != me.pk:
        raise Invalid(f"media {media_ids[0]} does not exist or is not yours")
    remix_of: Clip | None = None
    quoted = p.id("quoted_status_id")
    if quoted is None:
        quoted = p.id("quote_id")  # the name some clients (and Mastodon.py) also send
    if quoted is not None:
        source = await get_status(me, quoted)
        if not isinstance(source, Clip):
            raise Invalid("only clips can be remixed, not comments")
        remix_of = source
    job = await RenderJob.get_or_none(output_id=media.pk, account_id=me.pk, state=READY)
    if job is not None:
        # A render's own output: publishing goes through the render queue, which checks cameo
        # consent once more and moves the job to "published".
        planned = job.spec.get("remix_clip_id")
        if remix_of is not None and remix_of.pk != planned:
            raise Invalid("this render was not made as a remix of that status")
        from render.service import publish_render

        return await publish_render(
            me,
            job,
            caption=text,
            visibility=visibility or "public",
            sensitive=sensitive,
            spoiler_text=spoiler,
            language=language,
            engine=getattr(ctx.request.app.state, "engine", None),
            once=once,
        )
    return await posts.post_clip(
        me,
        media,
        caption=text,
        visibility=visibility or "public",
        sensitive=sensitive,
        spoiler_text=spoiler,
        language=language,
        remix_of=remix_of,
        once=once,
    )


async def _made(once: idempotency.Key) -> Status | None:
    """The live status *once* made within its time, if any (a deleted one frees the key)."""
    status_id = await idempotency.previous(once)
    if status_id is None:
        return None
    status = await get_status_row(status_id)
    if status is None or status.deleted_at is not None:
        await idempotency.forget(once)
        return None
    return status


@endpoint("write", "write:statuses", user=True)
async def create(ctx: Ctx) -> Response:
    """Post; a retry with the same ``Idempotency-Key`` answers the first try's status, which
    the key was stored with in one transaction (:mod:`fedisora.services.idempotency`)."""
    once = idempotency.Key.from_header(ctx.me.pk, ctx.request.headers.get("idempotency-key"))
    if once is not None and (made := await _made(once)) is not None:
        return await _one(ctx, made)
    try:
        status = await _create(ctx, once)
    except Conflict:
        # A concurrent try with this key stored its status first (ours was rolled back), or
        # holds the render being published: answer its status once it is there.
        made = None if once is None else await _made(once)
        if made is None:
            raise
        status = made
    return await _one(ctx, status)


@endpoint("read", "read:statuses")
async def get_one(ctx: Ctx) -> Response:
    status = await get_status(ctx.account, ctx.path_id())
    return json((await status_entities(ctx.account, [status]))[0])


@endpoint("write", "write:statuses", user=True)
async def delete(ctx: Ctx) -> Response:
    status = await get_status(ctx.me, ctx.path_id())
    entity = (await status_entities(ctx.me, [status]))[0]
    entity["text"] = status.caption if isinstance(status, Clip) else status.text
    if isinstance(status, Clip):
        if status.account_id != ctx.me.pk:
            raise NotFound("Record not found")
        await posts.delete_clip(ctx.me, status)
    else:
        await interactions.delete_comment(ctx.me, status)
    return json(entity)


@endpoint("write", "write:statuses", user=True)
async def edit(ctx: Ctx) -> Response:
    status = await get_status(ctx.me, ctx.path_id())
    if status.account_id != ctx.me.pk:
        raise Forbidden("This action is not allowed")
    p = ctx.params
    sensitive = p.flag("sensitive") if "sensitive" in p else None
    if isinstance(status, Clip):
        ids = p.id_list("media_ids")
        if ids and ids != [status.media_id]:
            raise Invalid("a clip's video cannot be replaced; post a new clip instead")
        await posts.edit_clip(
            ctx.me,
            status,
            caption=p.text("status"),
            sensitive=sensitive,
            spoiler_text=p.text("spoiler_text", max_length=posts.MAX_SPOILER),
            language=p.text("language", max_length=16),
        )
    else:
        await edit_comment(
            ctx.me,
            status,
            text=p.text("status"),
            sensitive=sensitive,
            spoiler_text=p.text("spoiler_text", max_length=posts.MAX_SPOILER),
            language=p.text("language", max_length=16),
        )
    return await _one(ctx, status)


@endpoint("read", "read:statuses")
async def source(ctx: Ctx) -> Response:
    status = await get_status(ctx.account, ctx.path_id())
    if ctx.account is None or status.account_id != ctx.account.pk:
        raise NotFound("Record not found")
    text = status.caption if isinstance(status, Clip) else status.text
    return json({"id": str(status.pk), "text": text, "spoiler_text": status.spoiler_text})


@endpoint("read", "read:statuses")
async def context(ctx: Ctx) -> Response:
    """Ancestors (the clip, then parent comments) and descendants (the reply tree, in order),
    bounded as Mastodon bounds them (:mod:`fedisora.services.threads`)."""
    status = await get_status(ctx.account, ctx.path_id())
    ancestors, descendants = await threads.thread_context(ctx.account, status)
    return json(
        {
            "ancestors": await status_entities(ctx.account, ancestors),
            "descendants": await status_entities(ctx.account, descendants),
        }
    )


@endpoint("write", "write:statuses", user=True)
async def reblog(ctx: Ctx) -> Response:
    status = await get_status(ctx.me, ctx.path_id())
    if not isinstance(status, Clip):
        raise Invalid("only clips can be boosted, not comments")
    row = await interactions.boost(ctx.me, status)
    fresh = await Clip.get(pk=status.pk)
    inner = (await status_entities(ctx.me, [fresh]))[0]
    return json(reblog_entity(row, ctx.me, inner))


@endpoint("write", "write:statuses", user=True)
async def unreblog(ctx: Ctx) -> Response:
    status = await get_status(ctx.me, ctx.path_id())
    if isinstance(status, Clip):
        await interactions.unboost(ctx.me, status)
    return await _one(ctx, status)


def _status_action(
    action: Callable[[Account, Status], Awaitable[object]], scope: str
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that applies *action* (me, status) and answers the status as it now is."""

    @endpoint("write", scope, user=True)
    async def handler(ctx: Ctx) -> Response:
        status = await get_status(ctx.me, ctx.path_id())
        await action(ctx.me, status)
        return await _one(ctx, status)

    return handler


favourite = _status_action(interactions.like, "write:favourites")
unfavourite = _status_action(interactions.unlike, "write:favourites")
bookmark = _status_action(bookmarks.bookmark, "write:bookmarks")
unbookmark = _status_action(bookmarks.unbookmark, "write:bookmarks")
pin = _status_action(bookmarks.pin, "write:accounts")
unpin = _status_action(bookmarks.unpin, "write:accounts")


async def _accounts_page(ctx: Ctx, rows: list[Any]) -> Response:
    ids = [r.account_id for r in rows]
    hidden = await hidden_account_ids(ctx.account, mutes=False)
    found = {
        a.pk: a
        for a in await Account.filter(pk__in=ids, suspended_at=None, origin_suspended_at=None)
    }
    body = await render_accounts([found[i] for i in ids if i in found and i not in hidden])
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(body, headers=headers)


@endpoint("read", "read:accounts")
async def favourited_by(ctx: Ctx) -> Response:
    status = await get_status(ctx.account, ctx.path_id())
    kind = "clip" if isinstance(status, Clip) else "comment"
    page = Page.from_params(ctx.params, maximum=80, default=40)
    rows = await page_of(Like.filter(target_key=f"{kind}:{status.pk}"), page)
    return await _accounts_page(ctx, rows)


@endpoint("read", "read:accounts")
async def reblogged_by(ctx: Ctx) -> Response:
    status = await get_status(ctx.account, ctx.path_id())
    if not isinstance(status, Clip):
        return json([])
    page = Page.from_params(ctx.params, maximum=80, default=40)
    rows = await page_of(Boost.filter(clip_id=status.pk), page)
    return await _accounts_page(ctx, rows)


async def _statuses_by_ids(viewer: Account, ids: list[int]) -> list[Status]:
    clips = {c.pk: c for c in await Clip.filter(pk__in=ids)}
    comments = {c.pk: c for c in await Comment.filter(pk__in=ids)}
    found: list[Status] = []
    for i in ids:
        row: Status | None = clips.get(i) or comments.get(i)
        if row is not None:
            found.append(row)
    return await visible_statuses(viewer, found)


@endpoint("read", "read:bookmarks", user=True)
async def bookmarks_list(ctx: Ctx) -> Response:
    page = Page.from_params(ctx.params)
    rows = await page_of(Bookmark.filter(account_id=ctx.me.pk), page)
    statuses = await _statuses_by_ids(ctx.me, [r.status_id for r in rows])
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(await status_entities(ctx.me, statuses), headers=headers)


@endpoint("read", "read:favourites", user=True)
async def favourites_list(ctx: Ctx) -> Response:
    page = Page.from_params(ctx.params)
    rows = await page_of(Like.filter(account_id=ctx.me.pk), page)
    ids = [r.clip_id if r.clip_id is not None else r.comment_id for r in rows]
    statuses = await _statuses_by_ids(ctx.me, [i for i in ids if i is not None])
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(await status_entities(ctx.me, statuses), headers=headers)


def routes() -> list[BaseRoute]:
    s = "/api/v1/statuses"
    return [
        *api_route(s, create, ["POST"]),
        *api_route(f"{s}/{{id}}", get_one, ["GET"]),
        *api_route(f"{s}/{{id}}", delete, ["DELETE"]),
        *api_route(f"{s}/{{id}}", edit, ["PUT"]),
        *api_route(f"{s}/{{id}}/source", source, ["GET"]),
        *api_route(f"{s}/{{id}}/context", context, ["GET"]),
        *api_route(f"{s}/{{id}}/favourite", favourite, ["POST"]),
        *api_route(f"{s}/{{id}}/unfavourite", unfavourite, ["POST"]),
        *api_route(f"{s}/{{id}}/reblog", reblog, ["POST"]),
        *api_route(f"{s}/{{id}}/unreblog", unreblog, ["POST"]),
        *api_route(f"{s}/{{id}}/bookmark", bookmark, ["POST"]),
        *api_route(f"{s}/{{id}}/unbookmark", unbookmark, ["POST"]),
        *api_route(f"{s}/{{id}}/pin", pin, ["POST"]),
        *api_route(f"{s}/{{id}}/unpin", unpin, ["POST"]),
        *api_route(f"{s}/{{id}}/favourited_by", favourited_by, ["GET"]),
        *api_route(f"{s}/{{id}}/reblogged_by", reblogged_by, ["GET"]),
        *api_route("/api/v1/bookmarks", bookmarks_list, ["GET"]),
        *api_route("/api/v1/favourites", favourites_list, ["GET"]),
    ]
