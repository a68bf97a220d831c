"""Account endpoints: registration, credentials, profiles, relationships, follow requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from tortoise.expressions import Q

from fedisora import ratelimits
from fedisora.api.entities import (
    credential_account,
    relationships,
    render_accounts,
    status_entities,
)
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.instance import IMAGE_SIZE_LIMIT
from fedisora.api.lookup import column, get_account
from fedisora.api.oauth import issue_token, token_entity
from fedisora.api.pagination import Page, link_header, merge_pages, page_of
from fedisora.api.replay_cache import visitor_page
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.models import (
    Account,
    Block,
    Clip,
    Comment,
    Follow,
    FollowState,
    Mute,
    OAuthApplication,
)
from fedisora.services import email_confirmation, follows, instance_settings
from fedisora.services import uploads as media
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.profiles import MAX_DISPLAY_NAME, MAX_NOTE, ProfileChange, update_profile
from fedisora.services.signup import MAX_REASON, SIGNUP_RATE, closed_message, sign_up
from fedisora.services.visibility import account_clips_visible_to

__all__ = ["routes"]


@endpoint("write", "write:accounts", auth=True, rate=SIGNUP_RATE)
async def register(ctx: Ctx) -> Response:
    """Sign up with an app token; ``FEDISORA_REGISTRATIONS`` decides open/approval/closed,
    unless an ``invite_code`` (of an ``/invite/<code>`` link) is given: then the invite."""
    p = ctx.params
    invite_code = p.text("invite_code", max_length=64)
    values = await instance_settings.effective(ctx.settings)
    if values.registrations == "closed" and not invite_code:
        raise Forbidden(closed_message(values))
    account = await sign_up(
        ctx.settings,
        username=p.required_text("username", max_length=64),
        email=p.required_text("email", max_length=254),
        password=p.required_text("password", max_length=1000),
        agreement=p.flag("agreement"),
        reason=p.text("reason", max_length=MAX_REASON) or "",
        invite_code=invite_code or None,
    )
    assert ctx.token is not None
    app = await OAuthApplication.get(pk=ctx.token.application_id)
    token = await issue_token(app, account, ctx.token.scopes.split())
    return json(token_entity(token))


@endpoint("read", "read:accounts", "profile", user=True)
async def verify_credentials(ctx: Ctx) -> Response:
    return json(await credential_account(ctx.me, ctx.user))


@endpoint("write", "write:accounts", user=True)
async def update_credentials(ctx: Ctx) -> Response:
    p = ctx.params
    change = ProfileChange()
    for upload in ("avatar", "header"):
        value = p.raw(upload)
        if value in (None, ""):
            continue
        if not isinstance(value, UploadFile):
            raise Invalid(f"{upload} must be an image file sent as multipart/form-data")
        change.images[upload] = await media.read_capped(value, IMAGE_SIZE_LIMIT)
    change.display_name = p.text("display_name", max_length=MAX_DISPLAY_NAME)
    note = p.text("note", max_length=MAX_NOTE)
    source = p.mapping("source")
    if note is None and isinstance(source.get("note"), str):
        note = source["note"]
    change.note = note
    for flag_name in ("locked", "discoverable", "indexable"):
        if flag_name in p:
            setattr(change, flag_name, p.flag(flag_name))
    me = await update_profile(ctx.me, change, ctx.settings)
    return json(await credential_account(me, ctx.user))


@endpoint("read", "read:accounts")
async def lookup(ctx: Ctx) -> Response:
    acct = ctx.params.required_text("acct", max_length=400).strip().lstrip("@")
    username, _, domain = acct.partition("@")
    if not domain or domain.lower() == ctx.settings.domain:
        found = await Account.get_or_none(username__iexact=username, domain=None)
    else:
        found = await Account.get_or_none(username__iexact=username, domain=domain.lower())
    if found is None or found.suspended or found.username == INSTANCE_ACTOR:
        raise NotFound("Record not found")
    return json((await render_accounts([found]))[0])


@endpoint("read", "read:accounts")
async def get_one(ctx: Ctx) -> Response:
    account = await get_account(ctx.path_id())
    return json((await render_accounts([account]))[0])


@endpoint("read", "read:statuses")
async def account_statuses(ctx: Ctx) -> Response:
    """Clips (and, unless excluded, comments) by an account, newest first."""
    return await visitor_page(ctx, lambda: _account_statuses(ctx))


async def _account_statuses(ctx: Ctx) -> Response:
    account = await get_account(ctx.path_id())
    viewer = ctx.account
    p = ctx.params
    page = Page.from_params(p)
    if viewer is not None and account.pk in await hidden_account_ids(viewer, mutes=False):
        return json([])
    only_media = p.flag("only_media")
    pinned = p.flag("pinned")
    exclude_replies = p.flag("exclude_replies")
    clips_q = await account_clips_visible_to(viewer, account)
    if clips_q is None:
        return json([])
    if pinned:
        clips_q = clips_q.filter(pinned=True)
    tagged = p.text("tagged")
    if tagged:
        clips_q = clips_q.filter(clip_tags__tag__name=tagged.lower().lstrip("#"))
    # (the clips they remix, with their authors, read with the page)
    items: list[Clip | Comment] = [
        *await page_of(clips_q, page, related=("remix_of", "remix_of.account"))
    ]
    if not (only_media or pinned or exclude_replies or tagged):
        comments_q = Comment.filter(account_id=account.pk, deleted_at=None)
        items = merge_pages(page, items, [*await page_of(comments_q, page)])
    authors = {account.pk: account}  # read once: for their visibility and their entities
    visible = await visible_statuses(viewer, items, authors=authors)
    body = await status_entities(viewer, visible, authors=authors)
    headers = link_header(ctx.request, items[0].pk, items[-1].pk) if items else {}
    return json(body, headers=headers)


async def _follow_list(ctx: Ctx, *, followers: bool) -> Response:
    account = await get_account(ctx.path_id())
    page = Page.from_params(ctx.params, maximum=80, default=40)
    found = await follows.network_page(
        ctx.account,
        account,
        followers=followers,
        limit=page.limit,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
    )
    body = await render_accounts(found.accounts)
    rows = found.rows
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(body, headers=headers)


@endpoint("read", "read:accounts")
async def followers(ctx: Ctx) -> Response:
    return await _follow_list(ctx, followers=True)


@endpoint("read", "read:accounts")
async def following(ctx: Ctx) -> Response:
    return await _follow_list(ctx, followers=False)


async def _relationship(ctx: Ctx, target: Account) -> Response:
    return json((await relationships(ctx.me, [target.pk]))[0])


def _relationship_action(
    action: Callable[[Account, Account], Awaitable[object]], scope: str
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that applies *action* (me, target) and answers the new Relationship."""

    @endpoint("write", scope, "follow", user=True)
    async def handler(ctx: Ctx) -> Response:
        target = await get_account(ctx.path_id())
        await action(ctx.me, target)
        return await _relationship(ctx, target)

    return handler


follow = _relationship_action(follows.follow, "write:follows")
unfollow = _relationship_action(follows.unfollow, "write:follows")
block = _relationship_action(follows.block, "write:blocks")
unblock = _relationship_action(follows.unblock, "write:blocks")
mute = _relationship_action(follows.mute, "write:mutes")
unmute = _relationship_action(follows.unmute, "write:mutes")


@endpoint("read", "read:follows", "follow", user=True)
async def relationships_endpoint(ctx: Ctx) -> Response:
    ids = [i for i in ctx.params.id_list("id") if i >= 0][:100]
    existing = set(await column(Account.filter(pk__in=ids), "id"))
    return json(await relationships(ctx.me, [i for i in ids if i in existing]))


@endpoint("read", "read:accounts", user=True)
async def search(ctx: Ctx) -> Response:
    p = ctx.params
    q = p.required_text("q", max_length=400).strip().lstrip("@")
    limit = max(1, min(p.number("limit", 40, high=2**31), 80))
    offset = p.number("offset", 0, high=10_000)
    username, _, domain = q.partition("@")
    # (tortoise's exclude(a=.., b=..) means NOT a AND NOT b, so the instance actor goes by id)
    instance_ids = await column(Account.filter(username=INSTANCE_ACTOR, domain=None), "id")
    query = Account.filter(suspended_at=None, origin_suspended_at=None).exclude(
        pk__in=list(instance_ids)
    )
    if domain:
        dom = None if domain.lower() == ctx.settings.domain else domain.lower()
        query = query.filter(username__istartswith=username, domain=dom)
    else:
        query = query.filter(Q(username__icontains=username) | Q(display_name__icontains=username))
    if p.flag("following"):
        ids = await column(
            Follow.filter(follower_id=ctx.me.pk, state=FollowState.ACCEPTED), "target_id"
        )
        query = query.filter(pk__in=list(ids))
    hidden = await hidden_account_ids(ctx.me, mutes=False)
    if hidden:
        query = query.exclude(pk__in=list(hidden))
    found = await query.order_by("-followers_count", "id").offset(offset).limit(limit)
    return json(await render_accounts(found))


@endpoint("read", "read:follows", "follow", user=True)
async def follow_requests(ctx: Ctx) -> Response:
    page = Page.from_params(ctx.params, maximum=80, default=40)
    rows = await page_of(Follow.filter(target_id=ctx.me.pk, state=FollowState.PENDING), page)
    found = {a.pk: a for a in await Account.filter(pk__in=[r.follower_id for r in rows])}
    body = await render_accounts([found[r.follower_id] for r in rows if r.follower_id in found])
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(body, headers=headers)


async def _pending_from(ctx: Ctx) -> tuple[Account, Follow]:
    requester = await get_account(ctx.path_id())
    row = await Follow.get_or_none(
        follower_id=requester.pk, target_id=ctx.me.pk, state=FollowState.PENDING
    )
    if row is None:
        raise NotFound("Record not found")
    return requester, row


@endpoint("write", "write:follows", "follow", user=True)
async def authorize_request(ctx: Ctx) -> Response:
    requester, row = await _pending_from(ctx)
    await follows.accept_follow(ctx.me, row)
    return await _relationship(ctx, requester)


@endpoint("write", "write:follows", "follow", user=True)
async def reject_request(ctx: Ctx) -> Response:
    requester, row = await _pending_from(ctx)
    await follows.reject_follow(ctx.me, row)
    return await _relationship(ctx, requester)


@endpoint("read", "read:blocks", "follow", user=True)
async def blocks_list(ctx: Ctx) -> Response:
    page = Page.from_params(ctx.params, maximum=80, default=40)
    rows = await page_of(Block.filter(account_id=ctx.me.pk), page)
    found = {a.pk: a for a in await Account.filter(pk__in=[r.target_id for r in rows])}
    body = await render_accounts([found[r.target_id] for r in rows if r.target_id in found])
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(body, headers=headers)


@endpoint("read", "read:mutes", "follow", user=True)
async def mutes_list(ctx: Ctx) -> Response:
    page = Page.from_params(ctx.params, maximum=80, default=40)
    rows = await page_of(Mute.filter(account_id=ctx.me.pk), page)
    found = {a.pk: a for a in await Account.filter(pk__in=[r.target_id for r in rows])}
    body = await render_accounts([found[r.target_id] for r in rows if r.target_id in found])
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(body, headers=headers)


@endpoint("write", "write:accounts", user=True, unconfirmed=True)
async def resend_confirmation(ctx: Ctx) -> Response:
    """Mastodon's ``POST /api/v1/emails/confirmations``: the confirmation mail again (the
    address cannot be changed here)."""
    from fedisora.api.http import client_ip

    assert ctx.user is not None
    if ctx.params.text("email"):
        raise Forbidden("The e-mail address cannot be changed here")
    await email_confirmation.resend_to(
        ctx.settings,
        ctx.user,
        ip=client_ip(ctx.request),
        store=ratelimits.for_app(ctx.request.app),
    )
    return json({})


@endpoint("read", "read:accounts", user=True, unconfirmed=True)
async def check_confirmation(ctx: Ctx) -> Response:
    """Mastodon's ``GET /api/v1/emails/check_confirmation``: whether it is confirmed."""
    assert ctx.user is not None
    return json(ctx.user.email_confirmed)


def routes() -> list[BaseRoute]:
    a = "/api/v1/accounts"
    return [
        *api_route("/api/v1/emails/confirmations", resend_confirmation, ["POST"]),
        *api_route("/api/v1/emails/check_confirmation", check_confirmation, ["GET"]),
        *api_route(a, register, ["POST"]),
        *api_route(f"{a}/verify_credentials", verify_credentials, ["GET"]),
        *api_route(f"{a}/update_credentials", update_credentials, ["PATCH"]),
        *api_route(f"{a}/lookup", lookup, ["GET"]),
        *api_route(f"{a}/relationships", relationships_endpoint, ["GET"]),
        *api_route(f"{a}/search", search, ["GET"]),
        *api_route(f"{a}/{{id}}", get_one, ["GET"]),
        *api_route(f"{a}/{{id}}/statuses", account_statuses, ["GET"]),
        *api_route(f"{a}/{{id}}/followers", followers, ["GET"]),
        *api_route(f"{a}/{{id}}/following", following, ["GET"]),
        *api_route(f"{a}/{{id}}/follow", follow, ["POST"]),
        *api_route(f"{a}/{{id}}/unfollow", unfollow, ["POST"]),
        *api_route(f"{a}/{{id}}/block", block, ["POST"]),
        *api_route(f"{a}/{{id}}/unblock", unblock, ["POST"]),
        *api_route(f"{a}/{{id}}/mute", mute, ["POST"]),
        *api_route(f"{a}/{{id}}/unmute", unmute, ["POST"]),
        *api_route("/api/v1/follow_requests", follow_requests, ["GET"]),
        *api_route("/api/v1/follow_requests/{id}/authorize", authorize_request, ["POST"]),
        *api_route("/api/v1/follow_requests/{id}/reject", reject_request, ["POST"]),
        *api_route("/api/v1/blocks", blocks_list, ["GET"]),
        *api_route("/api/v1/mutes", mutes_list, ["GET"]),
    ]
