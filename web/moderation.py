"""Moderation pages: a user's warnings and appeals, the admins' appeals and the rules.

- ``/settings/suspended``: where a suspended account's (restricted) session lands
  (:mod:`web.sessions`): that it is suspended, the moderator's words, its appeal's state,
  and what it can still do (appeal, download its clips, log out).
- ``/settings/warnings``: what moderators did to the logged-in user's account or clips (each
  warning: the action, the moderator's text, the clips and comments it touched), with the
  form to appeal one (``POST /settings/warnings/{id}/appeal``) while it can be.
- ``/admin/appeals``: appeals waiting for a decision (and the latest decided ones); approve
  or reject (``POST /admin/appeals/{id}/approve|reject``).
- ``/admin/rules``: the instance's rules: add, edit, remove, move up or down.

Every change is a POST carrying the session's CSRF token, made (and audited) by
:mod:`fedisora.services.moderation` or :mod:`fedisora.services.rules`; a refusal is shown in
the page with a 4xx.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.models import (
    Account,
    AccountWarning,
    Appeal,
    AppealState,
    Clip,
    Comment,
    LikenessState,
    Rule,
    utcnow,
)
from fedisora.services import likeness as likeness_svc
from fedisora.services import moderation, rules
from web.clips import session_account
from web.comment_pages import clip_href, comment_href
from web.pages import html_errors, render
from web.routes import _admin_user, _staff_user, staff_form
from web.sessions import check_csrf, csrf_token, current_session

__all__ = ["routes"]

ACTION_LABELS = {
    "none": "A warning (no other action)",
    "disable": "Your login was disabled",
    "mark_statuses_as_sensitive": "Some of your clips or comments were marked sensitive",
    "delete_statuses": "Some of your clips or comments were deleted",
    "sensitive": "All your clips are shown as sensitive",
    "silence": "Your account was limited: only your followers see your clips in feeds",
    "suspend": "Your account was suspended",
}
DECIDED_SHOWN = 20


def _message(exc: FedisoraError) -> str:
    return exc.message[0].upper() + exc.message[1:] if exc.message else "Refused."


async def _items(account: Account, ids: list[int]) -> list[dict[str, Any]]:
    """The clips and comments a warning touched, as the page lists them."""
    clips = {c.pk: c for c in await Clip.filter(pk__in=ids, account_id=account.pk)}
    comments = {c.pk: c for c in await Comment.filter(pk__in=ids, account_id=account.pk)}
    out = []
    for pk in ids:
        row: Clip | Comment | None = clips.get(pk) or comments.get(pk)
        if row is None or row.deleted_at is not None:
            out.append({"id": pk, "href": None, "text": "", "deleted": True})
            continue
        text = row.caption if isinstance(row, Clip) else row.text
        href = clip_href(row, account) if isinstance(row, Clip) else comment_href(row)
        out.append({"id": pk, "href": href, "text": text, "deleted": False})
    return out


async def _warning_views(account: Account, warnings: list[AccountWarning]) -> list[Any]:
    appeals = {
        a.account_warning_id: a
        for a in await Appeal.filter(account_warning_id__in=[w.pk for w in warnings])
    }
    now = utcnow()
    return [
        {
            "warning": w,
            "label": ACTION_LABELS.get(w.action, w.action),
            "touched": await _items(account, [int(i) for i in w.status_ids]),
            "appeal": appeals.get(w.pk),
            "deadline": moderation.appeal_deadline(w),
            "can_appeal": w.pk not in appeals
            and w.action != "none"
            and now <= moderation.appeal_deadline(w),
        }
        for w in warnings
    ]


async def _warnings_page(
    request: Request, me: Account, status: int = 200, error: str = "", text: str = ""
) -> Response:
    views = await _warning_views(me, await moderation.warnings_of(me))
    return render(
        request,
        "warnings.html",
        status=status,
        views=views,
        error=error,
        text=text,
        max_appeal=moderation.MAX_APPEAL,
        window=moderation.APPEAL_WINDOW.days,
        csrf=csrf_token(request),
    )


@html_errors
async def warnings_page(request: Request) -> Response:
    me = await session_account(request)
    if me is None:
        return RedirectResponse("/login?next=/settings/warnings", status_code=303)
    return await _warnings_page(request, me)


async def suspended_page(request: Request) -> Response:
    """What a suspended account sees: the notice and the way to appeal it (an account that
    is not suspended, or no longer, is told so; logged out: the login page)."""
    live = current_session(request)
    if live is None:
        return RedirectResponse("/login?next=/settings/suspended", status_code=303)
    if not live.restricted:
        return render(request, "suspended.html", account=live.account, suspended=False)
    notice = await moderation.suspension_notice(live.account)
    appeal = None
    if notice is not None:
        appeal = await Appeal.get_or_none(account_warning_id=notice.pk)
    state = str(getattr(appeal.state, "value", appeal.state)) if appeal is not None else ""
    likeness = await likeness_svc.get_likeness(live.account)
    return render(
        request,
        "suspended.html",
        has_likeness=likeness is not None and likeness.state != LikenessState.REVOKED,
        account=live.account,
        suspended=True,
        notice=notice,
        appeal=appeal,
        appeal_state=state,
        deadline=moderation.appeal_deadline(notice) if notice is not None else None,
        can_appeal=notice is not None
        and appeal is None
        and utcnow() <= moderation.appeal_deadline(notice),
    )


@html_errors
async def appeal_post(request: Request) -> Response:
    me = await session_account(request)
    if me is None:
        raise HTTPException(401, "Log in first.")
    form = await read_form(request)
    check_csrf(request, form)
    warning_id = row_id(str(request.path_params["warning_id"]))
    text = str(form.get("text", ""))[: moderation.MAX_APPEAL * 2]
    try:
        warning = await moderation.warning_of(me, warning_id if warning_id is not None else -1)
    except FedisoraError as exc:
        raise HTTPException(404, _message(exc)) from None
    try:
        await moderation.file_appeal(me, warning, text)
    except FedisoraError as exc:
        return await _warnings_page(request, me, exc.status, _message(exc), text)
    return RedirectResponse(f"/settings/warnings#warning-{warning.pk}", status_code=303)


# --- admin: appeals ---------------------------------------------------------------------------


async def _appeal_rows(appeals: list[Appeal]) -> list[dict[str, Any]]:
    warnings = {
        w.pk: w for w in await AccountWarning.filter(pk__in=[a.account_warning_id for a in appeals])
    }
    accounts = {a.pk: a for a in await Account.filter(pk__in={a.account_id for a in appeals})}
    rows = []
    for appeal in appeals:
        warning = warnings[appeal.account_warning_id]
        account = accounts[appeal.account_id]
        rows.append(
            {
                "appeal": appeal,
                "warning": warning,
                "account": account,
                "touched": await _items(account, [int(i) for i in warning.status_ids]),
                "undo": moderation.UNDONE.get(warning.action, "nothing"),
            }
        )
    return rows


async def _appeals_page(request: Request, status: int = 200, error: str = "") -> Response:
    pending = list(await moderation.pending_appeals().limit(200))
    decided = list(
        await Appeal.exclude(state=AppealState.PENDING).order_by("-decided_at").limit(DECIDED_SHOWN)
    )
    return render(
        request,
        "admin/appeals.html",
        status=status,
        error=error,
        pending=await _appeal_rows(pending),
        decided=await _appeal_rows(decided),
        csrf=csrf_token(request),
    )


async def admin_appeals(request: Request) -> Response:
    await _staff_user(request)  # moderators decide appeals, as they act on reports
    return await _appeals_page(request)


async def admin_appeal_decide(request: Request) -> Response:
    _, me = await staff_form(request, await _staff_user(request))
    decision = str(request.path_params["decision"])
    if decision not in ("approve", "reject"):
        raise HTTPException(404, "no such decision")
    pk = row_id(str(request.path_params["appeal_id"]))
    appeal = await Appeal.get_or_none(pk=pk) if pk is not None else None
    if appeal is None:
        raise HTTPException(404, "no such appeal")
    try:
        if decision == "approve":
            await moderation.approve_appeal(appeal, me)
        else:
            await moderation.reject_appeal(appeal, me)
    except FedisoraError as exc:
        return await _appeals_page(request, exc.status, _message(exc))
    return RedirectResponse("/admin/appeals", status_code=303)


# --- admin: rules -----------------------------------------------------------------------------


async def _rules_page(
    request: Request, status: int = 200, error: str = "", form: dict[str, str] | None = None
) -> Response:
    return render(
        request,
        "admin/rules.html",
        status=status,
        error=error,
        rules=await rules.rules(),
        form=form or {"text": "", "hint": ""},
        max_text=rules.MAX_TEXT,
        max_hint=rules.MAX_HINT,
        csrf=csrf_token(request),
    )


async def admin_rules(request: Request) -> Response:
    await _admin_user(request)
    return await _rules_page(request)


async def admin_rule_add(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    text = str(form.get("text", ""))[: rules.MAX_TEXT * 2]
    hint = str(form.get("hint", ""))[: rules.MAX_HINT * 2]
    try:
        await rules.add(text, hint, me)
    except FedisoraError as exc:
        return await _rules_page(request, exc.status, _message(exc), {"text": text, "hint": hint})
    return RedirectResponse("/admin/rules", status_code=303)


async def admin_rule_change(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    change = str(request.path_params["change"])
    if change not in ("edit", "remove", "up", "down"):
        raise HTTPException(404, "no such change")
    pk = row_id(str(request.path_params["rule_id"]))
    rule = await Rule.get_or_none(pk=pk) if pk is not None else None
    if rule is None:
        raise HTTPException(404, "no such rule")
    try:
        if change == "edit":
            text = str(form.get("text", ""))[: rules.MAX_TEXT * 2]
            hint = str(form.get("hint", ""))[: rules.MAX_HINT * 2]
            await rules.edit(rule, text, hint, me)
        elif change == "remove":
            await rules.remove(rule, me)
        else:
            await rules.move(rule, change == "up", me)
    except FedisoraError as exc:
        return await _rules_page(request, exc.status, f"Rule {rule.pk}: {_message(exc)}")
    return RedirectResponse("/admin/rules", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/settings/suspended", suspended_page),
        Route("/settings/warnings", warnings_page),
        Route("/settings/warnings/{warning_id}/appeal", appeal_post, methods=["POST"]),
        Route("/admin/appeals", admin_appeals),
        Route("/admin/appeals/{appeal_id}/{decision}", admin_appeal_decide, methods=["POST"]),
        Route("/admin/rules", admin_rules),
        Route("/admin/rules", admin_rule_add, methods=["POST"]),
        Route("/admin/rules/{rule_id}/{change}", admin_rule_change, methods=["POST"]),
    ]
