"""Mastodon's admin API for accounts: list them, look one up, approve or reject a sign-up,
moderate it, delete it.

Mastodon's order is kept: an account is suspended first (``POST .../action`` with
``type=suspend``), then either unsuspended (``POST .../unsuspend``) or its data deleted
(``DELETE``; a deleted account cannot be unsuspended). Every endpoint needs a token with an
``admin:`` scope (``read``/``write`` never imply them) whose user is staff (an admin or a
moderator, :mod:`fedisora.services.roles`); others get 403 ``This action is not allowed``,
as Mastodon answers. A moderator acts on users and remote accounts, not on other staff, and
deleting an account's data is the admins' (Mastodon's ``delete_user_data``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from fedisora.api.entities import account_entities, iso, role_entity
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.pagination import Page, link_header, page_of
from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.models import Account, Report, User
from fedisora.services import moderation, reports, roles
from fedisora.services.account_deletion import (
    delete_local_account,
    unsuspend_account,
)
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.signup import approve, reject
from fedisora.work import Engine

__all__ = ["admin_account_entity", "routes"]

Json = dict[str, Any]

ACTION_TYPES = moderation.ACCOUNT_ACTIONS


def admin_account_entity(account: Account, user: User | None) -> Json:
    """Mastodon's ``Admin::Account``; login fields are null once there is no login (remote,
    or deleted)."""
    return {
        "id": str(account.pk),
        "username": account.username,
        "domain": account.domain,
        "created_at": iso(account.created_at),
        "email": user.email if user else None,
        "ip": None,
        "ips": [],
        "locale": None,
        "invite_request": (user.signup_reason or None) if user else None,
        "role": role_entity(user),
        "confirmed": user is not None,
        "approved": bool(user and user.approved),
        "disabled": bool(user and user.disabled),
        "silenced": account.silenced_at is not None,
        "sensitized": account.sensitized_at is not None,
        "suspended": account.suspended,  # here, or by its own server
        "account": account_entities([account])[0],
    }


async def _entity(account: Account) -> Json:
    return admin_account_entity(account, await User.get_or_none(account_id=account.pk))


async def _target(ctx: Ctx, *, acting: bool = True) -> Account:
    """The account the path names, for staff; the instance actor is not an account here.
    *acting*: the caller changes it, which a moderator may not do to other staff."""
    staff = roles.require(ctx.user, "staff")
    account_id = ctx.path_id()
    account = await Account.get_or_none(pk=account_id) if account_id >= 0 else None
    if account is None or (account.local and account.username == INSTANCE_ACTOR):
        raise NotFound("Record not found")
    if acting and not roles.may_moderate(staff, await User.get_or_none(account_id=account.pk)):
        raise Forbidden("Moderators cannot act on a moderator's or an admin's account")
    return account


def _staff(ctx: Ctx) -> None:
    roles.require(ctx.user, "staff")


STATUSES = ("active", "pending", "disabled", "silenced", "suspended", "sensitized")


def _status(query: QuerySet[Account], status: str) -> QuerySet[Account]:
    """Mastodon's moderation states; ``active`` leaves out accounts waiting for approval
    (:mod:`fedisora.services.moderation` silences and sensitizes)."""
    if status == "active":
        return query.filter(suspended_at=None).filter(
            Q(domain__isnull=False) | Q(user__approved=True)
        )
    if status == "pending":
        return query.filter(domain=None, suspended_at=None, user__approved=False)
    if status == "disabled":
        return query.filter(domain=None, user__disabled=True)
    if status == "suspended":
        return query.filter(suspended_at__isnull=False)
    if status == "silenced":
        return query.filter(silenced_at__isnull=False)
    if status == "sensitized":
        return query.filter(sensitized_at__isnull=False)
    return query.filter(pk__in=[])


def _search(ctx: Ctx, query: QuerySet[Account]) -> QuerySet[Account]:
    p = ctx.params
    if domain := (p.text("by_domain", max_length=255) or "").strip().lower():
        query = query.filter(domain=domain)
    if username := (p.text("username", max_length=64) or "").strip():
        query = query.filter(username__icontains=username)
    if name := (p.text("display_name", max_length=100) or "").strip():
        query = query.filter(display_name__icontains=name)
    if email := (p.text("email", max_length=254) or "").strip().lower():
        query = query.filter(domain=None, user__email__icontains=email)
    return query


async def _listing(ctx: Ctx, query: QuerySet[Account]) -> Response:
    page = Page.from_params(ctx.params, default=100, maximum=200)
    # (not the instance actor; tortoise's exclude() of two fields excludes either)
    query = query.filter(Q(domain__isnull=False) | Q(username__not=INSTANCE_ACTOR))
    accounts = await page_of(query, page)
    users = {u.account_id: u for u in await User.filter(account_id__in=[a.pk for a in accounts])}
    body = [admin_account_entity(a, users.get(a.pk)) for a in accounts]
    headers = link_header(ctx.request, accounts[0].pk, accounts[-1].pk) if accounts else {}
    return json(body, headers=headers)


@endpoint("admin:read:accounts", user=True)
async def list_accounts_v1(ctx: Ctx) -> Response:
    """Mastodon's v1 list: the flags ``local``, ``remote``, ``active``, ``pending``,
    ``disabled``, ``silenced``, ``suspended``, ``sensitized``, ``staff`` (each narrows the
    list), also ``status=<one of them>``, and ``by_domain``, ``username``, ``display_name``,
    ``email``; newest first, 100 a page (at most 200)."""
    _staff(ctx)
    p = ctx.params
    query = Account.all()
    if p.flag("local"):
        query = query.filter(domain=None)
    if p.flag("remote"):
        query = query.filter(domain__isnull=False)
    status = (p.text("status", max_length=20) or "").strip().lower()
    if status and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    for name in STATUSES:
        if p.flag(name) or status == name:
            query = _status(query, name)
    if p.flag("staff"):
        query = query.filter(roles.staff_accounts(), domain=None)
    return await _listing(ctx, _search(ctx, query))


@endpoint("admin:read:accounts", user=True)
async def list_accounts_v2(ctx: Ctx) -> Response:
    """Mastodon's v2 list: ``origin`` (local, remote), ``status`` (active, pending,
    disabled, silenced, suspended), ``permissions`` (staff) and the v1 searches."""
    _staff(ctx)
    p = ctx.params
    query = Account.all()
    origin = (p.text("origin", max_length=10) or "").strip().lower()
    if origin not in ("", "local", "remote"):
        raise Invalid("origin must be local or remote")
    if origin:
        query = query.filter(domain=None) if origin == "local" else query.exclude(domain=None)
    status = (p.text("status", max_length=20) or "").strip().lower()
    if status and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    if status:
        query = _status(query, status)
    permissions = (p.text("permissions", max_length=10) or "").strip().lower()
    if permissions not in ("", "staff"):
        raise Invalid("permissions must be staff")
    if permissions:
        query = query.filter(roles.staff_accounts(), domain=None)
    return await _listing(ctx, _search(ctx, query))


def _not_self(ctx: Ctx, account: Account) -> None:
    if account.pk == ctx.me.pk:
        raise Forbidden("This action is not allowed on your own account")


@endpoint("admin:read:accounts", user=True)
async def get_account(ctx: Ctx) -> Response:
    return json(await _entity(await _target(ctx, acting=False)))


@endpoint("admin:write:accounts", user=True)
async def account_action(ctx: Ctx) -> Response:
    """``type``: none, disable, sensitive, silence or suspend, through
    :func:`fedisora.services.moderation.act_on_account` (as the admin pages and report
    actions): a local account is told of anything but ``none`` (of ``none`` too when there
    is a ``text``) with a warning it can appeal. With ``report_id`` (a report about this
    account) the warning names the report, and the report is resolved. Mastodon's
    ``warning_preset_id`` and ``send_email_notification`` are accepted and ignored."""
    account = await _target(ctx)
    kind = (ctx.params.text("type", max_length=20) or "").strip().lower()
    if kind not in ACTION_TYPES:
        raise Invalid(f"type must be one of {', '.join(ACTION_TYPES)}")
    _not_self(ctx, account)
    text = ctx.params.text("text", "", max_length=moderation.MAX_WARNING) or ""
    report: Report | None = None
    report_id = ctx.params.id("report_id")
    if report_id is not None:
        report = await Report.get_or_none(pk=report_id)
        if report is None:
            raise NotFound("Record not found")
        if report.target_account_id != account.pk:
            raise Invalid(f"report #{report.pk} is not about @{account.acct}")
    await moderation.act_on_account(account, kind, by=ctx.me, text=text, report=report)
    if report is not None:
        await reports.account_action(report, account, kind, ctx.me)
    return json({})


@endpoint("admin:write:accounts", user=True)
async def unsuspend(ctx: Ctx) -> Response:
    """Lift this instance's suspension (403 for an account not suspended here, or deleted).

    A remote account is then refetched from its server at once, as Mastodon does: the
    suspension here refused its activities, so its server may have suspended it, or lifted
    its own suspension, meanwhile."""
    account = await _target(ctx)
    _not_self(ctx, account)
    account = await unsuspend_account(account, by=ctx.me)
    if not account.local:
        from fedisora.federation.actors import refetch_unsuspended
        from fedisora.federation.context import get_federation

        account = await refetch_unsuspended(get_federation(ctx.settings), account) or account
    return json(await _entity(account))


@endpoint("admin:write:accounts", user=True)
async def unsilence(ctx: Ctx) -> Response:
    """Lift this instance's silence (Mastodon's ``unsilence``; not silenced: unchanged)."""
    account = await _target(ctx)
    _not_self(ctx, account)
    return json(await _entity(await moderation.unsilence(account, by=ctx.me)))


@endpoint("admin:write:accounts", user=True)
async def unsensitive(ctx: Ctx) -> Response:
    """Lift the sensitive mark (Mastodon's ``unsensitive``; not marked: unchanged)."""
    account = await _target(ctx)
    _not_self(ctx, account)
    return json(await _entity(await moderation.unsensitize(account, by=ctx.me)))


@endpoint("admin:write:accounts", user=True)
async def delete_account(ctx: Ctx) -> Response:
    """Delete a suspended local account's data (the username stays reserved); admins only."""
    roles.require(ctx.user, "admin")
    account = await _target(ctx)
    _not_self(ctx, account)
    if not account.local:
        raise Invalid("only local accounts can be deleted; remote accounts can be suspended")
    if account.suspended_at is None:
        raise Forbidden(
            "This account is not suspended: suspend it first "
            "(POST /api/v1/admin/accounts/:id/action with type=suspend)"
        )
    engine: Engine | None = getattr(ctx.request.app.state, "engine", None)
    await delete_local_account(account, settings=ctx.settings, engine=engine, by=ctx.me)
    return json(await _entity(await Account.get(pk=account.pk)))


@endpoint("admin:write:accounts", user=True)
async def approve_account(ctx: Ctx) -> Response:
    """Approve a sign-up waiting for approval (403 for any other account)."""
    account = await _target(ctx)
    await approve(account, by=ctx.me)
    return json(await _entity(account))


@endpoint("admin:write:accounts", user=True)
async def reject_account(ctx: Ctx) -> Response:
    """Reject a sign-up waiting for approval: the account is deleted (Mastodon answers
    with the account as it was); 403 for any other account."""
    account = await _target(ctx)
    entity = await _entity(account)
    await reject(account, by=ctx.me)
    return json(entity)


def routes() -> list[BaseRoute]:
    a = "/api/v1/admin/accounts"
    return [
        *api_route(a, list_accounts_v1, ["GET"]),
        *api_route("/api/v2/admin/accounts", list_accounts_v2, ["GET"]),
        *api_route(f"{a}/{{id}}/approve", approve_account, ["POST"]),
        *api_route(f"{a}/{{id}}/reject", reject_account, ["POST"]),
        *api_route(f"{a}/{{id}}", get_account, ["GET"]),
        *api_route(f"{a}/{{id}}", delete_account, ["DELETE"]),
        *api_route(f"{a}/{{id}}/action", account_action, ["POST"]),
        *api_route(f"{a}/{{id}}/unsuspend", unsuspend, ["POST"]),
        *api_route(f"{a}/{{id}}/unsilence", unsilence, ["POST"]),
        *api_route(f"{a}/{{id}}/unsensitive", unsensitive, ["POST"]),
    ]
