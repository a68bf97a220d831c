"""The browser's login session as the pages see it, and the CSRF token of their forms.

Every form that changes something is a POST carrying :func:`csrf_token` in a hidden ``csrf``
field, compared in constant time by :func:`check_csrf`.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from fedisora.api.http import client_ip
from fedisora.models import User
from fedisora.services.passwords import (
    PasswordChecksBusy,
    TooManyAttempts,
    guard_for,
    user_key,
    verify_guarded,
)

__all__ = [
    "CSRF_FIELD",
    "Refusal",
    "check_csrf",
    "csrf_matches",
    "csrf_token",
    "password_refusal",
]

CSRF_FIELD = "csrf"
_CSRF_KEY = "csrf"


def csrf_token(request: Request) -> str:
    """This session's form token (made once per session)."""
    token = request.session.get(_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = request.session[_CSRF_KEY] = secrets.token_urlsafe(24)
    return token


def csrf_matches(request: Request, sent: object) -> bool:
    """Whether *sent* is this session's form token."""
    expected = request.session.get(_CSRF_KEY)
    if not isinstance(expected, str) or not expected or not isinstance(sent, str):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace"))


def check_csrf(request: Request, form: FormData) -> None:
    """403 unless *form* carries this session's token."""
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
