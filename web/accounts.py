"""Moderating accounts from the web: an admin approves or rejects a sign-up, suspends,
unsuspends or deletes an account, or a user deletes their own.

Every change is a POST carrying the session's CSRF token (compared in constant time, as the
OAuth consent form does). Suspending and unsuspending are buttons on the admin's account
list (both reversible); deleting goes through a confirmation page, where the admin confirms
by typing the username and the user by their password. They call
:mod:`fedisora.services.account_deletion`; approving and rejecting,
:mod:`fedisora.services.signup` (``/admin/accounts?status=pending`` lists the sign-ups
waiting, with the reasons given).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.boundary import read_form
from fedisora.ids import row_id
from fedisora.models import Account, User
from fedisora.services.account_deletion import (
    AccountDeletion,
    delete_local_account,
    is_deleted,
    suspend_account,
    unsuspend_account,
)
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.signup import approve, pending_accounts, reject
from web.pages import render
from web.routes import _admin_user
from web.sessions import (
    Refusal,
    check_csrf,
    csrf_token,
    current_session,
    end_browser_session,
    password_refusal,
)

ADMIN_PAGE = 100
"""Accounts on one page of the admin's list."""

__all__ = ["routes"]


async def _deletion(
    request: Request, account: Account, by: Account | None = None
) -> AccountDeletion:
    """Delete *account*; *by* is the admin doing it (None: its owner, from /settings)."""
    return await delete_local_account(
        account,
        settings=request.app.state.settings,
        engine=getattr(request.app.state, "engine", None),
        by=by,
    )


# --- admin -----------------------------------------------------------------------------------


def _state(account: Account, user: User | None) -> str:
    if account.suspended_at is None:
        if user is not None and not user.approved:
            return "pending"
        return "disabled" if user is not None and user.disabled else "active"
    return "deleted" if user is None else "suspended"


FILTERS = {"": "All", "pending": "Waiting for approval"}


async def admin_accounts(request: Request) -> Response:
    """The local accounts, :data:`ADMIN_PAGE` at a time in the order they were made (the
    ``after`` cursor names the last one of the page before); ``status=pending``: only the
    sign-ups waiting for approval."""
    admin = await _admin_user(request)
    raw = request.query_params.get("after", "")
    after = row_id(raw) if raw else None
    if raw and after is None:
        raise HTTPException(400, "after must be the id of an account (a whole number).")
    status = request.query_params.get("status", "")
    if status not in FILTERS:
        raise HTTPException(400, "status must be pending, or left out for every account.")
    query = (
        pending_accounts()
        if status == "pending"
        else Account.filter(domain=None).exclude(username=INSTANCE_ACTOR)
    )
    if after is not None:
        query = query.filter(id__gt=after)
    accounts = list(await query.order_by("id").limit(ADMIN_PAGE + 1))
    more = len(accounts) > ADMIN_PAGE
    accounts = accounts[:ADMIN_PAGE]
    users = {u.account_id: u for u in await User.filter(account_id__in=[a.pk for a in accounts])}
    rows = [
        {
            "account": a,
            "user": users.get(a.pk),
            "state": _state(a, users.get(a.pk)),
            "me": a.pk == admin.account_id,
        }
        for a in accounts
    ]
    return render(
        request,
        "admin/accounts.html",
        rows=rows,
        csrf=csrf_token(request),
        after=after,
        next_after=accounts[-1].pk if more else None,
        shown=status,
        filters=FILTERS,
        waiting=await pending_accounts().count(),
    )


async def _moderated(request: Request, admin: User, own: str) -> Account:
    """The local account the path names; *own* is the refusal for the admin's own one."""
    raw = str(request.path_params["account_id"])
    pk = row_id(raw)
    account = await Account.get_or_none(pk=pk) if pk is not None else None
    if account is None or not account.local or account.username == INSTANCE_ACTOR:
        raise HTTPException(404, "no such local account")
    if account.pk == admin.account_id:
        raise HTTPException(403, own)
    return account


async def _deletable(request: Request, admin: User) -> Account:
    return await _moderated(request, admin, "delete your own account from /settings/delete instead")


async def _moderate(
    request: Request, action: Callable[..., Awaitable[object]], back: str = "/admin/accounts"
) -> Response:
    """Run *action* on the account the path names, then back to the list. The service's
    refusals (a deleted account, one not suspended) are its 4xx pages."""
    admin = await _admin_user(request)
    account = await _moderated(request, admin, "this is your own account")
    form = await read_form(request)
    check_csrf(request, form)
    await action(account, by=await Account.get(pk=admin.account_id))
    return RedirectResponse(back, status_code=303)


async def admin_approve_account(request: Request) -> Response:
    return await _moderate(request, approve, "/admin/accounts?status=pending")


async def admin_reject_account(request: Request) -> Response:
    return await _moderate(request, reject, "/admin/accounts?status=pending")


async def admin_suspend_account(request: Request) -> Response:
    return await _moderate(request, suspend_account)


async def admin_unsuspend_account(request: Request) -> Response:
    return await _moderate(request, unsuspend_account)


async def admin_delete_account(request: Request) -> Response:
    admin = await _admin_user(request)
    account = await _deletable(request, admin)
    context: dict[str, Any] = {"account": account, "already": await is_deleted(account)}
    if request.method == "GET":
        return render(
            request, "admin/delete_account.html", csrf=csrf_token(request), error=None, **context
        )
    form = await read_form(request)
    check_csrf(request, form)
    typed = str(form.get("confirm", "")).strip().removeprefix("@")
    if typed.lower() != account.username.lower():
        return render(
            request,
            "admin/delete_account.html",
            status=400,
            csrf=csrf_token(request),
            error=f"Type the username {account.username} to confirm.",
            **context,
        )
    done = await _deletion(request, account, by=await Account.get(pk=admin.account_id))
    return render(request, "admin/account_deleted.html", done=done)


# --- the user's own account ----------------------------------------------------------------


async def settings_delete(request: Request) -> Response:
    live = current_session(request)
    if live is None:
        if request.method == "GET":
            return RedirectResponse("/login?next=/settings/delete", status_code=303)
        raise HTTPException(401, "log in to delete your account")
    user, account = live.user, live.account
    if request.method == "GET":
        return render(
            request, "settings/delete.html", account=account, csrf=csrf_token(request), error=None
        )
    form = await read_form(request)
    check_csrf(request, form)
    refusal = await password_refusal(request, user, str(form.get("password", "")))
    if refusal is None and user.is_admin:
        if not await User.filter(is_admin=True).exclude(pk=user.pk).exists():
            refusal = Refusal("You are this instance's only admin: make someone else admin first.")
    if refusal is not None:
        response = render(
            request,
            "settings/delete.html",
            status=refusal.status,
            account=account,
            csrf=csrf_token(request),
            error=refusal.message,
        )
        response.headers.update(refusal.headers)
        return response
    done = await _deletion(request, account)
    await end_browser_session(request)  # its row went with the login; the cookie goes too
    return render(request, "settings/deleted.html", done=done)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/accounts", admin_accounts),
        Route("/admin/accounts/{account_id}/delete", admin_delete_account, methods=["GET", "POST"]),
        Route("/admin/accounts/{account_id}/approve", admin_approve_account, methods=["POST"]),
        Route("/admin/accounts/{account_id}/reject", admin_reject_account, methods=["POST"]),
        Route("/admin/accounts/{account_id}/suspend", admin_suspend_account, methods=["POST"]),
        Route("/admin/accounts/{account_id}/unsuspend", admin_unsuspend_account, methods=["POST"]),
        Route("/settings/delete", settings_delete, methods=["GET", "POST"]),
    ]
