"""Reports: Mastodon's ``POST /api/v1/reports`` and its admin API ``/api/v1/admin/reports``.

Filing needs ``write:reports``; the admin endpoints ``admin:read:reports`` or
``admin:write:reports`` (never implied by ``read``/``write``) and a user who is staff (an
admin or a moderator, :mod:`fedisora.services.roles`), others get 403 ``This action is not
allowed`` as Mastodon answers. The rules are :mod:`fedisora.services.reports`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.admin import admin_account_entity
from fedisora.api.entities import iso, report_entity, report_fields, rule_entity, status_entities
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.lookup import get_account
from fedisora.api.pagination import Page, link_header
from fedisora.errors import Invalid, NotFound
from fedisora.models import Account, Clip, Comment, Report, Rule, User
from fedisora.services import reports as service
from fedisora.services import roles

__all__ = ["admin_report_entities", "report_entity", "routes"]

Json = dict[str, Any]


@endpoint("write", "write:reports", user=True)
async def create_report(ctx: Ctx) -> Response:
    p = ctx.params
    account_id = p.id("account_id")
    if account_id is None:
        raise Invalid("account_id is required")
    target = await get_account(account_id)
    report = await service.file_report(
        ctx.me,
        target,
        status_ids=p.id_list("status_ids"),
        comment=p.text("comment", "", max_length=service.MAX_COMMENT) or "",
        category=p.text("category", max_length=32),
        rule_ids=p.texts("rule_ids"),
        forward=p.flag("forward"),
    )
    return json(report_entity(report, target))


# --- admin -----------------------------------------------------------------------------------


async def admin_report_entities(viewer: Account, reports: Sequence[Report]) -> list[Json]:
    """Mastodon's ``Admin::Report`` for each report, in a fixed number of queries."""
    ids: set[int] = set()
    for r in reports:
        ids |= {r.account_id, r.target_account_id}
        ids |= {i for i in (r.assigned_account_id, r.action_taken_by_account_id) if i is not None}
    accounts = {a.pk: a for a in await Account.filter(pk__in=ids)}
    users = {u.account_id: u for u in await User.filter(account_id__in=ids)}
    admin = {pk: admin_account_entity(a, users.get(pk)) for pk, a in accounts.items()}
    status_ids = {i for r in reports for i in r.status_ids}
    rows: list[Clip | Comment] = [*await Clip.filter(pk__in=status_ids, deleted_at=None)]
    rows += list(await Comment.filter(pk__in=status_ids, deleted_at=None))
    rendered = {s.pk: e for s, e in zip(rows, await status_entities(viewer, rows), strict=True)}
    rule_ids = {int(i) for r in reports for i in r.rule_ids if str(i).isdigit()}
    rules = {str(r.pk): rule_entity(r) for r in await Rule.filter(pk__in=rule_ids)}
    out = []
    for r in reports:
        out.append(
            {
                **report_fields(r),
                "updated_at": iso(r.updated_at),
                "account": admin[r.account_id],
                "target_account": admin[r.target_account_id],
                "assigned_account": admin.get(r.assigned_account_id or -1),
                "action_taken_by_account": admin.get(r.action_taken_by_account_id or -1),
                "statuses": [rendered[i] for i in r.status_ids if i in rendered],
                "rules": [rules[str(i)] for i in r.rule_ids if str(i) in rules],
            }
        )
    return out


def _admin(ctx: Ctx) -> Account:
    """The staff member (admin or moderator) acting."""
    roles.require(ctx.user, "staff")
    return ctx.me


async def _report(ctx: Ctx) -> tuple[Account, Report]:
    admin = _admin(ctx)
    report_id = ctx.path_id()
    report = await Report.get_or_none(pk=report_id) if report_id >= 0 else None
    if report is None:
        raise NotFound("Record not found")
    return admin, report


async def _one(admin: Account, report: Report) -> Response:
    return json((await admin_report_entities(admin, [report]))[0])


@endpoint("admin:read:reports", user=True)
async def list_reports(ctx: Ctx) -> Response:
    """Open reports by default; ``resolved=true`` the resolved ones (Mastodon.py sends
    ``resolved`` and ``unresolved`` both true for all of them)."""
    admin = _admin(ctx)
    p = ctx.params
    page = Page.from_params(p, default=100, maximum=200)
    resolved: bool | None = p.flag("resolved")
    if resolved and p.flag("unresolved"):
        resolved = None
    found = await service.reports(
        resolved=resolved,
        account_id=p.id("account_id"),
        target_account_id=p.id("target_account_id"),
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    headers = link_header(ctx.request, found[0].pk, found[-1].pk) if found else {}
    return json(await admin_report_entities(admin, found), headers=headers)


@endpoint("admin:read:reports", user=True)
async def get_report(ctx: Ctx) -> Response:
    return await _one(*await _report(ctx))


@endpoint("admin:write:reports", user=True)
async def assign_to_self(ctx: Ctx) -> Response:
    admin, report = await _report(ctx)
    return await _one(admin, await service.assign(report, admin))


@endpoint("admin:write:reports", user=True)
async def unassign(ctx: Ctx) -> Response:
    admin, report = await _report(ctx)
    return await _one(admin, await service.unassign(report, admin))


@endpoint("admin:write:reports", user=True)
async def resolve(ctx: Ctx) -> Response:
    admin, report = await _report(ctx)
    return await _one(admin, await service.resolve(report, admin))


@endpoint("admin:write:reports", user=True)
async def reopen(ctx: Ctx) -> Response:
    admin, report = await _report(ctx)
    return await _one(admin, await service.reopen(report, admin))


def routes() -> list[BaseRoute]:
    a = "/api/v1/admin/reports"
    return [
        *api_route("/api/v1/reports", create_report, ["POST"]),
        *api_route(a, list_reports, ["GET"]),
        *api_route(f"{a}/{{id}}", get_report, ["GET"]),
        *api_route(f"{a}/{{id}}/assign_to_self", assign_to_self, ["POST"]),
        *api_route(f"{a}/{{id}}/unassign", unassign, ["POST"]),
        *api_route(f"{a}/{{id}}/resolve", resolve, ["POST"]),
        *api_route(f"{a}/{{id}}/reopen", reopen, ["POST"]),
    ]
