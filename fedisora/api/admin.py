"""Mastodon's admin API for accounts: look one up, moderate it, delete it.

Mastodon's order is kept: an account is suspended first (``POST .../action`` with
``type=suspend``), then either unsuspended (``POST .../unsuspend``) or its data deleted
(``DELETE``; a deleted account cannot be unsuspended). Every endpoint needs a token with an
``admin:`` scope (``read``/``write`` never imply them) whose user is an admin; others get
403 ``This action is not allowed``, as Mastodon answers.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.entities import account_entities, iso
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.models import Account, Report, User
from fedisora.services import reports
from fedisora.services.account_deletion import (
    delete_local_account,
    disable_login,
    suspend_account,
    unsuspend_account,
)
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.work import Engine

__all__ = ["admin_account_entity", "routes"]

Json = dict[str, Any]

ACTION_TYPES = ("none", "disable", "sensitive", "silence", "suspend")


def admin_account_entity(account: Account, user: User | None) -> Json:
    """Mastodon's ``Admin::Account``; login fields are null once there is no login (remote,
    or deleted)."""
    is_admin = bool(user and user.is_admin)
    return {
        "id": str(account.pk),
        "username": account.username,
        "domain": account.domain,
        "created_at": iso(account.created_at),
        "email": user.email if user else None,
        "ip": None,
        "ips": [],
        "locale": None,
        "invite_request": None,
        "role": {
            "id": "3" if is_admin else "-99",
            "name": "Admin" if is_admin else "",
            "color": "",
            "permissions": "1" if is_admin else "0",
            "highlighted": is_admin,
        },
        "confirmed": user is not None,
        "approved": bool(user and user.approved),
        "disabled": bool(user and user.disabled),
        "silenced": False,
        "sensitized": False,
        "suspended": account.suspended,  # here, or by its own server
        "account": account_entities([account])[0],
    }


async def _entity(account: Account) -> Json:
    return admin_account_entity(account, await User.get_or_none(account_id=account.pk))


async def _target(ctx: Ctx) -> Account:
    """The account the path names, for an admin; the instance actor is not an account here."""
    if ctx.user is None or not ctx.user.is_admin:
        raise Forbidden("This action is not allowed")
    account_id = ctx.path_id()
    account = await Account.get_or_none(pk=account_id) if account_id >= 0 else None
    if account is None or (account.local and account.username == INSTANCE_ACTOR):
        raise NotFound("Record not found")
    return account


def _not_self(ctx: Ctx, account: Account) -> None:
    if account.pk == ctx.me.pk:
        raise Forbidden("This action is not allowed on your own account")


@endpoint("admin:read:accounts", user=True)
async def get_account(ctx: Ctx) -> Response:
    return json(await _entity(await _target(ctx)))


@endpoint("admin:write:accounts", user=True)
async def account_action(ctx: Ctx) -> Response:
    """``type``: none, disable or suspend (sensitive and silence are not supported here).
    With ``report_id`` (a report about this account) the report is resolved, and the account
    is told of a disable or suspension, with ``text``. Mastodon's ``warning_preset_id`` and
    ``send_email_notification`` are accepted and ignored."""
    account = await _target(ctx)
    kind = (ctx.params.text("type", max_length=20) or "").strip().lower()
    if kind not in ACTION_TYPES:
        raise Invalid(f"type must be one of {', '.join(ACTION_TYPES)}")
    _not_self(ctx, account)
    if kind in ("sensitive", "silence"):
        raise Invalid(f"type={kind} is not supported by this server; use suspend")
    text = ctx.params.text("text", "", max_length=reports.MAX_COMMENT) or ""
    report: Report | None = None
    report_id = ctx.params.id("report_id")
    if report_id is not None:
        report = await Report.get_or_none(pk=report_id)
        if report is None:
            raise NotFound("Record not found")
        if report.target_account_id != account.pk:
            raise Invalid(f"report #{report.pk} is not about @{account.acct}")
    if kind == "disable":
        await disable_login(account, by=ctx.me)
    elif kind == "suspend":
        await suspend_account(account, by=ctx.me)
    if report is not None:
        await reports.account_action(report, account, kind, ctx.me, text)
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
        from activitypub.federation.actors import refetch_unsuspended
        from activitypub.federation.context import get_federation

        account = await refetch_unsuspended(get_federation(ctx.settings), account) or account
    return json(await _entity(account))


@endpoint("admin:write:accounts", user=True)
async def delete_account(ctx: Ctx) -> Response:
    """Delete a suspended local account's data (the username stays reserved)."""
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


def routes() -> list[BaseRoute]:
    a = "/api/v1/admin/accounts"
    return [
        *api_route(f"{a}/{{id}}", get_account, ["GET"]),
        *api_route(f"{a}/{{id}}", delete_account, ["DELETE"]),
        *api_route(f"{a}/{{id}}/action", account_action, ["POST"]),
        *api_route(f"{a}/{{id}}/unsuspend", unsuspend, ["POST"]),
    ]
