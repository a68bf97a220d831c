"""``/admin/reports``: the reports filed here and received from other instances, for admins.

The list shows open reports (or resolved ones), newest first, 50 a page with a ``max_id``
cursor; a report's page shows who filed it, about whom, the comment and the reported clips
and comments, with buttons: assign to me (or unassign), dismiss, delete the clips or mark
them sensitive, mark the account sensitive, limit (silence) it, suspend it, reopen. Every
button is a POST carrying the session's CSRF token; each calls
:mod:`fedisora.services.reports`, which writes the audit log and tells the user. The page
also names the rules the report cites and links the appeals of its warnings.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.ids import row_id
from fedisora.models import Account, Appeal, Clip, Comment, Report, Rule
from fedisora.services import reports
from web.clips import author_href
from web.comment_pages import clip_href, comment_href
from web.pages import render
from web.routes import _staff_user, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]

PAGE = 50
#: The buttons of a report's page, each a service call.
BUTTONS = ("assign", "unassign", "reopen", *reports.ACTIONS)


async def _report(request: Request) -> Report:
    pk = row_id(str(request.path_params["report_id"]))
    report = await Report.get_or_none(pk=pk) if pk is not None else None
    if report is None:
        raise HTTPException(404, "no such report")
    return report


async def admin_reports(request: Request) -> Response:
    await _staff_user(request)
    resolved = request.query_params.get("resolved", "") == "1"
    raw_max = request.query_params.get("max_id", "")
    max_id = row_id(raw_max) if raw_max else None
    if raw_max and max_id is None:
        raise HTTPException(400, "max_id must be the id of a report (a whole number).")
    found = await reports.reports(resolved=resolved, max_id=max_id, limit=PAGE + 1)
    more = len(found) > PAGE
    found = found[:PAGE]
    ids = {i for r in found for i in (r.account_id, r.target_account_id)}
    accounts = {a.pk: a for a in await Account.filter(pk__in=ids)}
    older = None
    if more:
        params = {"resolved": "1"} if resolved else {}
        older = "/admin/reports?" + urlencode({**params, "max_id": found[-1].pk})
    return render(
        request,
        "admin/reports.html",
        rows=[
            {
                "report": r,
                "reporter": accounts.get(r.account_id),
                "target": accounts.get(r.target_account_id),
            }
            for r in found
        ],
        resolved=resolved,
        older=older,
    )


async def admin_report(request: Request) -> Response:
    user = await _staff_user(request)
    report = await _report(request)
    ids = [report.account_id, report.target_account_id]
    ids += [i for i in (report.assigned_account_id, report.action_taken_by_account_id) if i]
    accounts = {a.pk: a for a in await Account.filter(pk__in=ids)}
    target = accounts[report.target_account_id]
    clips = {c.pk: c for c in await Clip.filter(pk__in=report.status_ids)}
    comments = {c.pk: c for c in await Comment.filter(pk__in=report.status_ids)}
    items = []
    for pk in report.status_ids:
        row: Clip | Comment | None = clips.get(pk) or comments.get(pk)
        if row is None:
            items.append({"id": pk, "kind": "clip", "href": None, "text": "", "deleted": True})
            continue
        is_clip = isinstance(row, Clip)
        items.append(
            {
                "id": pk,
                "kind": "clip" if is_clip else "comment",
                "href": clip_href(row, target) if isinstance(row, Clip) else comment_href(row),
                "text": row.caption if isinstance(row, Clip) else row.text,
                "deleted": row.deleted_at is not None,
            }
        )
    return render(
        request,
        "admin/report.html",
        report=report,
        reporter=accounts.get(report.account_id),
        target=target,
        target_href=author_href(target),
        assigned=accounts.get(report.assigned_account_id or -1),
        resolver=accounts.get(report.action_taken_by_account_id or -1),
        items=items,
        rules=await Rule.filter(
            pk__in=[int(i) for i in report.rule_ids if str(i).isdigit()]
        ).order_by("position", "id"),
        appeals=await Appeal.filter(account_warning__report_id=report.pk).order_by("id"),
        me=user.account_id,
        csrf=csrf_token(request),
    )


async def admin_report_action(request: Request) -> Response:
    user = await _staff_user(request)
    report = await _report(request)
    action = str(request.path_params["action"])
    if action not in BUTTONS:
        raise HTTPException(404, "no such action")
    form, admin = await staff_form(request, user)
    if action == "assign":
        await reports.assign(report, admin)
    elif action == "unassign":
        await reports.unassign(report, admin)
    elif action == "reopen":
        await reports.reopen(report, admin)
    else:
        text = str(form.get("text", "")).strip()
        await reports.take_action(report, action, admin, text)
    return RedirectResponse(f"/admin/reports/{report.pk}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/reports", admin_reports),
        Route("/admin/reports/{report_id}", admin_report),
        Route("/admin/reports/{report_id}/{action}", admin_report_action, methods=["POST"]),
    ]
