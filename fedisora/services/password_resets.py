"""Password reset links an admin makes and passes on (there is no e-mail here).

:func:`create_reset` gives the admin a random token (the only copy: the row keeps its
SHA-256) good for :data:`VALID_FOR`; making a new one voids the user's unused ones. The
owner opens ``/password-reset/{token}`` and sets a new password (:func:`use_reset`), under
the rules of every new password (:func:`~fedisora.services.credentials.new_password_problem`).
Using it is claimed by one conditional update, so a token works once even when two
requests race; the new password, the used token, the ended sessions and the revoked OAuth
tokens commit together, as Mastodon's reset (``change_password!``) ends every session and
revokes all access. Both steps are audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from tortoise.transactions import in_transaction

from fedisora.errors import FedisoraError, Invalid, NotFound
from fedisora.models import Account, PasswordReset, User, WebSession, utcnow
from fedisora.services import audit
from fedisora.services.credentials import new_password_problem, revoke_access
from fedisora.services.passwords import hash_password_off_loop

__all__ = [
    "VALID_FOR",
    "Reset",
    "ResetLinkExpired",
    "ResetLinkUsed",
    "create_reset",
    "reset_for",
    "use_reset",
]

VALID_FOR = timedelta(hours=24)
_TOKEN_BYTES = 32
_MAX_TOKEN = 64


class ResetLinkExpired(FedisoraError):
    status = 410


class ResetLinkUsed(FedisoraError):
    status = 410


@dataclass(frozen=True)
class Reset:
    row: PasswordReset
    user: User
    account: Account


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


async def create_reset(account: Account, *, by: audit.Actor) -> str:
    """A new reset token for the local *account* (its previous unused ones are void);
    audited as ``account.password_reset_link``. :class:`NotFound` without a login."""
    user = await User.get_or_none(account_id=account.pk)
    if user is None or not account.local:
        raise NotFound(f"@{account.acct} has no login here")
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    async with in_transaction():
        await PasswordReset.filter(user_id=user.pk, used_at=None).delete()
        await PasswordReset.create(
            token_hash=_hash(token), user_id=user.pk, expires_at=utcnow() + VALID_FOR
        )
        await audit.record(by, "account.password_reset_link", account, "valid for 24 hours")
    return token


async def reset_for(token: str) -> Reset:
    """The reset a link's *token* names, if it can still be used; else :class:`NotFound`
    (unknown, or voided by a newer link), :class:`ResetLinkUsed`, :class:`ResetLinkExpired`."""
    row = None
    if token and len(token) <= _MAX_TOKEN and token.isascii():
        row = await PasswordReset.get_or_none(token_hash=_hash(token))
    if row is None:
        raise NotFound("This reset link is not valid: ask an admin for a new one.")
    if row.used_at is not None:
        raise ResetLinkUsed("This reset link was already used: ask an admin for a new one.")
    if row.expires_at <= utcnow():
        raise ResetLinkExpired("This reset link has expired: ask an admin for a new one.")
    user = await User.get(pk=row.user_id)
    return Reset(row=row, user=user, account=await Account.get(pk=user.account_id))


async def use_reset(token: str, new: str, confirmation: str) -> Account:
    """Set the password of the reset *token* names to *new*; end every session of the user
    and revoke its OAuth tokens. :class:`Invalid` for a password the rules refuse (the link
    stays good); the errors of :func:`reset_for`. Returns the account."""
    reset = await reset_for(token)
    problem = new_password_problem(new, confirmation, user=reset.user, account=reset.account)
    if problem is not None:
        raise Invalid(problem)
    new_hash = await hash_password_off_loop(new)
    now = utcnow()
    async with in_transaction() as conn:
        claimed = (
            await PasswordReset.filter(pk=reset.row.pk, used_at=None, expires_at__gt=now)
            .using_db(conn)
            .update(used_at=now)
        )
        if not claimed:
            raise ResetLinkUsed("This reset link was already used: ask an admin for a new one.")
        await User.filter(pk=reset.user.pk).using_db(conn).update(password_hash=new_hash)
        ended = await WebSession.filter(user_id=reset.user.pk).using_db(conn).delete()
        revoked = await revoke_access(reset.account.pk, conn)
        await audit.record(
            reset.account,
            "account.password_reset",
            reset.account,
            f"{ended} sessions ended, {revoked} app tokens revoked",
        )
    return reset.account
