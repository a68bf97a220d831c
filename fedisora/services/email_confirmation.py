"""Confirming a new account's e-mail address, on an instance that sends mail.

Only with ``FEDISORA_SMTP_URL`` set (:func:`required`): a sign-up (web or API, through
:func:`fedisora.services.signup.sign_up`) stores the user unconfirmed and queues a
confirmation mail (:mod:`fedisora.services.mail`) in the account's transaction. The mail
carries a link ``/auth/confirm/<token>``; the token is made when the mail is sent
(:func:`issue`), kept only as its SHA-256, works once and expires after :data:`TOKEN_TTL`.
Until it is followed, logging in (the web form, the OAuth password grant) is refused with
:class:`Unconfirmed`, whose owner can ask for another mail (:func:`resend`, rate-limited).
Following the link (:func:`confirm`) logs nobody in. Accounts made by the CLI or an admin,
and those from before mail was configured, are confirmed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from tortoise.transactions import in_transaction

from fedisora import ratelimits
from fedisora.config import Settings
from fedisora.errors import FedisoraError, Forbidden, NotFound
from fedisora.models import EmailConfirmation, OutgoingMail, User, utcnow
from fedisora.services.accounts import LoginRefused

__all__ = [
    "CONFIRM_RATE",
    "TOKEN_TTL",
    "UNCONFIRMED_MESSAGE",
    "LinkUnusable",
    "Unconfirmed",
    "confirm",
    "issue",
    "queue_confirmation",
    "required",
    "resend",
    "resend_to",
    "token_hash",
]

TOKEN_TTL = timedelta(hours=24)
CONFIRM_RATE = "mail"
"""The limit of "send the mail again" requests per client IP (:mod:`fedisora.ratelimits`)."""
KIND = "confirm"
"""The :class:`~fedisora.models.OutgoingMail` kind of a confirmation mail."""

UNCONFIRMED_MESSAGE = (
    "Your e-mail address is not confirmed yet: follow the link in the mail we sent you "
    "(or ask for a new one)."
)


class Unconfirmed(LoginRefused):
    """The right password of an account whose e-mail address is not confirmed yet."""

    def __init__(self) -> None:
        super().__init__(UNCONFIRMED_MESSAGE)


class LinkUnusable(FedisoraError):
    """A confirmation link that was used already or expired (410)."""

    status = 410


def required(settings: Settings) -> bool:
    """Whether sign-ups confirm their e-mail address here: only where mail can be sent."""
    return bool(settings.smtp_url)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def queue_confirmation(user: User) -> OutgoingMail:
    """Queue a confirmation mail to *user* (in the caller's transaction, if any). The caller
    wakes a runner after its commit (:func:`fedisora.services.mail.wake`)."""
    from fedisora.services.mail import queue

    return await queue(KIND, user.email, user_id=user.pk)


async def issue(user_id: int) -> str:
    """A new confirmation token of *user_id* (the link's last part); only its hash is
    stored. Made as the mail is sent (:mod:`fedisora.services.mail`)."""
    raw = secrets.token_urlsafe(32)
    await EmailConfirmation.create(
        user_id=user_id, token_hash=token_hash(raw), expires_at=utcnow() + TOKEN_TTL
    )
    return raw


async def confirm(raw: str) -> User:
    """Confirm the address of the link's user (the link then works no more).

    :class:`~fedisora.errors.NotFound` for a token that never was, :class:`LinkUnusable`
    for one used already or expired; each message says what to do."""
    row = await EmailConfirmation.get_or_none(token_hash=token_hash(raw.strip()))
    if row is None:
        raise NotFound(
            "This confirmation link is not valid: copy the whole link from the mail, or ask "
            "for a new one from the login page."
        )
    if row.used_at is not None:
        raise LinkUnusable("This confirmation link was used already: you can log in.")
    now = utcnow()
    if row.expires_at <= now:
        raise LinkUnusable("This confirmation link expired: log in to ask for a new one by mail.")
    async with in_transaction():
        if not await EmailConfirmation.filter(pk=row.pk, used_at=None).update(used_at=now):
            raise LinkUnusable("This confirmation link was used already: you can log in.")
        await User.filter(pk=row.user_id).update(email_confirmed=True)
    return await User.get(pk=row.user_id).prefetch_related("account")


async def resend(
    settings: Settings, login: str, *, ip: str, store: ratelimits.Store | None = None
) -> None:
    """Send the confirmation mail again to the unconfirmed account named by *login* (its
    e-mail or username), unless one is waiting to be sent already. The same answer for
    every *login* (it reveals nothing of who has an account); rate-limited per client IP
    (:data:`CONFIRM_RATE`: :class:`~fedisora.errors.RateLimited`)."""
    await ratelimits.enforce(CONFIRM_RATE, f"ip:{ip}", store)
    if not required(settings):
        return
    login = login.strip()
    if not login.isprintable() or not 0 < len(login) <= 254:
        return
    user = await User.get_or_none(email=login.lower())
    if user is None:
        user = await User.get_or_none(account__username__iexact=login, account__domain__isnull=True)
    if user is not None:
        await _send_again(user)


async def resend_to(
    settings: Settings, user: User, *, ip: str, store: ratelimits.Store | None = None
) -> None:
    """:func:`resend` for a known *user* (the client API's, with the user's token).
    :class:`~fedisora.errors.Forbidden` when the address is confirmed already."""
    await ratelimits.enforce(CONFIRM_RATE, f"ip:{ip}", store)
    if user.email_confirmed or not required(settings):
        raise Forbidden("This method is only available while the e-mail is awaiting confirmation")
    await _send_again(user)


async def _send_again(user: User) -> None:
    if user.email_confirmed:
        return
    if await OutgoingMail.filter(user_id=user.pk, kind=KIND, state="pending").exists():
        return  # one is on its way (or being retried): no second mail
    from fedisora.services.mail import wake

    await wake(await queue_confirmation(user))
