"""Web pages: home, login/logout and the admin overview (the feed is in :mod:`web.clips`;
profiles, clip pages and hashtag pages in :mod:`web.profiles`, :mod:`web.clip_pages` and
:mod:`web.tags`)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise.functions import Count

from fedisora.boundary import read_form
from fedisora.health import health
from fedisora.models import (
    Account,
    Clip,
    Delivery,
    InboxItem,
    QuoteCheck,
    RemoteMediaCheck,
    RenderJob,
    User,
    Visibility,
)
from fedisora.services.accounts import authenticate
from web.clips import clip_cards, session_account
from web.clips import routes as clip_routes
from web.pages import render

__all__ = ["routes"]


async def home(request: Request) -> Response:
    """The latest public clips made here (a logged-in user's follows are on /feed)."""
    viewer = await session_account(request)
    clips = (
        await Clip.filter(visibility=Visibility.PUBLIC, deleted_at=None, local=True)
        .order_by("-id")
        .limit(20)
    )
    return render(request, "home.html", cards=await clip_cards(viewer, clips))


async def login(request: Request) -> Response:
    error = None
    status = 200
    if request.method == "POST":
        form = await read_form(request)
        login_name = str(form.get("login", "")).strip()
        password = str(form.get("password", ""))
        if not login_name or not password:
            error, status = "Enter your e-mail (or username) and password.", 400
        else:
            account = await authenticate(login_name, password)
            if account is None:
                error, status = "That e-mail/username and password do not match.", 401
            else:
                request.session["account_id"] = account.pk
                request.session["username"] = account.username
                target = str(form.get("next") or "/")
                if not target.startswith("/") or target.startswith("//"):
                    target = "/"
                return RedirectResponse(target, status_code=303)
    return render(
        request,
        "login.html",
        status=status,
        error=error,
        next=request.query_params.get("next", "/"),
    )


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


async def _admin_user(request: Request) -> User:
    account_id = request.session.get("account_id")
    if account_id is None:
        raise HTTPException(401, "log in as an admin to see this page")
    user = await User.get_or_none(account_id=account_id)
    if user is None or not user.is_admin or user.disabled:
        raise HTTPException(403, "this page is for instance admins")
    return user


async def _state_counts(model: Any) -> list[tuple[str, int]]:
    rows = await model.annotate(n=Count("id")).group_by("state").values("state", "n")
    return sorted((r["state"], r["n"]) for r in rows)


async def admin(request: Request) -> Response:
    await _admin_user(request)
    report = await health(request.app.state.settings)
    delivery_hosts = (
        await Delivery.annotate(n=Count("id"))
        .group_by("host", "state")
        .values("host", "state", "n")
    )
    return render(
        request,
        "admin/index.html",
        health=report,
        accounts=await Account.filter(domain=None).count(),
        remote_accounts=await Account.exclude(domain=None).count(),
        clips=await Clip.filter(deleted_at=None).count(),
        work={
            "render jobs": await _state_counts(RenderJob),
            "deliveries": await _state_counts(Delivery),
            "inbox items": await _state_counts(InboxItem),
            "remote media checks": await _state_counts(RemoteMediaCheck),
            "remote quote checks": await _state_counts(QuoteCheck),
        },
        delivery_hosts=sorted(delivery_hosts, key=lambda r: (r["host"], r["state"])),
    )


def routes() -> list[BaseRoute]:
    """The web pages. They come after federation's routes in the app: ``/users/...`` URLs
    are ActivityPub's first (whose browser branches render :mod:`web` pages)."""
    from web import (
        accounts,  # deleting accounts (admin and self); it imports _admin_user
        clip_pages,
        profiles,
        tags,
    )

    return [
        Route("/", home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST", "GET"]),
        Route("/admin", admin),
        *accounts.routes(),
        *clip_routes(),
        *profiles.routes(),
        *clip_pages.routes(),
        *tags.routes(),
    ]
