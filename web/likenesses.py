"""Likenesses and the consent audit in the admin pages (issue 14, points 1 and 9).

- ``/admin/likenesses``: the local likenesses, those waiting for verification first, each with
  its account, state, when it was registered and how it was verified; ``?state=`` lists one
  state a page at a time.
- ``/admin/likenesses/{id}``: one likeness with its verification sample, its reference stills
  and the challenge code its owner was given (to compare with the sample), and the Verify and
  Reject (with a reason) buttons: POSTs carrying the session's CSRF token that call the same
  service functions as ``fedisora likeness verify|reject``
  (:func:`fedisora.services.likeness.verify`, :func:`~fedisora.services.likeness.reject`),
  recording the admin as the verifier and the method ``admin``.
- ``/admin/likenesses/{id}/files/{name}``: the sample (``verification``) and the stills
  (``reference-0`` ... ``reference-4``). These are private files under
  :func:`~fedisora.services.likeness.private_dir`, never under the public media root: only an
  admin's session gets them, never cached (``Cache-Control: private, no-store``), and only by
  these names, mapped to the paths the likeness row holds and checked to resolve inside the
  private directory (a row naming anything else is refused too).
- ``/admin/consent-checks``: every consent check (:class:`~fedisora.models.ConsentCheck`,
  read through :func:`~fedisora.services.likeness.consent_checks`), newest first,
  :data:`AUDIT_PAGE` at a time, filterable by the owner of the likeness, by an account (as
  requester or owner) and by result.

Every page works without JavaScript; the media are plain ``img``/``video`` elements from this
site (the pages' Content-Security-Policy allows nothing else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise.queryset import QuerySet

from fedisora.errors import FedisoraError
from fedisora.ids import row_id
from fedisora.models import Account, ConsentCheck, Likeness, LikenessState, User
from fedisora.services import likeness as svc
from web.pages import render
from web.routes import _staff_user, staff_form
from web.sessions import csrf_token, current_session

__all__ = ["ADMIN_PAGE", "AUDIT_PAGE", "routes"]

ADMIN_PAGE = 50
"""Likenesses on one page of the admin's list (and on each section of the first page)."""
AUDIT_PAGE = 100
"""Consent checks on one page of the audit."""
DETAIL_CHECKS = 20
"""The latest consent checks of a likeness shown on its page."""

_FILE_NAME = re.compile(r"verification|reference-([0-4])")
_SAMPLE_TYPES = {"image/png": "image/png", "video/mp4": "video/mp4"}
_PRIVATE_HEADERS = {
    "Cache-Control": "private, no-store",
    "Content-Disposition": "inline",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STATES = tuple(s.value for s in LikenessState)


# --- who may see these pages -------------------------------------------------------------


async def _admin_page(request: Request) -> User | Response:
    """The admin for a page (GET); a visitor who is not logged in is sent to log in first,
    a logged-in non-admin is refused (403)."""
    if current_session(request) is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return await _staff_user(request)


# --- view models -------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def _acct(account: Account | None) -> str:
    if account is None:
        return "(gone)"
    return f"@{account.username}" + (f"@{account.domain}" if account.domain else "")


@dataclass(frozen=True, slots=True)
class LikenessRow:
    id: int
    account: str
    username: str
    state: str
    registered: str
    updated: str
    method: str
    verified_by: str
    verified_at: str
    reason: str


async def _rows(likenesses: list[Likeness]) -> list[LikenessRow]:
    ids = {x.account_id for x in likenesses} | {
        x.verified_by_id for x in likenesses if x.verified_by_id is not None
    }
    accounts = {a.pk: a for a in await Account.filter(id__in=list(ids))}
    return [
        LikenessRow(
            id=x.pk,
            account=_acct(accounts.get(x.account_id)),
            username=accounts[x.account_id].username if x.account_id in accounts else "",
            state=LikenessState(x.state).value,
            registered=_when(x.created_at),
            updated=_when(x.updated_at),
            method=x.verification_method,
            verified_by=(
                _acct(accounts.get(x.verified_by_id)) if x.verified_by_id is not None else ""
            ),
            verified_at=_when(x.verified_at),
            reason=x.reason,
        )
        for x in likenesses
    ]


def _cursor(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "")
    if not raw:
        return None
    value = row_id(raw)
    if value is None:
        raise HTTPException(400, f"{name} must be the id of a row (a whole number).")
    return value


def _local_likenesses() -> QuerySet[Likeness]:
    return Likeness.filter(account__domain__isnull=True)


# --- the list ----------------------------------------------------------------------------


async def admin_likenesses(request: Request) -> Response:
    """Without ``state``: those waiting for verification (oldest first, the queue), then the
    latest others (newest first). With ``state``: that state only, a page at a time (the
    ``after`` cursor names the last row of the page before)."""
    who = await _admin_page(request)
    if isinstance(who, Response):
        return who
    state = request.query_params.get("state", "")
    if state and state not in _STATES:
        raise HTTPException(400, f"state must be one of {', '.join(_STATES)}.")
    after = _cursor(request, "after")
    pending_count = await _local_likenesses().filter(state=LikenessState.PENDING).count()
    context: dict[str, Any] = {"state": state, "states": _STATES, "pending_count": pending_count}
    if not state:
        pending = list(
            await _local_likenesses()
            .filter(state=LikenessState.PENDING)
            .order_by("id")
            .limit(ADMIN_PAGE)
        )
        others = list(
            await _local_likenesses()
            .exclude(state=LikenessState.PENDING)
            .order_by("-id")
            .limit(ADMIN_PAGE + 1)
        )
        context.update(
            pending=await _rows(pending),
            more_pending=pending_count > len(pending),
            others=await _rows(others[:ADMIN_PAGE]),
            more_others=len(others) > ADMIN_PAGE,
            rows=None,
            next_after=None,
        )
    else:
        # The queue is read oldest first; decided likenesses newest first.
        queue = state == LikenessState.PENDING.value
        query = _local_likenesses().filter(state=state)
        if after is not None:
            query = query.filter(id__gt=after) if queue else query.filter(id__lt=after)
        found = list(await query.order_by("id" if queue else "-id").limit(ADMIN_PAGE + 1))
        page = found[:ADMIN_PAGE]
        context.update(
            rows=await _rows(page),
            next_after=page[-1].pk if len(found) > ADMIN_PAGE else None,
            after=after,
        )
    return render(request, "admin/likenesses.html", **context)


# --- one likeness ------------------------------------------------------------------------


async def _likeness(request: Request) -> Likeness:
    pk = row_id(str(request.path_params["likeness_id"]))
    likeness = await _local_likenesses().get_or_none(pk=pk) if pk is not None else None
    if likeness is None:
        raise HTTPException(404, "no such likeness")
    return likeness


async def _checks_view(checks: list[ConsentCheck]) -> list[dict[str, Any]]:
    ids = {c.requester_id for c in checks} | {c.owner_id for c in checks}
    accounts = {a.pk: a for a in await Account.filter(id__in=list(ids))}
    return [
        {
            "id": c.pk,
            "when": _when(c.created_at),
            "requester": _acct(accounts.get(c.requester_id)),
            "owner": _acct(accounts.get(c.owner_id)),
            "stage": c.stage or "request",
            "scope": "publish" if c.publish else "draft",
            "render_job": c.render_job_id,
            "grant": c.grant_id,
            "allowed": c.allowed,
            "reason": c.reason,
        }
        for c in checks
    ]


async def _detail(
    request: Request, likeness: Likeness, *, status: int = 200, error: str | None = None
) -> Response:
    row = (await _rows([likeness]))[0]
    live = current_session(request)
    assert live is not None  # only an admin's session gets here
    checks = await svc.consent_checks(
        live.account,
        admin=True,
        owner=await Account.get(pk=likeness.account_id),
        limit=DETAIL_CHECKS,
    )
    sample_type = _SAMPLE_TYPES.get(likeness.verification_type, "")
    return render(
        request,
        "admin/likeness.html",
        status=status,
        error=error,
        row=row,
        challenge_code=likeness.challenge_code,
        sample=(
            {"video": sample_type.startswith("video/"), "type": sample_type}
            if likeness.verification_file and sample_type
            else None
        ),
        references=list(range(len(likeness.reference_files))),
        decidable=likeness.state != LikenessState.REVOKED,
        audience=likeness.audience,
        restrictions=likeness.restrictions,
        checks=await _checks_view(list(checks)),
        csrf=csrf_token(request),
    )


async def admin_likeness(request: Request) -> Response:
    who = await _admin_page(request)
    if isinstance(who, Response):
        return who
    return await _detail(request, await _likeness(request))


async def _decide(request: Request, verdict: str) -> Response:
    """Verify or reject, through the service the CLI uses; the admin is the verifier."""
    staff = await _staff_user(request)
    likeness = await _likeness(request)
    form, me = await staff_form(request, staff)
    owner = await Account.get(pk=likeness.account_id)
    try:
        if verdict == "verify":
            await svc.verify(owner.username, by=me, method="admin")
        else:
            reason = str(form.get("reason", "")).strip()
            await svc.reject(owner.username, reason=reason, by=me)
    except FedisoraError as exc:
        fresh = await Likeness.get(pk=likeness.pk)
        return await _detail(request, fresh, status=exc.status, error=exc.message)
    return RedirectResponse(f"/admin/likenesses/{likeness.pk}", status_code=303)


async def admin_verify(request: Request) -> Response:
    return await _decide(request, "verify")


async def admin_reject(request: Request) -> Response:
    return await _decide(request, "reject")


# --- the private files -------------------------------------------------------------------


def _private_file(likeness: Likeness, name: str, base: Path) -> tuple[Path, str]:
    """(path, content type) of the file *name* of *likeness*: only the names this module
    gives, each mapped to the path the row holds, which must resolve inside *base*."""
    found = _FILE_NAME.fullmatch(name)
    if found is None:
        raise HTTPException(404, "no such file")
    if found.group(1) is None:
        rel, kind = likeness.verification_file, _SAMPLE_TYPES.get(likeness.verification_type)
    else:
        index = int(found.group(1))
        files = likeness.reference_files
        rel = files[index] if isinstance(files, list) and index < len(files) else None
        kind = "image/png"
    if not rel or not isinstance(rel, str) or kind is None:
        raise HTTPException(404, "no such file")
    path = (base / rel).resolve()
    if base not in path.parents or not path.is_file():
        raise HTTPException(404, "no such file")
    return path, kind


async def admin_likeness_file(request: Request) -> Response:
    """A likeness's sample or still, to an admin's session only (401 for anyone not logged
    in, 403 for a non-admin: no redirect, these are loaded by the admin's pages)."""
    await _staff_user(request)
    likeness = await _likeness(request)
    base = svc.private_dir(request.app.state.settings)
    path, kind = _private_file(likeness, str(request.path_params["name"]), base)
    return FileResponse(path, media_type=kind, headers=_PRIVATE_HEADERS)


# --- the consent audit -------------------------------------------------------------------


async def _named_account(raw: str, local_domain: str) -> Account:
    name, _, domain = raw.strip().removeprefix("@").partition("@")
    if not name or len(raw) > 300:
        raise HTTPException(400, "account must be a username or user@domain.")
    if not domain or domain.lower() == local_domain.lower():
        account = await Account.get_or_none(username=name, domain=None)
    else:
        account = await Account.get_or_none(username=name, domain=domain.lower())
    if account is None:
        raise HTTPException(404, f"no account {raw.strip()[:100]}")
    return account


async def admin_consent_checks(request: Request) -> Response:
    """The audit, newest first (:func:`fedisora.services.likeness.consent_checks`): ``owner``
    (a username, or user@domain) keeps the checks of that account's likeness, ``account`` the
    checks it made or that were made of its likeness, ``result`` (allowed|refused) one
    result, and the ``before`` cursor names the last check of the page before."""
    who = await _admin_page(request)
    if isinstance(who, Response):
        return who
    live = current_session(request)
    assert live is not None  # _admin_page sent anyone else away
    local_domain = request.app.state.settings.domain
    account_raw = request.query_params.get("account", "").strip()
    owner_raw = request.query_params.get("owner", "").strip()
    result = request.query_params.get("result", "")
    if result not in ("", "allowed", "refused"):
        raise HTTPException(400, "result must be allowed or refused.")
    before = _cursor(request, "before")
    found = await svc.consent_checks(
        live.account,
        admin=True,
        limit=AUDIT_PAGE + 1,
        max_id=before,
        owner=await _named_account(owner_raw, local_domain) if owner_raw else None,
        involving=await _named_account(account_raw, local_domain) if account_raw else None,
        allowed=None if not result else result == "allowed",
    )
    page = found[:AUDIT_PAGE]
    return render(
        request,
        "admin/consent_checks.html",
        checks=await _checks_view(page),
        account=account_raw,
        owner=owner_raw,
        result=result,
        before=before,
        next_before=page[-1].pk if len(found) > AUDIT_PAGE else None,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/likenesses", admin_likenesses),
        Route("/admin/likenesses/{likeness_id}", admin_likeness),
        Route("/admin/likenesses/{likeness_id}/verify", admin_verify, methods=["POST"]),
        Route("/admin/likenesses/{likeness_id}/reject", admin_reject, methods=["POST"]),
        Route("/admin/likenesses/{likeness_id}/files/{name}", admin_likeness_file),
        Route("/admin/consent-checks", admin_consent_checks),
    ]
