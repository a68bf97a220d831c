"""Web pages: home, login/logout and the admin overview (the feed is in :mod:`web.clips`;
profiles, clip pages and hashtag pages in :mod:`web.profiles`, :mod:`web.clip_pages` and
:mod:`web.tags`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from tortoise.functions import Count

from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.config import Settings
from fedisora.errors import Forbidden
from fedisora.federation.delivery_health import delivery_health
from fedisora.health import health
from fedisora.models import Account, Clip, Delivery, Likeness, LikenessState, User, utcnow
from fedisora.negotiation import ObjectPages
from fedisora.services import roles
from fedisora.services.accounts import INSTANCE_ACTOR, LoginRefused, authenticate
from fedisora.services.email_confirmation import Unconfirmed
from fedisora.services.passwords import PasswordChecksBusy, TooManyAttempts, guard_for
from fedisora.services.retention import tallies
from fedisora.services.storage import media_disk, media_space, work_space
from render import models
from render.queue import QUEUE as RENDER_QUEUE
from render.stats import daily_outcomes, queue_depth
from web.clips import routes as clip_routes
from web.pages import render
from web.sessions import (
    begin_session,
    check_csrf,
    csrf_matches,
    csrf_token,
    current_session,
    end_browser_session,
)

__all__ = ["STATIC_DIR", "routes"]

STATIC_DIR = Path(__file__).parent / "static"
"""The pages' style sheet (and any script): files only, never inline (see web/security.py)."""

ADMIN_HOSTS = 50
"""Rows of deliveries by host on the admin overview (the busiest)."""


def _local_target(raw: object) -> str:
    """Where to go after logging in: a path on this site, else the home page."""
    target = raw if isinstance(raw, str) else "/"
    if not target.startswith("/") or target[1:2] in ("/", "\\") or not target.isprintable():
        return "/"
    return target


async def login(request: Request) -> Response:
    """The login form. Its POST carries the form's CSRF token (no site can log a visitor in
    to an account of its choosing) and counts against the password guard."""
    error = None
    status = 200
    unconfirmed = False
    login_name = ""
    headers: dict[str, str] = {}
    target = _local_target(request.query_params.get("next", "/"))
    if request.method == "POST":
        form = await read_form(request)
        target = _local_target(form.get("next") or "/")
        login_name = str(form.get("login", "")).strip()
        password = str(form.get("password", ""))
        if not csrf_matches(request, form.get("csrf")):
            error, status = "The form expired; log in again.", 403
        elif not login_name or not password:
            error, status = "Enter your e-mail (or username) and password.", 400
        else:
            try:
                account = await authenticate(
                    login_name,
                    password,
                    guard=guard_for(request.app.state),
                    ip=client_ip(request),
                )
            except (TooManyAttempts, PasswordChecksBusy) as exc:
                error, status = exc.message, exc.status
                headers["Retry-After"] = str(exc.retry_after)
            except LoginRefused as exc:
                error, status = str(exc), exc.status
                unconfirmed = isinstance(exc, Unconfirmed)
            else:
                if account is None:
                    error, status = "That e-mail/username and password do not match.", 401
                else:
                    await begin_session(request, account)
                    return RedirectResponse(target, status_code=303)
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        unconfirmed=unconfirmed,
        login_name=login_name,
        next=target,
        csrf=csrf_token(request),
    )
    response.headers.update(headers)
    return response


async def logout(request: Request) -> Response:
    """Log out on a POST carrying the form's CSRF token; a GET (a link, a prefetch, another
    site's image) only shows the button that does it."""
    if request.method == "GET":
        if current_session(request) is None:
            return RedirectResponse("/", status_code=303)
        return render(request, "logout.html")
    check_csrf(request, await read_form(request))
    await end_browser_session(request)
    return RedirectResponse("/", status_code=303)


async def _admin_user(request: Request) -> User:
    """The admin of a page for admins only (the instance's settings): 401 when logged out,
    403 for anyone else, moderators too (:mod:`fedisora.services.roles`)."""
    live = current_session(request)
    if live is None:
        raise HTTPException(401, "log in as an admin to see this page")
    try:
        return roles.require(live.user, "admin")
    except Forbidden:
        raise HTTPException(403, "this page is for instance admins") from None


async def _staff_user(request: Request) -> User:
    """The admin or moderator of a staff page (reports, accounts, the likeness queue, the
    overview): 401 when logged out, 403 for anyone else."""
    live = current_session(request)
    if live is None:
        raise HTTPException(401, "log in as a moderator or admin to see this page")
    try:
        return roles.require(live.user, "staff")
    except Forbidden:
        raise HTTPException(403, "this page is for the instance's moderators and admins") from None


async def staff_form(request: Request, staff: User) -> tuple[FormData, Account]:
    """The preamble of every admin page's POST after its role check (*staff*, from
    :func:`_admin_user` or :func:`_staff_user`) and the lookups of the rows its path names
    (their 401, 403 and 404 answer first, as they always have): the form, read within the
    input bounds, its CSRF token checked (403), and the acting account, the actor the
    services write to the audit log."""
    form = await read_form(request)
    check_csrf(request, form)
    return form, await Account.get(pk=staff.account_id)


# Names the overview has always used; other work tables are named after their table.
_WORK_LABELS = {"quote_checks": "remote quote checks", "chores": "housekeeping chores"}


def _size(n: int | None) -> str:
    """Bytes for people: 512 B, 1.5 MB, 2.0 GB."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns


def _age(since: datetime | None, now: datetime | None = None) -> str:
    """How long ago *since* was, for people: 45 s, 12 min, 3.5 h, 2.0 days."""
    if since is None:
        return "n/a"
    seconds = max(0.0, ((now or utcnow()) - since).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


async def admin(request: Request) -> Response:
    await _staff_user(request)
    report = await health(request.app.state.settings)
    # The busiest (host, state) pairs only: an instance may know thousands of hosts.
    hosts: dict[tuple[str, str], int] = {}
    for r in (
        await Delivery.annotate(n=Count("id"))
        .group_by("host", "state")
        .order_by("-n", "host")
        .limit(ADMIN_HOSTS)
        .values("host", "state", "n")
    ):
        hosts[(r["host"], r["state"])] = int(r["n"])
    for (state, host), n in (await tallies(str(Delivery._meta.db_table))).items():
        hosts[(host, state)] = hosts.get((host, state), 0) + n  # deleted by retention
    work = await work_space()
    settings = request.app.state.settings
    outcomes = await daily_outcomes()
    return render(
        request,
        "admin/index.html",
        health=report,
        # the instance actor (which signs this server's requests) is nobody's account
        accounts=await Account.filter(domain=None).exclude(username=INSTANCE_ACTOR).count(),
        remote_accounts=await Account.exclude(domain=None).count(),
        clips=await Clip.filter(deleted_at=None).count(),
        likenesses_pending=await Likeness.filter(
            state=LikenessState.PENDING, account__domain__isnull=True
        ).count(),
        work=[(_WORK_LABELS.get(w.table, w.label), w) for w in work],
        media=await media_space(),
        size=_size,
        age=_age,
        delivery_hosts=[
            {"host": h, "state": s, "n": n}
            for (h, s), n in sorted(hosts.items(), key=lambda kv: (-kv[1], kv[0]))[:ADMIN_HOSTS]
        ],
        render_days=outcomes,
        render_days_max=max([1, *(d.done + d.failed for d in outcomes)]),
        render_queue=await queue_depth(),
        deliveries=await delivery_health(),
        render_workers=[
            {**w, **_worker_summary(w.get("report"))}
            for w in report["workers"].get("workers", [])
            if RENDER_QUEUE in w["queues"]
        ],
        render_model=_model_label(await models.effective(settings)),
        disk=await media_disk(settings.media_root),
        now=utcnow(),
    )


def _worker_summary(report: object) -> dict[str, str]:
    """A render worker's heartbeat report (:mod:`render.worker_report`) as the overview
    shows it: ``model`` ("wan2.1 (wan)") and ``device`` ("CPU", "NVIDIA L4: GPU memory 3.2 GB
    used of 24.0 GB"); "not reported" for a worker that sent none (an older version)."""
    if not isinstance(report, dict):
        return {"model": "not reported", "device": "not reported"}
    model = report.get("model")
    if isinstance(model, dict):
        label = f"{model.get('name', '?')} ({model.get('family', '?')})"
        if not model.get("loaded"):
            label += ", not loaded yet (it loads for the first render)"
    else:
        label = "not reported"
    gpu = report.get("gpu")
    if report.get("device") == "cuda" and isinstance(gpu, dict):
        device = str(gpu.get("name") or "GPU")
        used, total = gpu.get("memory_used"), gpu.get("memory_total")
        if isinstance(used, int) and isinstance(total, int):
            device += f": GPU memory {_size(used)} used of {_size(total)} (the whole device)"
        else:
            device += ": GPU memory could not be read"
    elif report.get("device") == "cpu":
        device = "CPU (no GPU)"
    else:
        device = "not reported"
    return {"model": label, "device": device}


def _model_label(settings: Settings) -> str:
    """The configured render model as the admin reads it: its directory's name (never the
    server path, as in a clip's provenance) and family."""
    from render.catalogue import is_tiny
    from render.errors import ModelLoadError
    from render.service import model_family

    model = settings.render_model
    name = model if is_tiny(model) else Path(model).name
    try:
        return f"{name} ({model_family(settings)})"
    except ModelLoadError:
        return f"{name} (unreadable: see the worker's log)"


def object_pages() -> ObjectPages:
    """The pages that show ActivityPub objects to browsers, for the federation routes."""
    from web.clip_pages import clip_page
    from web.comment_pages import comment_page
    from web.profiles import instance_actor_page, profile_page

    return ObjectPages(
        profile=profile_page,
        instance_actor=instance_actor_page,
        clip=clip_page,
        comment=comment_page,
    )


def routes() -> list[BaseRoute]:
    """The web pages. They come after federation's routes in the app: ``/users/...`` URLs
    are ActivityPub's first (whose browser branches render :mod:`web` pages)."""
    from web import (
        accounts,  # deleting accounts (admin and self); it imports _admin_user
        admin_audit,  # the audit log; it imports _admin_user
        admin_domains,  # domain blocks and allows; it imports _admin_user
        admin_federation,  # delivery health per host; it imports _admin_user
        admin_models,  # render models: pull, use; it imports _admin_user
        admin_optouts,  # the opt-out registry; it imports _admin_user
        admin_policy,  # the prompt policy's lists; it imports _admin_user
        admin_provenance,  # the signing root, its history and replacing it; imports _admin_user
        admin_relays,  # the ActivityPub relays subscribed to; it imports _admin_user
        admin_renders,  # the render queue and quota overrides; it imports _admin_user
        admin_reports,  # reports; it imports _admin_user
        admin_settings,  # the instance settings; it imports _admin_user
        clip_pages,
        confirm,  # e-mail confirmation links and the form asking for another mail
        create,  # the create form, a render's page, the drafts
        feed,
        for_you,  # For You's reports, "Not interested", /settings/for-you
        invites,  # invite links (settings and admin); it imports _admin_user
        likeness_settings,  # one's own likeness: /settings/likeness, "Request cameo"
        likenesses,  # likeness verification and the consent audit; it imports _admin_user
        moderation,  # warnings and appeals, the rules; it imports _admin_user
        notifications,
        optout,  # the public opt-out form
        profiles,
        provenance,  # the public lookup of a copy's origin
        reports,  # reporting a clip, a comment or an account
        search,
        settings,
        signup,
        tags,
    )

    return [
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/", feed.home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST", "GET"]),
        Route("/admin", admin),
        *accounts.routes(),
        *admin_audit.routes(),
        *admin_policy.routes(),
        *admin_optouts.routes(),
        *admin_reports.routes(),
        *moderation.routes(),
        *admin_domains.routes(),
        *admin_federation.routes(),
        *admin_renders.routes(),
        *admin_models.routes(),
        *admin_settings.routes(),
        *admin_provenance.routes(),
        *admin_relays.routes(),
        *signup.routes(),
        *confirm.routes(),
        *invites.routes(),
        *likenesses.routes(),
        *likeness_settings.routes(),  # before the clip pages' /@{username}/{clip_id}
        *settings.routes(),
        *clip_routes(),
        *feed.routes(),
        *for_you.routes(),
        *profiles.routes(),
        *clip_pages.routes(),
        *tags.routes(),
        *create.routes(),
        *notifications.routes(),
        *search.routes(),
        *reports.routes(),
        *optout.routes(),
        *provenance.routes(),
    ]
