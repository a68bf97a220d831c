"""Signing up for a local account, as the instance's registration mode allows, and the
admins' decision on sign-ups that wait for approval.

The registration mode (``FEDISORA_REGISTRATIONS``, or the value saved at ``/admin/settings``:
:mod:`.instance_settings`) is ``open`` (the account works at once), ``approval`` (a reason is
required and the account waits for an admin) or ``closed`` (refused, with the admins'
message when there is one). Where mail is configured (``FEDISORA_SMTP_URL``), the new account
also confirms its e-mail address before it can log in (:mod:`.email_confirmation`). An
invite (:mod:`.invites`) signs up whatever the mode, approved at once, as on Mastodon.
The client API (``POST /api/v1/accounts``), the web pages (``/signup``,
``/invite/<code>``) all sign up through :func:`sign_up`.

A pending account is approved (:func:`approve`: it can log in from then on) or rejected
(:func:`reject`: deleted with its login, its username and e-mail free again, as Mastodon
does) by an admin from the admin pages, the admin API or the ``fedisora approve|reject``
command, each written to the audit log. Admins are notified of each new pending sign-up
(``admin.sign_up``).
"""

from __future__ import annotations

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from fedisora.config import Settings
from fedisora.errors import Forbidden, Invalid
from fedisora.models import Account, Invite, NotificationType, OutgoingMail, User
from fedisora.services import audit, email_confirmation, invites, mail
from fedisora.services.accounts import INSTANCE_ACTOR, create_local_account
from fedisora.services.instance_settings import InstanceValues, effective

__all__ = [
    "MAX_REASON",
    "SIGNUP_RATE",
    "approve",
    "closed_message",
    "pending_accounts",
    "reject",
    "sign_up",
]

SIGNUP_RATE = "signup"
"""The limit of sign-ups per client IP (:mod:`fedisora.ratelimits`, Mastodon's 5 per 30
minutes by default). The API and the web page count against the same limit."""

MAX_REASON = 1000
"""Characters of the reason for joining (Mastodon's limit too)."""


def closed_message(values: InstanceValues) -> str:
    """What a visitor is told when sign-ups are closed (the effective settings' message)."""
    return values.closed_message


async def sign_up(
    settings: Settings,
    *,
    username: str,
    email: str,
    password: str,
    agreement: bool,
    reason: str = "",
    invite_code: str | None = None,
) -> Account:
    """Create the account, approved at once unless sign-ups need approval here.

    With *invite_code*, the invite decides instead of the mode: a live invite signs up,
    approved, and takes one of its uses (:func:`.invites.claim`, in the account's
    transaction); the new account follows its creator when the invite says so.

    Raises :class:`~fedisora.errors.Forbidden` when sign-ups are closed,
    :class:`~fedisora.errors.NotFound` or :class:`.invites.InviteUnusable` for an invite
    that does not exist or cannot be used, and :class:`~fedisora.errors.Invalid` (or
    ``Conflict``, from the account checks) for values that cannot be accepted; nothing is
    written then.
    """
    values = await effective(settings)
    invite: Invite | None = None
    if invite_code is not None:
        invite = await invites.find_usable(invite_code)
        mode = "open"
    else:
        mode = values.registrations
    if mode == "closed":
        raise Forbidden(closed_message(values))
    if not agreement:
        raise Invalid("agreement must be accepted")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise Invalid(f"reason must be at most {MAX_REASON} characters")
    if mode == "approval" and not reason:
        raise Invalid("reason is required because sign-ups need approval here")
    code = invite.code if invite is not None else ""
    confirm = email_confirmation.required(settings)
    mails: list[OutgoingMail] = []

    async def queue_mail(user: User) -> None:
        mails.append(await email_confirmation.queue_confirmation(user))

    account = await create_local_account(
        username,
        email,
        password,
        approved=mode != "approval",
        signup_reason=reason if mode == "approval" else "",
        claim=(lambda: invites.claim(code)) if invite is not None else None,
        email_confirmed=not confirm,
        then=queue_mail if confirm else None,
    )
    for row in mails:  # committed with the account: a runner may send it now
        await mail.wake(row)
    if invite is not None and invite.autofollow:
        await _follow_inviter(account, invite)
    if mode == "approval":
        await _tell_admins(account)
    return account


async def _follow_inviter(account: Account, invite: Invite) -> None:
    from fedisora.errors import FedisoraError
    from fedisora.services.follows import follow

    creator = await Account.get_or_none(pk=invite.creator_id)
    if creator is not None:
        try:
            await follow(account, creator)
        except FedisoraError:  # the inviter was suspended meanwhile: the sign-up stands
            pass


async def _tell_admins(account: Account) -> None:
    """The staff (admins and moderators, who approve sign-ups) hear of a new one."""
    from fedisora.services.notify import notify
    from fedisora.services.roles import active_staff

    for admin in await active_staff():
        await notify(
            admin,
            NotificationType.ADMIN_SIGN_UP,
            dedupe_key=f"signup:{account.pk}",
            from_account=account,
        )


def pending_accounts() -> QuerySet[Account]:
    """The local accounts waiting for approval (the caller orders them)."""
    return Account.filter(domain=None, suspended_at=None, user__approved=False).exclude(
        username=INSTANCE_ACTOR
    )


async def _pending_user(account: Account) -> User:
    user = await User.get_or_none(account_id=account.pk) if account.local else None
    if user is None or account.suspended_at is not None:
        raise Forbidden(f"@{account.acct} has no sign-up waiting for approval")
    if user.approved:
        raise Forbidden(f"@{account.acct} is already approved: it is not waiting for approval")
    return user


async def approve(account: Account, by: audit.Actor) -> User:
    """Approve *account*'s sign-up: it can log in from now on. Forbidden (403) when it is
    not waiting for approval (approved already, remote, suspended, deleted)."""
    user = await _pending_user(account)
    async with in_transaction():
        if not await User.filter(pk=user.pk, approved=False).update(approved=True):
            raise Forbidden(f"@{account.acct} is already approved: it is not waiting for approval")
        await audit.record(by, "account.approve", account, detail=_reason(user))
    user.approved = True
    return user


async def reject(account: Account, by: audit.Actor) -> None:
    """Reject *account*'s sign-up: the account and its login are deleted (its username and
    e-mail can sign up again), as Mastodon does. Forbidden (403) when it is not waiting
    for approval; an approved account is suspended or deleted instead."""
    user = await _pending_user(account)
    async with in_transaction():
        # The login goes first, only while still pending: of a concurrent approve and
        # reject, one wins.
        if not await User.filter(pk=user.pk, approved=False).delete():
            raise Forbidden(f"@{account.acct} is already approved: it is not waiting for approval")
        await audit.record(by, "account.reject", account, detail=_reason(user))
        await Account.filter(pk=account.pk).delete()


def _reason(user: User) -> str:
    return f"reason given: {user.signup_reason}" if user.signup_reason else ""
