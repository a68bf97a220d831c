"""Reporting from the browser: ``/report?clip=ID`` (a clip or a comment) or
``/report?account=ID``, a form posted to ``POST /report``.

The report is filed by :func:`fedisora.services.reports.file_report`, the service
``POST /api/v1/reports`` calls: the same checks (what the reporter may see, not oneself,
the comment's length), the same forwarding of a remote account's report to its instance.
A refusal comes back as the form with the message and what was typed kept.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.api.lookup import get_account, get_status
from fedisora.errors import FedisoraError, NotFound
from fedisora.ids import row_id
from fedisora.models import Account, Clip, Comment
from fedisora.services import reports, rules
from web.clips import author_href, session_account
from web.feed import action_form
from web.pages import html_errors, render
from web.sessions import csrf_token

__all__ = ["routes"]

CATEGORY_LABELS = {
    "spam": "Spam: ads, scams or repeated junk",
    "legal": "Illegal content, or it breaks someone's rights",
    "violation": "It breaks this server's rules",
    "other": "Something else",
}


def _id(raw: object) -> int | None:
    return row_id(str(raw)) if raw not in (None, "") else None


async def _subject(
    viewer: Account, clip_raw: object, account_raw: object
) -> tuple[Account, Clip | Comment | None]:
    """The account reported and the clip or comment named (one the viewer may see)."""
    try:
        status_id = _id(clip_raw)
        if status_id is not None:
            status = await get_status(viewer, status_id)
            if status.deleted_at is not None:
                raise HTTPException(410, "This clip or comment was deleted.")
            return await Account.get(pk=status.account_id), status
        account_id = _id(account_raw)
        if account_id is not None:
            return await get_account(account_id), None
    except NotFound:
        raise HTTPException(
            404, "There is no such clip or account, or you cannot see it."
        ) from None
    raise HTTPException(400, "Say what to report: ?clip=ID or ?account=ID.")


async def _form(
    request: Request,
    target: Account,
    status: Clip | Comment | None,
    *,
    status_code: int = 200,
    error: str = "",
    values: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "report.html",
        status=status_code,
        target=target,
        status_row=status,
        is_comment=isinstance(status, Comment),
        categories=CATEGORY_LABELS,
        rules=await rules.rules(),
        max_comment=reports.MAX_COMMENT,
        csrf=csrf_token(request),
        error=error,
        values=values or {"category": "other", "comment": "", "forward": False, "rule_ids": []},
    )


@html_errors
async def report_page(request: Request) -> Response:
    me = await session_account(request)
    if me is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={here}", status_code=303)
    target, status = await _subject(
        me, request.query_params.get("clip"), request.query_params.get("account")
    )
    return await _form(request, target, status)


@html_errors
async def report_post(request: Request) -> Response:
    me, form, refused = await action_form(request)
    if refused is not None:
        return refused
    assert me is not None
    target, status = await _subject(me, form.get("clip"), form.get("account"))
    category = str(form.get("category", "other"))
    comment = str(form.get("comment", ""))[: reports.MAX_COMMENT * 2]
    forward = form.get("forward") == "on"
    rule_ids = [str(r) for r in form.getlist("rule_ids")][:50] if category == "violation" else []
    values = {"category": category, "comment": comment, "forward": forward, "rule_ids": rule_ids}
    try:
        report = await reports.file_report(
            me,
            target,
            status_ids=[status.pk] if status is not None else [],
            comment=comment,
            category=category,
            rule_ids=rule_ids,
            forward=forward,
        )
    except FedisoraError as exc:
        message = exc.message[0].upper() + exc.message[1:]
        return await _form(
            request, target, status, status_code=exc.status, error=message, values=values
        )
    return render(
        request,
        "report_sent.html",
        target=target,
        report=report,
        target_href=author_href(target) if target.local else None,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/report", report_page),
        Route("/report", report_post, methods=["POST"]),
    ]
