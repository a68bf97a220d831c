"""Moderating accounts from the web: the staff (admins and moderators) search the accounts,
approve or reject a sign-up, suspend or unsuspend an account; an admin also deletes one,
changes its role or makes a password reset link; a user deletes their own account, or sets a
new password through a reset link.

Every change is a POST carrying the session's CSRF token (compared in constant time, as the
OAuth consent form does). Suspending, limiting (silencing) and marking sensitive are buttons
on the account list, each with an optional notice to the account's owner; they go through
:func:`fedisora.services.moderation.act_on_account`, as the admin API and report actions do,
so a local account is told with a warning it can appeal (a suspended owner sees it at
``/settings/suspended``). Each has its undoing button. Deleting goes through a confirmation
page, where the admin confirms by typing the username and the user by their password. They call
:mod:`fedisora.services.account_deletion`; approving and rejecting,
:mod:`fedisora.services.signup` (``/admin/accounts?status=pending`` lists the sign-ups
waiting, with the reasons given); roles, :mod:`fedisora.services.roles` (which also says who
may act on whom); reset links, :mod:`fedisora.services.password_resets`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from fedisora import urls
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.models import Account, User
from fedisora.services import moderation, password_resets, roles
from fedisora.services.account_deletion import (
    AccountDeletion,
    delete_local_account,
    is_deleted,
    unsuspend_account,
)
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.signup import approve, pending_accounts, reject
from web.pages import render
from web.routes import _admin_user, _staff_user, staff_form
from web.sessions import (
    Refusal,
    check_csrf,
    csrf_matches,
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


# --- admin ---------------------------------------------------------------------------------


def _state(account: Account, user: User | None) -> str:
    if not account.local:
        if account.suspended_at is not None:
            return "suspended"
        return "suspended by its server" if account.origin_suspended_at else "active"
    if account.suspended_at is None:
        if user is not None and not user.approved:
            return "pending"
        return "disabled" if user is not None and user.disabled else "active"
    return "deleted" if user is None else "suspended"


FILTERS = {
    "": "All",
    "local": "Local",
    "remote": "Remote",
    "pending": "Waiting for approval",
    "suspended": "Suspended",
    "staff": "Moderators and admins",
}
MAX_QUERY = 200


def _listed(status: str) -> QuerySet[Account]:
    """The accounts of the filter *status* (:data:`FILTERS`); never the instance actor."""
    query = Account.filter(Q(domain__isnull=False) | Q(username__not=INSTANCE_ACTOR))
    if status == "local":
        return query.filter(domain=None)
    if status == "remote":
        return query.filter(domain__isnull=False)
    if status == "pending":
        return pending_accounts()
    if status == "suspended":
        return query.filter(suspended_at__isnull=False)
    if status == "staff":
        return query.filter(roles.staff_accounts(), domain=None)
    return query


def _searched(query: QuerySet[Account], text: str) -> QuerySet[Account]:
    """Accounts whose username, display name, domain or e-mail holds *text*; ``name@domain``
    (or ``@name@domain``) matches the username and the domain."""
    text = text.strip().removeprefix("@")
    if not text:
        return query
    emails = User.filter(email__icontains=text).values("account_id")
    match = (
        Q(username__icontains=text)
        | Q(display_name__icontains=text)
        | Q(domain__icontains=text)
        | Q(id__in=Subquery(emails))
    )
    name, at, domain = text.partition("@")
    if at and name and domain:
        match |= Q(username__icontains=name, domain__icontains=domain)
    return query.filter(match)


def _page_url(**params: object) -> str:
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return "/admin/accounts" + (f"?{urlencode(kept)}" if kept else "")


async def admin_accounts(request: Request) -> Response:
    """The accounts, :data:`ADMIN_PAGE` at a time in the order they were made (the ``after``
    cursor names the last one of the page before), for the staff: ``q`` searches usernames,
    display names, domains and e-mail addresses; ``status`` is one of :data:`FILTERS`."""
    staff = await _staff_user(request)
    raw = request.query_params.get("after", "")
    after = row_id(raw) if raw else None
    if raw and after is None:
        raise HTTPException(400, "after must be the id of an account (a whole number).")
    status = request.query_params.get("status", "")
    if status not in FILTERS:
        raise HTTPException(400, f"status must be one of {', '.join(k for k in FILTERS if k)}.")
    text = request.query_params.get("q", "").strip()
    if len(text) > MAX_QUERY:
        raise HTTPException(400, f"The search can be at most {MAX_QUERY} characters long.")
    query = _searched(_listed(status), text)
    if after is not None:
        query = query.filter(id__gt=after)
    accounts = list(await query.order_by("id").limit(ADMIN_PAGE + 1))
    more = len(accounts) > ADMIN_PAGE
    accounts = accounts[:ADMIN_PAGE]
    users = {u.account_id: u for u in await User.filter(account_id__in=[a.pk for a in accounts])}
    rows = []
    for a in accounts:
        user = users.get(a.pk)
        me = a.pk == staff.account_id
        rows.append(
            {
                "account": a,
                "user": user,
                "state": _state(a, user),
                "role": roles.role_of(user) if user is not None else "",
                "me": me,
                "may_act": not me and roles.may_moderate(staff, user),
            }
        )
    return render(
        request,
        "admin/accounts.html",
        rows=rows,
        csrf=csrf_token(request),
        after=after,
        next_url=_page_url(q=text, status=status, after=accounts[-1].pk) if more else None,
        first_url=_page_url(q=text, status=status) if after is not None else None,
        shown=status,
        q=text,
        filters=[(k, label, _page_url(q=text, status=k)) for k, label in FILTERS.items()],
        waiting=await pending_accounts().count(),
        is_admin=roles.is_admin(staff),
        roles=roles.ROLES,
        max_notice=moderation.MAX_WARNING,
    )


async def _account(request: Request) -> Account:
    """The account the path names (local or remote; never the instance actor)."""
    pk = row_id(str(request.path_params["account_id"]))
    account = await Account.get_or_none(pk=pk) if pk is not None else None
    if account is None or (account.local and account.username == INSTANCE_ACTOR):
        raise HTTPException(404, "no such account")
    return account


async def _moderated(request: Request, staff: User, own: str, *, remote: bool = False) -> Account:
    """The account the path names, local (or with *remote* also remote), which *staff* may
    act on; *own* is the refusal for their own one."""
    account = await _account(request)
    if not account.local and not remote:
        raise HTTPException(404, "no such local account")
    if account.pk == staff.account_id:
        raise HTTPException(403, own)
    if not roles.may_moderate(staff, await User.get_or_none(account_id=account.pk)):
        raise HTTPException(403, "Moderators cannot act on a moderator's or an admin's account")
    return account


async def _deletable(request: Request, admin: User) -> Account:
    return await _moderated(request, admin, "delete your own account from /settings/delete instead")


Action = Callable[[Account, Account, FormData], Awaitable[object]]
"""What a moderation button does: (the account, the moderator's, the form)."""


async def _moderate(
    request: Request, action: Action, back: str = "/admin/accounts", *, remote: bool = False
) -> Response:
    """Run *action* on the account the path names, then back to the list. The service's
    refusals (a deleted account, one not suspended, a notice too long) are its 4xx pages."""
    staff = await _staff_user(request)
    account = await _moderated(request, staff, "this is your own account", remote=remote)
    form, me = await staff_form(request, staff)
    await action(account, me, form)
    return RedirectResponse(back, status_code=303)


def _service(service: Callable[..., Awaitable[object]]) -> Action:
    """A button that calls *service* (account, by=the moderator)."""

    async def run(account: Account, by: Account, form: FormData) -> object:
        return await service(account, by=by)

    return run


def _acting(kind: str) -> Action:
    """A button that takes the action *kind* (:data:`moderation.ACCOUNT_ACTIONS`) through
    :func:`moderation.act_on_account`, as the admin API and report actions do: audited, and
    a local account told with a warning it can appeal, with the form's optional ``text``."""

    async def run(account: Account, by: Account, form: FormData) -> object:
        text = str(form.get("text", ""))
        return await moderation.act_on_account(account, kind, by=by, text=text)

    return run


_BUTTONS: dict[str, Action] = {
    "suspend": _acting("suspend"),
    "unsuspend": _service(unsuspend_account),
    "silence": _acting("silence"),
    "unsilence": _service(moderation.unsilence),
    "sensitive": _acting("sensitive"),
    "unsensitive": _service(moderation.unsensitize),
}
"""The buttons on an account of the list, local or remote: suspend, limit (silence), mark
sensitive, and their undoing."""


async def admin_approve_account(request: Request) -> Response:
    return await _moderate(request, _service(approve), "/admin/accounts?status=pending")


async def admin_reject_account(request: Request) -> Response:
    return await _moderate(request, _service(reject), "/admin/accounts?status=pending")


async def admin_moderate_account(request: Request) -> Response:
    """Suspend, limit (silence) or mark sensitive an account, local or remote, or lift any
    of them (:data:`_BUTTONS`)."""
    name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    return await _moderate(request, _BUTTONS[name], remote=True)


async def admin_role(request: Request) -> Response:
    """Make a local account an admin, a moderator or a user (admins only; an admin may
    change their own role unless they are the last admin)."""
    admin = await _admin_user(request)
    account = await _account(request)
    form, me = await staff_form(request, admin)
    _, new = await roles.set_role(account, str(form.get("role", "")), by=me)
    # an admin who made themselves a plain user has no admin page to go back to
    own = account.pk == admin.account_id and new == roles.USER
    return RedirectResponse("/" if own else "/admin/accounts", status_code=303)


async def admin_password_reset(request: Request) -> Response:
    """A one-time link for the owner of a local account to set a new password (admins only):
    shown once, to pass on."""
    admin = await _admin_user(request)
    account = await _account(request)
    _, me = await staff_form(request, admin)
    token = await password_resets.create_reset(account, by=me)
    return render(
        request,
        "admin/password_reset_link.html",
        account=account,
        link=f"{urls.current().base}/password-reset/{token}",
        hours=int(password_resets.VALID_FOR.total_seconds() // 3600),
    )


async def admin_delete_account(request: Request) -> Response:
    """Deleting an account's data is the admins' (Mastodon's ``delete_user_data``)."""
    admin = await _admin_user(request)
    account = await _deletable(request, admin)
    context: dict[str, Any] = {"account": account, "already": await is_deleted(account)}
    if request.method == "GET":
        return render(
            request, "admin/delete_account.html", csrf=csrf_token(request), error=None, **context
        )
    form, me = await staff_form(request, admin)
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
    done = await _deletion(request, account, by=me)
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


async def password_reset(request: Request) -> Response:
    """``/password-reset/{token}``: the form to set a new password with an admin's reset
    link (no login needed: the link is the proof); a link unknown, used or expired gets a
    page saying so."""
    token = str(request.path_params["token"])
    error = None
    status = 200
    try:
        reset = await password_resets.reset_for(token)
    except FedisoraError as exc:
        return render(
            request, "password_reset.html", status=exc.status, invalid=exc.message, csrf=""
        )
    if request.method == "POST":
        form = await read_form(request)
        if not csrf_matches(request, form.get("csrf")):
            error, status = "The form expired; try again.", 403
        else:
            try:
                await password_resets.use_reset(
                    token, str(form.get("new_password", "")), str(form.get("confirm_password", ""))
                )
            except FedisoraError as exc:
                error, status = exc.message, exc.status
            else:
                return render(request, "password_reset.html", done=True, account=reset.account)
    return render(
        request,
        "password_reset.html",
        status=status,
        error=error,
        account=reset.account,
        csrf=csrf_token(request),
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/accounts", admin_accounts),
        Route("/admin/accounts/{account_id}/delete", admin_delete_account, methods=["GET", "POST"]),
        Route("/admin/accounts/{account_id}/approve", admin_approve_account, methods=["POST"]),
        Route("/admin/accounts/{account_id}/reject", admin_reject_account, methods=["POST"]),
        *(
            Route(
                f"/admin/accounts/{{account_id}}/{name}",
                admin_moderate_account,
                methods=["POST"],
                name=f"admin_{name}_account",
            )
            for name in _BUTTONS
        ),
        Route("/admin/accounts/{account_id}/role", admin_role, methods=["POST"]),
        Route(
            "/admin/accounts/{account_id}/password-reset", admin_password_reset, methods=["POST"]
        ),
        Route("/password-reset/{token}", password_reset, methods=["GET", "POST"]),
        Route("/settings/delete", settings_delete, methods=["GET", "POST"]),
    ]
