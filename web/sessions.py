"""The browser's login session as the pages see it, and the CSRF token of their forms.

:class:`SessionMiddleware` replaces starlette's signed-cookie sessions with server-side ones
(:mod:`fedisora.services.sessions`): the ``fedisora_session`` cookie carries a random token,
and each request with one looks its row up. ``request.session`` stays, read-only, for the
pages: ``account_id``, ``username`` and ``session_id`` of a live session, empty otherwise. A
cookie whose session ended (logged out, password changed, account suspended...) is deleted.
Pages log in and out with :func:`begin_session` and :func:`end_browser_session`.

Every form that changes something is a POST carrying :func:`csrf_token` in a hidden ``csrf``
field, checked by :func:`check_csrf`. The token is derived from a secret only the browser's
cookies hold: the session token once logged in, else a random ``fedisora_csrf`` cookie (set
when a page first needs it), so that the login form is protected too (login CSRF). Both
cookies are HttpOnly, SameSite=Lax, and Secure unless the instance runs on plain HTTP.

A suspended account's session is restricted (:func:`fedisora.services.sessions.is_restricted`)
and the middleware is its one gate: such a browser reaches :data:`SUSPENDED_PAGE` (why, and
what it can still do), its warnings and the appeal form, the export of its clips, revoking its
likeness, the login and the logout (:data:`RESTRICTED_PATHS`); any other page is a redirect to
:data:`SUSPENDED_PAGE` (a GET) or a 403 page saying so (a form's POST), before any handler
runs. The API and the machine endpoints (:data:`_NOT_PAGES`) never read this session: for
them the browser is anonymous, and its tokens are refused as they always were.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from types import MappingProxyType
from typing import Any

from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise.exceptions import BaseORMException

from fedisora.api.http import client_ip
from fedisora.models import Account, User
from fedisora.outages import backend_down
from fedisora.services.passwords import (
    PasswordChecksBusy,
    TooManyAttempts,
    guard_for,
    user_key,
    verify_guarded,
)
from fedisora.services.sessions import (
    IDLE_LIMIT,
    LiveSession,
    end_session_by_token,
    resume_session,
    start_session,
)

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "RESTRICTED_PATHS",
    "SESSION_COOKIE",
    "SUSPENDED_PAGE",
    "Refusal",
    "SessionMiddleware",
    "begin_session",
    "check_csrf",
    "csrf_matches",
    "csrf_token",
    "current_session",
    "end_browser_session",
    "password_refusal",
]

log = logging.getLogger("fedisora.web.sessions")

SESSION_COOKIE = "fedisora_session"
CSRF_COOKIE = "fedisora_csrf"
CSRF_FIELD = "csrf"
_CSRF_COOKIE_AGE = 7 * 24 * 3600
_SKIP_PREFIXES = ("/static/", "/media/")
"""Files: no session is looked up for them (a page's videos would each cost a query)."""
_STATE = "web_session"

SUSPENDED_PAGE = "/settings/suspended"
"""Where a suspended account's browser lands: why, and what it can still do (web.moderation)."""
RESTRICTED_PATHS = re.compile(
    r"/settings/suspended|/settings/warnings(/\d{1,20}/appeal)?|/settings/export(\.zip)?"
    r"|/settings/likeness/revoke|/login|/logout"
)
"""The pages a restricted (suspended) session reaches, matched whole: its suspension, its
warnings and the appeal form, the export of its clips, taking back its likeness (consent to
a person's likeness is never held hostage by a suspension), logging in (as someone else) and
out."""
_NOT_PAGES = (
    "/api/",
    "/oauth/token",
    "/oauth/revoke",
    "/.well-known/",
    "/nodeinfo/",
    "/manifest.webmanifest",
)
"""Machine endpoints: a redirect to a page would break their clients, and none reads the
browser's session (the API goes by tokens)."""
_SUSPENDED = (
    "Your account is suspended: you can read why, appeal, download your clips and log out, "
    "nothing else."
)


@dataclass
class _BrowserState:
    """What the middleware learned of the request's cookies, and the cookies to send back."""

    secure: bool
    live: LiveSession | None = None
    token: str | None = None
    csrf_secret: str | None = None
    cookies: list[str] = field(default_factory=list)
    cookie_set: bool = False
    """A page logged in or out: the session cookie it sent wins."""

    def session_cookie(self, token: str, *, max_age: int | None = None) -> str:
        age = int(IDLE_LIMIT.total_seconds()) if max_age is None else max_age
        return _cookie(SESSION_COOKIE, token, max_age=age, secure=self.secure)

    def csrf_cookie(self, secret: str) -> str:
        return _cookie(CSRF_COOKIE, secret, max_age=_CSRF_COOKIE_AGE, secure=self.secure)


def _state(conn: HTTPConnection) -> _BrowserState:
    found = conn.scope.get("state", {}).get(_STATE)
    if not isinstance(found, _BrowserState):
        raise RuntimeError("web.sessions.SessionMiddleware is not installed")
    return found


def _cookie(name: str, value: str, *, max_age: int, secure: bool) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = "/"
    morsel["max-age"] = str(max_age)
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


class SessionMiddleware:
    """Pure ASGI middleware: looks the session up, exposes it, sends the cookies back."""

    def __init__(self, app: ASGIApp, *, https_only: bool = True) -> None:
        self.app = app
        self.secure = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        state = _BrowserState(
            secure=self.secure,
            token=conn.cookies.get(SESSION_COOKIE) or None,
            csrf_secret=conn.cookies.get(CSRF_COOKIE) or None,
        )
        stale = False
        if state.token is not None and not scope["path"].startswith(_SKIP_PREFIXES):
            try:
                state.live = await resume_session(state.token, ip=client_ip(Request(scope)))
            except Exception as exc:  # the database is down: anonymous
                if not isinstance(exc, BaseORMException | OSError) and not backend_down(exc):
                    raise
                log.warning("session lookup failed: %s", exc)
            else:
                stale = state.live is None
                if state.live is not None and state.live.touched:
                    state.cookies.append(state.session_cookie(state.token))
        refused = False
        if state.live is not None and state.live.restricted:
            if scope["path"].startswith(_NOT_PAGES):
                state.live = None  # anonymous there: the cookie stays, unused
            else:
                refused = RESTRICTED_PATHS.fullmatch(scope["path"]) is None
        scope.setdefault("state", {})[_STATE] = state
        scope["session"] = _session_view(state.live)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = list(state.cookies)
                if stale and not state.cookie_set:  # the cookie names a session that is over
                    cookies.append(state.session_cookie("", max_age=0))
                for value in cookies:
                    headers.append("set-cookie", value)
                if state.live is not None and "cache-control" not in headers:
                    headers["cache-control"] = "private"  # a logged-in page: no shared cache
            await send(message)

        if refused:
            await _restricted_answer(Request(scope, receive))(scope, receive, send_with_cookies)
            return
        await self.app(scope, receive, send_with_cookies)


def _restricted_answer(request: Request) -> Response:
    """What a suspended account's browser gets for a page it may not see: a GET goes to
    :data:`SUSPENDED_PAGE`; anything else (a form, a like, a post) is refused with a page
    that says why (403), before its handler reads the body."""
    if request.method in ("GET", "HEAD") and "x-fedisora-partial" not in request.headers:
        return RedirectResponse(SUSPENDED_PAGE, status_code=303)
    from web.pages import error_page

    return error_page(request, 403, _SUSPENDED)


def _session_view(live: LiveSession | None) -> Any:
    if live is None:
        return MappingProxyType({})
    return MappingProxyType(
        {
            "account_id": live.account.pk,
            "username": live.account.username,
            "session_id": live.session.pk,
        }
    )


def current_session(request: Request) -> LiveSession | None:
    """The request's live session (None: anonymous)."""
    return _state(request).live


async def begin_session(request: Request, account: Account) -> LiveSession:
    """Log the local *account* in on this browser: a new session (the one the browser had,
    if any, ends: a login never reuses a token), and its cookie on the response."""
    state = _state(request)
    user = await User.get(account_id=account.pk)
    if state.token is not None:
        await end_session_by_token(state.token)
    session, token = await start_session(
        user, user_agent=request.headers.get("user-agent", ""), ip=client_ip(request)
    )
    state.token = token
    state.live = LiveSession(session=session, user=user, account=account, touched=True)
    state.cookie_set = True
    state.cookies.append(state.session_cookie(token))
    request.scope["session"] = _session_view(state.live)
    return state.live


async def end_browser_session(request: Request) -> None:
    """Log this browser out: its session row ends and its cookie is deleted."""
    state = _state(request)
    if state.token is not None:
        await end_session_by_token(state.token)
    state.token = None
    state.live = None
    state.cookie_set = True
    state.cookies.append(state.session_cookie("", max_age=0))
    request.scope["session"] = _session_view(None)


def _derive(secret: str) -> str:
    return hmac.new(secret.encode(), b"fedisora csrf", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This browser's form token: derived from its session token when logged in, else from
    its ``fedisora_csrf`` cookie (made now, and sent with the response, if it has none)."""
    state = _state(request)
    if state.live is not None and state.token is not None:
        return _derive(state.token)
    if state.csrf_secret is None:
        state.csrf_secret = secrets.token_urlsafe(32)
        state.cookies.append(state.csrf_cookie(state.csrf_secret))
    return _derive(state.csrf_secret)


def csrf_matches(request: Request, sent: object) -> bool:
    """Whether *sent* is this browser's form token (never true without a cookie)."""
    state = _state(request)
    secret = state.token if state.live is not None else state.csrf_secret
    if not secret or not isinstance(sent, str):
        return False
    return hmac.compare_digest(_derive(secret).encode(), sent.encode("utf-8", "replace"))


def check_csrf(request: Request, form: FormData) -> None:
    """403 unless *form* carries this browser's token."""
    if not csrf_matches(request, form.get(CSRF_FIELD)):
        raise HTTPException(403, "The form expired or did not come from this site; try again.")


@dataclass(frozen=True)
class Refusal:
    """Why a form was refused: the message its page shows, with the status and headers."""

    message: str
    status: int = 409
    headers: dict[str, str] = field(default_factory=dict)


async def password_refusal(request: Request, user: User, password: str) -> Refusal | None:
    """None when *password* is *user*'s; else why not (wrong: 401; too many failed attempts:
    429 with Retry-After; the hasher full: 503). Checked as every password is
    (:func:`~fedisora.services.passwords.verify_guarded`)."""
    try:
        if await verify_guarded(
            guard_for(request.app.state),
            password,
            user.password_hash,
            ip=client_ip(request),
            account=user_key(user.pk),
        ):
            return None
    except (TooManyAttempts, PasswordChecksBusy) as exc:
        return Refusal(exc.message, exc.status, {"Retry-After": str(exc.retry_after)})
    return Refusal("That password is not right.", 401)
