"""The logged-in user's notifications: ``/notifications``.

Grouped as the API's ``/api/v2/notifications`` groups them, by the same service
(:mod:`fedisora.services.notifications`): "alice and 3 others liked your clip". Each group is
said in words, with links to the accounts, the clip (its page here for a local clip, its own
instance's for a remote one) or the comment (a local comment's id opens its page here); a
likeness request links to the requests to answer, a use of one's likeness without a clip to
see to the uses (``/settings/likeness/...``, :mod:`web.likeness_settings`).
Pages go back in time with a plain "Older" link (``max_id``, the API's cursor). Dismissing one
group and clearing them all are POST forms carrying the session's CSRF token.

Read state is the notifications marker (:mod:`fedisora.services.markers`, Mastodon's
``/api/v1/markers``, shared with the user's apps): groups newer than it are marked "New", and
showing the newest page moves it to the newest notification shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.boundary import read_form
from fedisora.ids import row_id
from fedisora.models import Account, Clip, Comment, NotificationType
from fedisora.services.markers import save_markers, unread_after
from fedisora.services.notifications import (
    NotificationGroup,
    clear_all,
    dismiss_group,
    grouped_page,
    notifications_query,
    unread_count,
)
from web.clips import PAGE, author_href, session_account
from web.comment_pages import clip_href, comment_href
from web.pages import html_errors, render
from web.sessions import check_csrf

__all__ = ["NamedAccount", "NotificationView", "describe", "routes"]

NAMES_SHOWN = 2
"""Accounts a group of two names; a bigger one names its newest: "alice and 3 others"."""
MAX_KEY = 64
_UNNAMED_TYPES = (
    NotificationType.RENDER_FINISHED.value,
    NotificationType.RENDER_FAILED.value,
    NotificationType.MODERATION_WARNING.value,
    NotificationType.APPEAL_APPROVED.value,
    NotificationType.APPEAL_REJECTED.value,
)
"""Types no account sent (your render ended, a moderator acted): they name nobody."""


@dataclass(frozen=True)
class NamedAccount:
    """An account as a notification names it, with where its name links."""

    account: Account
    href: str | None

    @property
    def remote(self) -> bool:
        return not self.account.local


@dataclass(frozen=True)
class NotificationView:
    """One group as ``notifications.html`` shows it."""

    key: str
    type: str
    accounts: list[NamedAccount]
    others: int
    """How many more accounts the group holds than it names."""
    action: str
    """What happened, in words after the names ("liked your clip")."""
    target_href: str | None
    target_label: str | None
    target_remote: bool
    at: str
    at_text: str
    latest_id: int = 0
    """The id of the group's newest notification (against the read marker)."""

    @property
    def css_type(self) -> str:
        return self.type.replace("fedisora.", "fedisora-").replace("_", "-")


def _action(kind: str, target: Clip | Comment | None) -> tuple[str, str | None]:
    """What a group of *kind* says happened, and the label of its link (None: no link)."""
    thing = "your comment" if isinstance(target, Comment) else "your clip"
    match kind:
        case NotificationType.FAVOURITE.value:
            return "liked", thing
        case NotificationType.REBLOG.value:
            return "boosted", thing
        case NotificationType.FOLLOW.value:
            return "followed you", None
        case NotificationType.FOLLOW_REQUEST.value:
            return "asked to follow you", None
        case NotificationType.MENTION.value:
            where = "a comment" if isinstance(target, Comment) else "a clip"
            return "mentioned you in", where
        case NotificationType.STATUS.value:
            return "posted", "a new clip"
        case NotificationType.UPDATE.value:
            return "edited", "a clip you interacted with"
        case NotificationType.REMIX.value:
            return "remixed your clip in", "their remix"
        case NotificationType.LIKENESS_USE.value:
            if target is None:
                return "used your likeness in a render (not posted):", "see the uses"
            return "used your likeness in", "a clip"
        case NotificationType.LIKENESS_REQUEST.value:
            return "asked to use your likeness:", "answer"
        case NotificationType.RENDER_FINISHED.value:
            return "Your render is ready:", "see it and publish it"
        case NotificationType.RENDER_FAILED.value:
            return "Your render failed:", "see why"
        case NotificationType.MODERATION_WARNING.value:
            return (
                "A moderator of this instance took action on your account or posts:",
                "see what, and appeal",
            )
        case NotificationType.APPEAL_APPROVED.value:
            return "Your appeal was approved:", "see the decision"
        case NotificationType.APPEAL_REJECTED.value:
            return "Your appeal was rejected:", "see the decision"
        case NotificationType.ADMIN_REPORT.value:
            return "filed a report:", "review it"
        case NotificationType.ADMIN_APPEAL.value:
            return "appealed a moderator's decision:", "review appeals"
        case NotificationType.ADMIN_SIGN_UP.value:
            return "signed up and waits for approval:", "review sign-ups"
    return f"sent a notification ({kind})", None  # pragma: no cover - every type is above


async def describe(viewer: Account, groups: list[NotificationGroup]) -> list[NotificationView]:
    """The words and links of *groups* (of *viewer*'s notifications)."""
    account_ids = {i for g in groups for i in g.sample_account_ids[:NAMES_SHOWN]}
    clips = [g.target for g in groups if isinstance(g.target, Clip)]
    account_ids |= {c.account_id for c in clips}
    accounts = {a.pk: a for a in await Account.filter(pk__in=account_ids)}
    out = []
    for group in groups:
        kind = group.type
        action, label = _action(kind, group.target)
        shown = NAMES_SHOWN if group.count == NAMES_SHOWN else 1
        named = [
            NamedAccount(accounts[i], author_href(accounts[i]))
            for i in group.sample_account_ids[:shown]
            if i in accounts
        ]
        if kind in _UNNAMED_TYPES:
            named = []
        others = max(0, group.count - len(named)) if named else 0
        href: str | None = None
        remote = False
        target = group.target
        if isinstance(target, Comment):
            href = comment_href(target)
            remote = not target.local
        elif isinstance(target, Clip) and target.account_id in accounts:
            href = clip_href(target, accounts[target.account_id])
            remote = not target.local
        elif kind == NotificationType.LIKENESS_USE.value:
            href = "/settings/likeness/uses"  # web.likeness_settings (the render is theirs)
        elif kind == NotificationType.LIKENESS_REQUEST.value:
            href = "/settings/likeness/requests#incoming"
        elif group.latest.render_job_id is not None:
            href = f"/renders/{group.latest.render_job_id}"  # its page (web.create)
        elif kind == NotificationType.ADMIN_SIGN_UP.value:
            href = "/admin/accounts?status=pending"  # web.accounts
        elif kind == NotificationType.ADMIN_APPEAL.value:
            href = "/admin/appeals"  # web.moderation (its warning is the appellant's)
        elif group.latest.report_id is not None:
            href = f"/admin/reports/{group.latest.report_id}"  # web.admin_reports
        elif group.latest.account_warning_id is not None:
            href = f"/settings/warnings#warning-{group.latest.account_warning_id}"
        if href is None:
            label = None
        at = group.latest.created_at
        out.append(
            NotificationView(
                key=group.key,
                type=kind,
                accounts=named,
                others=others,
                action=action,
                target_href=href,
                target_label=label,
                target_remote=remote,
                at=at.isoformat(),
                at_text=at.strftime("%Y-%m-%d %H:%M"),
                latest_id=group.latest.pk,
            )
        )
    return out


def _cursor(request: Request) -> int | None:
    raw = request.query_params.get("max_id", "")
    if raw == "":
        return None
    found = row_id(raw)
    if found is None:
        raise HTTPException(400, "max_id must be the id of a notification (a whole number).")
    return found


@html_errors
async def notifications_page(request: Request) -> Response:
    me = await session_account(request)
    if me is None:
        return RedirectResponse("/login?next=/notifications", status_code=303)
    max_id = _cursor(request)
    page = await grouped_page(me, notifications_query(me), limit=PAGE, max_id=max_id)
    notes = await describe(me, page.groups)
    new, read_up_to = await unread_after(me)
    if notes and max_id is None:
        # Seen: the newest page moves the read marker (shared with the user's apps) forward.
        await save_markers(me, {"notifications": max(n.latest_id for n in notes)})
    return render(
        request,
        "notifications.html",
        notes=notes,
        fresh={n.key for n in notes if read_up_to is None or n.latest_id > read_up_to},
        new=new,
        older=page.next_max_id,
        max_id=max_id,
        unread=await unread_count(me),
    )


async def _posted(request: Request) -> tuple[Account, str]:
    me = await session_account(request)
    if me is None:
        raise HTTPException(401, "Log in first.")
    form = await read_form(request)
    check_csrf(request, form)
    return me, str(form.get("group", ""))[:MAX_KEY]


@html_errors
async def dismiss(request: Request) -> Response:
    me, key = await _posted(request)
    if not await dismiss_group(me, key):
        raise HTTPException(404, "You have no such notification (it may be dismissed already).")
    return RedirectResponse("/notifications", status_code=303)


@html_errors
async def clear(request: Request) -> Response:
    me, _ = await _posted(request)
    await clear_all(me)
    return RedirectResponse("/notifications", status_code=303)


async def badge(request: Request) -> Response:
    """``/notifications/badge``: the tab bar's count of notifications newer than the read
    marker, as a fragment app.js puts in the Notifications tab (empty when none; a visitor
    gets the empty fragment too: the tab is not theirs)."""
    me = await session_account(request)
    new = (await unread_after(me))[0] if me is not None else 0
    response = render(request, "_badge.html", new=new)
    response.headers["Cache-Control"] = "no-store"
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/notifications/badge", badge),
        Route("/notifications", notifications_page),
        Route("/notifications/dismiss", dismiss, methods=["POST"]),
        Route("/notifications/clear", clear, methods=["POST"]),
    ]
