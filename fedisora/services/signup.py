"""Signing up for a local account, as the instance's registration mode allows.

``FEDISORA_REGISTRATIONS`` is ``open`` (the account works at once), ``approval`` (a reason is
required and the account waits for an admin) or ``closed`` (refused, with the admin's
``FEDISORA_REGISTRATIONS_MESSAGE`` when there is one). The client API (``POST
/api/v1/accounts``) and the web page (``/signup``) both sign up through :func:`sign_up`.
"""

from __future__ import annotations

from fedisora.config import Settings
from fedisora.errors import Forbidden, Invalid
from fedisora.models import Account
from fedisora.services.accounts import create_local_account

__all__ = ["MAX_REASON", "SIGNUP_RATE", "closed_message", "sign_up"]

SIGNUP_RATE = "signup"
"""The limit of sign-ups per client IP (:mod:`fedisora.ratelimits`, Mastodon's 5 per 30
minutes by default). The API and the web page count against the same limit."""

MAX_REASON = 1000
"""Characters of the reason for joining (Mastodon's limit too)."""


def closed_message(settings: Settings) -> str:
    """What a visitor is told when sign-ups are closed."""
    return settings.registrations_message or "Registrations are closed on this server."


async def sign_up(
    settings: Settings,
    *,
    username: str,
    email: str,
    password: str,
    agreement: bool,
    reason: str = "",
) -> Account:
    """Create the account, approved at once unless sign-ups need approval here.

    Raises :class:`~fedisora.errors.Forbidden` when sign-ups are closed and
    :class:`~fedisora.errors.Invalid` (or ``Conflict``, from the account checks) for values
    that cannot be accepted; nothing is written then.
    """
    mode = settings.registrations
    if mode == "closed":
        raise Forbidden(closed_message(settings))
    if not agreement:
        raise Invalid("agreement must be accepted")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise Invalid(f"reason must be at most {MAX_REASON} characters")
    if mode == "approval" and not reason:
        raise Invalid("reason is required because sign-ups need approval here")
    return await create_local_account(
        username,
        email,
        password,
        approved=mode != "approval",
        signup_reason=reason if mode == "approval" else "",
    )
