"""A person's own likeness (cameos) in the browser: ``/settings/likeness`` and its pages, and
"Request cameo" on another person's profile (issue 14, in the web app).

Thin pages over :mod:`fedisora.services.likeness`, the functions the API's
:mod:`fedisora.api.likeness` calls (no rule is written here: a refusal is the service's, shown
in words in the page, with a 4xx status and the values entered):

- ``/settings/likeness``: the likeness's state (none, pending, verified, rejected with the
  reason, revoked) and how it was verified; registration (``POST .../challenge`` gives the
  one-time code, ``POST .../register`` takes 1 to 5 stills and the verification sample:
  :func:`~fedisora.services.likeness.register`); the policy form (``POST .../policy``:
  :func:`~fedisora.services.likeness.update_policy`).
- ``/settings/likeness/revoke``: the confirmation step, keeping or taking down the clips
  published with it (:func:`~fedisora.services.likeness.revoke_likeness`).
- ``/settings/likeness/requests``: incoming requests (approve, reject) and outgoing ones, and
  asking for someone's likeness by ``@name`` or ``name@domain`` (local or remote).
- ``/settings/likeness/grants``: the grants given (revoke one, taking its clips down or not)
  and held; granting ahead of any request to ``@name`` or ``name@domain``.
- ``/settings/likeness/uses``: every use of the likeness (drafts, published and remote clips,
  refusals) with "Remove me from this clip"; ``/settings/likeness/checks``: the consent checks
  of the likeness (the audit), newest first.
- ``POST /@{username}/cameo``: a likeness request from the owner's profile page (their
  restrictions ticked as accepted), answered in words on the profile page.

Every change is a plain POST form carrying the session's CSRF token (they work without
JavaScript); a page shows a done message from a fixed list named in the redirect's query.
Lists are lists of cards (no table overflows a phone's screen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from activitypub.objects import web_url
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError, Invalid
from fedisora.ids import row_id
from fedisora.models import (
    Account,
    Audience,
    Clip,
    ConsentCheck,
    Likeness,
    LikenessGrant,
    LikenessRequest,
    LikenessState,
    LikenessUse,
    utcnow,
)
from fedisora.services import likeness as svc
from fedisora.services.visibility import can_see_clip
from web.clips import author_href
from web.comment_pages import clip_href
from web.pages import render
from web.sessions import SUSPENDED_PAGE, check_csrf, current_session
from web.settings import _logged_in

__all__ = ["HERE", "PAGE", "cameo_context", "routes"]

HERE = "/settings/likeness"
PAGE = 40
"""Uses or consent checks on one page."""

AUDIENCES = (
    (Audience.NOBODY.value, "Nobody", "Nobody may use it, you neither."),
    (Audience.ME.value, "Only me", "Only you may put yourself in clips."),
    (Audience.APPROVED.value, "People I approve", "Each person asks; you approve or reject."),
    (
        Audience.MUTUALS.value,
        "Mutuals",
        "People you follow who follow you back may use it without asking.",
    ),
    (Audience.EVERYONE.value, "Everyone", "Anyone may use it without asking."),
)
EXPIRIES = (
    ("", "Never (until you revoke it)"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "1 week"),
    ("2592000", "30 days"),
    ("7776000", "90 days"),
    ("31536000", "1 year"),
)
"""The lifetimes offered for a grant (seconds as the service takes them)."""

_DONE = {
    "challenge": "Here is your code: show it in your verification sample.",
    "registered": "Registered: your likeness waits for verification by this instance.",
    "policy": "Saved: who may use your likeness follows these settings from now on.",
    "revoked": "Your likeness is revoked: nobody may use it any more.",
    "approved": "Approved: they may use your likeness now.",
    "rejected": "Rejected: they may not use your likeness.",
    "granted": "Granted: they may use your likeness.",
    "grant_revoked": "Revoked: that person may not use your likeness any more.",
    "removed": "Removed: you are no longer in that clip.",
}
"""What a page says after a change (its redirect names one: no text travels in a URL)."""

_METHODS = {"admin": "by an admin of this instance", "admin (command line)": "by an admin"}


# --------------------------------------------------------------------------- view models


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


@dataclass(frozen=True)
class Person:
    """An account as these pages name it (``@name`` here, ``@name@domain`` elsewhere)."""

    account: Account | None
    handle: str
    href: str | None
    remote: bool


def _person(account: Account | None) -> Person:
    if account is None:
        return Person(None, "(an account that is gone)", None, False)
    return Person(account, f"@{account.acct}", author_href(account), not account.local)


async def _people(ids: set[int]) -> dict[int, Person]:
    rows = await Account.filter(pk__in=list(ids)) if ids else []
    return {a.pk: _person(a) for a in rows}


def _verification(likeness: Likeness) -> str:
    """The likeness's state and how it was verified (or where its verification stands), in
    words."""
    method = likeness.verification_method
    if likeness.state == LikenessState.VERIFIED:
        how = _METHODS.get(method)
        if how is None:
            how = "by this instance's automatic check" if method.startswith("check ") else ""
        return " ".join(("Verified", how, f"on {_when(likeness.verified_at)}.")).replace("  ", " ")
    if likeness.state == LikenessState.PENDING:
        if method.endswith(": undecided"):
            return "Pending: the automatic check could not decide; an admin will look at it."
        return "Pending: waiting for verification by this instance."
    if likeness.state == LikenessState.REJECTED:
        return "Rejected: this instance refused to verify it."
    return f"Revoked on {_when(likeness.revoked_at)}."


def _expires_in(raw: object) -> int | None:
    """A lifetime the form chose (seconds), or None; anything else is named in words."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None
    if not text.isdigit():
        raise Invalid("The expiry must be one of the lifetimes offered.")
    return int(text)


def _expires_at(raw: object) -> datetime | None:
    seconds = _expires_in(raw)
    return utcnow() + timedelta(seconds=seconds) if seconds else None


def _done(request: Request) -> str | None:
    return _DONE.get(request.query_params.get("done", ""))


def _row_id(request: Request, name: str = "id") -> int:
    found = row_id(str(request.path_params[name]))
    if found is None:
        raise HTTPException(404, "There is no such row here.")
    return found


async def _form(request: Request) -> FormData:
    form = await read_form(request)
    check_csrf(request, form)
    return form


def _engine(request: Request) -> Any:
    return getattr(request.app.state, "engine", None)


def _words(exc: FedisoraError) -> str:
    text = exc.message
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- the main page


async def _main_page(
    request: Request,
    me: Account,
    *,
    status: int = 200,
    error: str | None = None,
    error_in: str = "",
    policy_values: dict[str, Any] | None = None,
) -> Response:
    likeness = await svc.get_likeness(me)
    challenge = await svc.open_challenge(me)
    live = likeness is not None and likeness.state != LikenessState.REVOKED
    incoming, _ = await svc.requests_of(me)
    expiry = policy_values.get("default_expires_in") if policy_values else None
    if policy_values is None and likeness is not None:
        policy_values = {
            "audience": likeness.audience.value,
            "approval_required": likeness.approval_required,
            "drafts_only": likeness.drafts_only,
            "restrictions": likeness.restrictions,
        }
        expiry = str(likeness.default_expires_in or "")
    expiries = list(EXPIRIES)
    if expiry and expiry not in {v for v, _ in EXPIRIES}:
        expiries.append((str(expiry), f"{expiry} seconds (set elsewhere)"))
    return render(
        request,
        "settings/likeness.html",
        status=status,
        error=error,
        error_in=error_in,
        done=_done(request),
        likeness=likeness,
        live=live,
        state=likeness.state.value if likeness is not None else "none",
        verification=_verification(likeness) if likeness is not None else "",
        can_register=likeness is None or likeness.state != LikenessState.VERIFIED,
        challenge=challenge,
        challenge_expires=_when(challenge.expires_at) if challenge is not None else "",
        policy=policy_values or {},
        expiry=expiry or "",
        expiries=expiries,
        audiences=AUDIENCES,
        waiting=sum(1 for r in incoming if r.state == "pending"),
        max_images=svc.MAX_REFERENCE_IMAGES,
        max_image_mb=svc.MAX_REFERENCE_BYTES // (1024 * 1024),
        max_sample_mb=svc.MAX_VERIFICATION_BYTES // (1024 * 1024),
        max_restrictions=svc.MAX_RESTRICTIONS,
    )


async def main_page(request: Request) -> Response:
    live = _logged_in(request, HERE)
    if isinstance(live, Response):
        return live
    return await _main_page(request, live.account)


async def new_challenge(request: Request) -> Response:
    live = _logged_in(request, HERE)
    if isinstance(live, Response):
        return live
    await _form(request)
    try:
        await svc.new_challenge(live.account)
    except FedisoraError as exc:
        return await _main_page(request, live.account, status=exc.status, error=_words(exc))
    return RedirectResponse(f"{HERE}?done=challenge#register", status_code=303)


def _files(form: FormData, name: str) -> list[UploadFile]:
    """The files chosen in the input *name* (a browser sends an empty part for none)."""
    return [v for v in form.getlist(name) if isinstance(v, UploadFile) and v.filename]


async def register(request: Request) -> Response:
    live = _logged_in(request, HERE)
    if isinstance(live, Response):
        return live
    me = live.account
    try:
        form = await read_form(request)
    except FedisoraError as exc:  # too many parts, most often
        message = (
            f"Too many files, or a form that could not be read: choose 1 to "
            f"{svc.MAX_REFERENCE_IMAGES} stills and one sample ({exc.message})."
        )
        return await _main_page(request, me, status=exc.status, error=message, error_in="register")
    try:
        check_csrf(request, form)
        stills = _files(form, "reference_images")
        sample = _files(form, "verification")
        references = [await f.read(svc.MAX_REFERENCE_BYTES + 1) for f in stills]
        verification = await sample[0].read(svc.MAX_VERIFICATION_BYTES + 1) if sample else b""
        code = form.get("challenge")
        await svc.register(
            me,
            references=references,
            verification=verification,
            challenge=code if isinstance(code, str) else "",
            settings=request.app.state.settings,
            engine=_engine(request),
        )
    except FedisoraError as exc:
        return await _main_page(
            request, me, status=exc.status, error=_words(exc), error_in="register"
        )
    finally:
        await form.close()
    return RedirectResponse(f"{HERE}?done=registered", status_code=303)


async def policy(request: Request) -> Response:
    live = _logged_in(request, HERE)
    if isinstance(live, Response):
        return live
    form = await _form(request)
    values: dict[str, Any] = {
        "audience": str(form.get("audience", "")),
        "approval_required": form.get("approval_required") == "on",
        "drafts_only": form.get("drafts_only") == "on",
        "restrictions": str(form.get("restrictions", "")),
        "default_expires_in": str(form.get("default_expires_in", "")).strip(),
    }
    try:
        await svc.update_policy(
            live.account,
            audience=values["audience"] or None,
            approval_required=values["approval_required"],
            drafts_only=values["drafts_only"],
            restrictions=values["restrictions"],
            default_expires_in=_expires_in(values["default_expires_in"]),
        )
    except FedisoraError as exc:
        return await _main_page(
            request,
            live.account,
            status=exc.status,
            error=_words(exc),
            error_in="policy",
            policy_values=values,
        )
    return RedirectResponse(f"{HERE}?done=policy#policy", status_code=303)


async def revoke(request: Request) -> Response:
    """The confirmation step (GET) and revoking the whole likeness (POST)."""
    live = _logged_in(request, f"{HERE}/revoke")
    if isinstance(live, Response):
        return live
    me = live.account
    likeness = await svc.get_likeness(me)
    if likeness is None or likeness.state == LikenessState.REVOKED:
        raise HTTPException(404, "You have no likeness to revoke.")
    error, status = None, 200
    if request.method == "POST":
        form = await _form(request)
        choice = form.get("take_down")
        if choice not in ("yes", "no"):
            error, status = (
                "Choose whether the clips published with it stay or are taken down.",
                422,
            )
        else:
            try:
                await svc.revoke_likeness(
                    me,
                    settings=request.app.state.settings,
                    take_down=choice == "yes",
                    engine=_engine(request),
                )
            except FedisoraError as exc:
                error, status = _words(exc), exc.status
            else:
                # a suspended account's session reaches only its suspension page besides this
                done = SUSPENDED_PAGE if live.restricted else f"{HERE}?done=revoked"
                return RedirectResponse(done, status_code=303)
    given, _ = await svc.grants_of(me)
    return render(
        request,
        "settings/likeness_revoke.html",
        status=status,
        error=error,
        grants=sum(1 for g in given if g.revoked_at is None),
    )


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RequestView:
    id: int
    state: str
    who: Person
    accepted: str
    """Whether they accepted the owner's restrictions, in words ("" when there are none)."""
    created: str
    answered: str


def _accepted(row: LikenessRequest, digest: str) -> str:
    if not digest:
        return ""
    if row.accepted_restrictions == digest:
        return "They accepted your restrictions."
    if row.accepted_restrictions:
        return "They accepted an earlier text of your restrictions, not the current one."
    return "They did not accept your restrictions."


async def _request_views(
    rows: list[LikenessRequest], other: str, restrictions: str = ""
) -> list[RequestView]:
    people = await _people({getattr(r, f"{other}_id") for r in rows})
    digest = svc.restrictions_digest(restrictions) if restrictions else ""
    return [
        RequestView(
            id=r.pk,
            state=r.state,
            who=people.get(getattr(r, f"{other}_id")) or _person(None),
            accepted=_accepted(r, digest),
            created=_when(r.created_at),
            answered=_when(r.answered_at),
        )
        for r in rows
    ]


async def _requests_page(
    request: Request,
    me: Account,
    *,
    status: int = 200,
    error: str | None = None,
    result: str | None = None,
    acct: str = "",
    accept: bool = False,
) -> Response:
    incoming, outgoing = await svc.requests_of(me)
    likeness = await svc.get_likeness(me)
    restrictions = likeness.restrictions if likeness is not None else ""
    return render(
        request,
        "settings/likeness_requests.html",
        status=status,
        error=error,
        result=result,
        done=_done(request),
        incoming=await _request_views(incoming, "requester", restrictions),
        outgoing=await _request_views(outgoing, "owner"),
        restrictions=restrictions,
        live=likeness is not None and likeness.state != LikenessState.REVOKED,
        expiries=EXPIRIES,
        acct=acct,
        accept=accept,
    )


async def requests_page(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/requests")
    if isinstance(live, Response):
        return live
    return await _requests_page(request, live.account)


def _answer(row: LikenessRequest, owner: Account) -> str:
    """A request's answer in words, for the person who asked."""
    name = f"@{owner.acct}"
    if row.state == "approved":
        return (
            f"Granted at once: {name}'s settings let you use their likeness. They are in the "
            "cameo picker when you create a clip."
        )
    if row.state == "rejected":
        return f"{name} refused."
    if not owner.local:
        return f"Asked: waiting for {name}'s server to answer (their settings or they decide)."
    return f"Asked: waiting for {name} to answer. You will see their answer here."


async def ask(request: Request) -> Response:
    """Ask for someone's likeness by ``@name`` or ``name@domain`` (local or remote)."""
    live = _logged_in(request, f"{HERE}/requests")
    if isinstance(live, Response):
        return live
    me = live.account
    form = await _form(request)
    acct = str(form.get("acct", "")).strip()[:320]
    accept = form.get("accept_restrictions") == "on"
    try:
        if not acct:
            raise Invalid("Name the person: @name for someone here, or name@their.server.")
        owner = await svc.named_account(acct=acct, settings=request.app.state.settings)
        row = await svc.request_use(me, owner, accept_restrictions=accept)
    except FedisoraError as exc:
        return await _requests_page(
            request, me, status=exc.status, error=_words(exc), acct=acct, accept=accept
        )
    return await _requests_page(request, me, result=_answer(row, owner))


async def _answer_request(request: Request, *, approve: bool) -> Response:
    live = _logged_in(request, f"{HERE}/requests")
    if isinstance(live, Response):
        return live
    me = live.account
    form = await _form(request)
    request_id = _row_id(request)
    try:
        if approve:
            await svc.approve_request(me, request_id, expires_at=_expires_at(form.get("expires")))
        else:
            await svc.reject_request(me, request_id)
    except FedisoraError as exc:
        return await _requests_page(request, me, status=exc.status, error=_words(exc))
    done = "approved" if approve else "rejected"
    return RedirectResponse(f"{HERE}/requests?done={done}", status_code=303)


async def approve_request(request: Request) -> Response:
    return await _answer_request(request, approve=True)


async def reject_request(request: Request) -> Response:
    return await _answer_request(request, approve=False)


# --------------------------------------------------------------------------- grants


@dataclass(frozen=True)
class GrantView:
    id: int
    who: Person
    basis: str
    scope: str
    single_use: bool
    restrictions_pending: bool
    """The owner's current restrictions are not the ones this grant was accepted under."""
    created: str
    expires: str
    expired: bool
    revoked: str
    take_down: bool
    uri: str | None


async def _grant_views(
    rows: list[LikenessGrant], other: str, restrictions: str = ""
) -> list[GrantView]:
    people = await _people({getattr(g, f"{other}_id") for g in rows})
    digest = svc.restrictions_digest(restrictions)
    now = utcnow()
    return [
        GrantView(
            id=g.pk,
            who=people.get(getattr(g, f"{other}_id")) or _person(None),
            basis=g.basis,
            scope=g.scope,
            single_use=g.single_use,
            restrictions_pending=bool(digest) and g.restrictions_digest != digest,
            created=_when(g.created_at),
            expires=_when(g.expires_at),
            expired=g.expires_at is not None and g.expires_at <= now,
            revoked=_when(g.revoked_at),
            take_down=g.take_down,
            uri=web_url(g.uri) if g.uri else None,
        )
        for g in rows
    ]


async def _grants_page(
    request: Request,
    me: Account,
    *,
    status: int = 200,
    error: str | None = None,
    acct: str = "",
    expires: str = "",
) -> Response:
    given, held = await svc.grants_of(me)
    likeness = await svc.get_likeness(me)
    return render(
        request,
        "settings/likeness_grants.html",
        status=status,
        error=error,
        done=_done(request),
        given=await _grant_views(
            given, "grantee", likeness.restrictions if likeness is not None else ""
        ),
        held=await _grant_views(held, "owner"),
        live=likeness is not None and likeness.state != LikenessState.REVOKED,
        expiries=EXPIRIES,
        acct=acct,
        expires=expires,
    )


async def grants_page(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/grants")
    if isinstance(live, Response):
        return live
    return await _grants_page(request, live.account)


async def grant_ahead(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/grants")
    if isinstance(live, Response):
        return live
    me = live.account
    form = await _form(request)
    acct = str(form.get("acct", "")).strip()[:320]
    expires = str(form.get("expires", ""))
    try:
        if not acct:
            raise Invalid("Name the person: @name for someone here, or name@their.server.")
        grantee = await svc.named_account(acct=acct, settings=request.app.state.settings)
        await svc.grant(me, grantee, expires_at=_expires_at(expires))
    except FedisoraError as exc:
        return await _grants_page(
            request, me, status=exc.status, error=_words(exc), acct=acct, expires=expires
        )
    return RedirectResponse(f"{HERE}/grants?done=granted", status_code=303)


async def revoke_grant(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/grants")
    if isinstance(live, Response):
        return live
    me = live.account
    form = await _form(request)
    grant_id = _row_id(request)
    try:
        await svc.revoke_grant(
            me, grant_id, take_down=form.get("take_down") == "yes", engine=_engine(request)
        )
    except FedisoraError as exc:
        return await _grants_page(request, me, status=exc.status, error=_words(exc))
    return RedirectResponse(f"{HERE}/grants?done=grant_revoked", status_code=303)


# --------------------------------------------------------------------------- uses, checks

_USE_KINDS = {
    "requested": "asked to use it",
    "draft": "used it in a draft (not posted)",
    "published": "posted a clip with it",
    "remixed": "remixed a clip with it",
    "refused": "was refused its use",
}


@dataclass(frozen=True)
class UseView:
    id: int
    who: Person
    kind: str
    what: str
    reason: str
    remote: bool
    clip_href: str | None
    clip_remote: bool
    created: str
    removed: str
    removable: bool


def _cursor(request: Request) -> int | None:
    raw = request.query_params.get("max_id", "")
    if not raw:
        return None
    found = row_id(raw)
    if found is None:
        raise HTTPException(400, "max_id must be the id of a row (a whole number).")
    return found


async def _use_views(me: Account, rows: list[LikenessUse]) -> list[UseView]:
    people = await _people({u.user_id for u in rows})
    clips = {c.pk: c for c in await Clip.filter(pk__in=[u.clip_id for u in rows if u.clip_id])}
    authors = await _people({c.account_id for c in clips.values()})
    out = []
    for u in rows:
        href, remote_clip = None, False
        clip = clips.get(u.clip_id) if u.clip_id is not None else None
        if clip is not None and await can_see_clip(me, clip):
            author = authors.get(clip.account_id)
            href = clip_href(clip, author.account) if author and author.account else None
            remote_clip = not clip.local
        elif clip is None and u.clip_uri and u.removed_at is None:
            href, remote_clip = web_url(u.clip_uri), True
        out.append(
            UseView(
                id=u.pk,
                who=people.get(u.user_id) or _person(None),
                kind=u.kind,
                what=_USE_KINDS.get(u.kind, u.kind),
                reason=u.reason,
                remote=u.remote,
                clip_href=href,
                clip_remote=remote_clip,
                created=_when(u.created_at),
                removed=_when(u.removed_at),
                removable=u.removed_at is None
                and u.kind != "refused"
                and (
                    u.clip_id is not None
                    or u.render_job_id is not None
                    or (u.remote and u.grant_id is not None)
                ),
            )
        )
    return out


async def _uses_page(
    request: Request, me: Account, *, status: int = 200, error: str | None = None
) -> Response:
    max_id = _cursor(request)
    rows = await svc.uses_of(me, limit=PAGE, max_id=max_id)
    return render(
        request,
        "settings/likeness_uses.html",
        status=status,
        error=error,
        done=_done(request),
        uses=await _use_views(me, rows),
        max_id=max_id,
        older=rows[-1].pk if len(rows) == PAGE else None,
    )


async def uses_page(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/uses")
    if isinstance(live, Response):
        return live
    return await _uses_page(request, live.account)


async def remove_use(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/uses")
    if isinstance(live, Response):
        return live
    me = live.account
    await _form(request)
    use_id = _row_id(request)
    try:
        await svc.remove_from_clip(me, use_id, engine=_engine(request))
    except FedisoraError as exc:
        return await _uses_page(request, me, status=exc.status, error=_words(exc))
    return RedirectResponse(f"{HERE}/uses?done=removed", status_code=303)


_STAGES = {
    "request": "on asking",
    "render": "before rendering",
    "publish": "before posting",
    "grant": "on receiving a grant",
}


@dataclass(frozen=True)
class CheckView:
    id: int
    who: Person
    allowed: bool
    stage: str
    publish: bool
    reason: str
    created: str


async def checks_page(request: Request) -> Response:
    live = _logged_in(request, f"{HERE}/checks")
    if isinstance(live, Response):
        return live
    me = live.account
    max_id = _cursor(request)
    rows: list[ConsentCheck] = await svc.consent_checks(me, limit=PAGE, max_id=max_id)
    people = await _people({c.requester_id for c in rows})
    return render(
        request,
        "settings/likeness_checks.html",
        checks=[
            CheckView(
                id=c.pk,
                who=people.get(c.requester_id) or _person(None),
                allowed=c.allowed,
                stage=_STAGES.get(c.stage, c.stage),
                publish=c.publish,
                reason=c.reason,
                created=_when(c.created_at),
            )
            for c in rows
        ],
        max_id=max_id,
        older=rows[-1].pk if len(rows) == PAGE else None,
    )


# --------------------------------------------------------------------------- on a profile


async def cameo_context(viewer: Account | None, owner: Account) -> dict[str, Any]:
    """What an owner's profile page shows *viewer* about asking for their likeness: nothing
    unless the owner has a verified likeness others may ask for (``cameo`` is None), else its
    restrictions and where the viewer stands (``usable``, ``pending`` or ``""``)."""
    if viewer is None or viewer.pk == owner.pk:
        return {"cameo": None}
    likeness = await svc.get_likeness(owner)
    if (
        likeness is None
        or likeness.state != LikenessState.VERIFIED
        or likeness.audience in (Audience.NOBODY, Audience.ME)
    ):
        return {"cameo": None}
    return {
        "cameo": {
            "restrictions": likeness.restrictions,
            "standing": await svc.standing(viewer, owner),
            "approval_required": likeness.approval_required,
            "drafts_only": likeness.drafts_only,
        }
    }


async def request_cameo(request: Request) -> Response:
    """``POST /@{username}/cameo``: ask the owner of this profile for their likeness; the
    profile page again with the answer (or the refusal) in words."""
    from web.profiles import find_local, profile_page_with, refuse_unavailable

    username = str(request.path_params["username"])
    live = current_session(request)
    if live is None:
        return RedirectResponse(f"/login?next={quote('/@' + username, safe='/@')}", status_code=303)
    form = await _form(request)
    owner = await find_local(username)
    await refuse_unavailable(owner)
    accept = form.get("accept_restrictions") == "on"
    try:
        row = await svc.request_use(live.account, owner, accept_restrictions=accept)
    except FedisoraError as exc:
        return await profile_page_with(
            request, username, status=exc.status, cameo_error=_words(exc), cameo_accept=accept
        )
    return await profile_page_with(request, username, cameo_result=_answer(row, owner))


def routes() -> list[BaseRoute]:
    return [
        Route(HERE, main_page),
        Route(f"{HERE}/challenge", new_challenge, methods=["POST"]),
        Route(f"{HERE}/register", register, methods=["POST"]),
        Route(f"{HERE}/policy", policy, methods=["POST"]),
        Route(f"{HERE}/revoke", revoke, methods=["GET", "POST"]),
        Route(f"{HERE}/requests", requests_page),
        Route(f"{HERE}/requests", ask, methods=["POST"]),
        Route(f"{HERE}/requests/{{id}}/approve", approve_request, methods=["POST"]),
        Route(f"{HERE}/requests/{{id}}/reject", reject_request, methods=["POST"]),
        Route(f"{HERE}/grants", grants_page),
        Route(f"{HERE}/grants", grant_ahead, methods=["POST"]),
        Route(f"{HERE}/grants/{{id}}/revoke", revoke_grant, methods=["POST"]),
        Route(f"{HERE}/uses", uses_page),
        Route(f"{HERE}/uses/{{id}}/remove", remove_use, methods=["POST"]),
        Route(f"{HERE}/checks", checks_page),
        Route("/@{username}/cameo", request_cameo, methods=["POST"]),
    ]
