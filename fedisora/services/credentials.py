"""Changing a password, and everything that goes with it.

Mastodon, on a password change from the settings, ends the user's other browser sessions
(``clear_other_sessions``); when it changes a password for the user (``change_password!``, on
a reset) it ends every session and revokes all access: every OAuth token and authorization
grant (``revoke_access!``), whose streams its streaming server then closes. Here a password
change does the latter for every session but the one that made it: whoever knew the old
password, through a browser or an app's token, is out. The change, the ended sessions and
the revoked tokens and codes commit in one transaction; nothing changes if any check fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from fedisora.errors import Conflict, FedisoraError, Invalid
from fedisora.models import (
    Account,
    OAuthAccessToken,
    OAuthAuthorizationCode,
    User,
    WebSession,
    utcnow,
)
from fedisora.services.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordGuard,
    hash_password_off_loop,
    user_key,
    verify_guarded,
)

__all__ = [
    "PasswordChange",
    "WrongPassword",
    "change_password",
    "new_password_problem",
    "revoke_access",
]


class WrongPassword(FedisoraError):
    """The current password given is not the user's."""

    status = 401


@dataclass(frozen=True)
class PasswordChange:
    """What a password change ended besides the old password."""

    sessions_ended: int
    tokens_revoked: int


def new_password_problem(
    password: str, confirmation: str, *, user: User, account: Account
) -> str | None:
    """Why *password* cannot be the new password, or None: it is typed the same twice, is
    :data:`MIN_LENGTH` to :data:`MAX_LENGTH` characters long, is not only white space and is
    neither the username nor the e-mail address."""
    if password != confirmation:
        return "The new password and its confirmation do not match."
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"The new password must be {MIN_LENGTH} to {MAX_LENGTH} characters long."
    if not password.strip():
        return "The new password cannot be only spaces."
    if any(0xD800 <= ord(c) <= 0xDFFF for c in password):
        return "The new password holds characters that cannot be stored."
    if password.strip().lower() in (account.username.lower(), user.email.lower()):
        return "The new password cannot be your username or e-mail address."
    return None


async def revoke_access(account_id: int, conn: BaseDBAsyncClient) -> int:
    """Revoke every live OAuth token of *account_id* and expire its unused authorization
    codes (Mastodon's ``revoke_access!``), in the caller's transaction *conn*; returns how
    many tokens. Open streams of these tokens are closed by the streaming server, which
    re-checks them."""
    now = utcnow()
    revoked = (
        await OAuthAccessToken.filter(account_id=account_id, revoked_at=None)
        .using_db(conn)
        .update(revoked_at=now)
    )
    await (
        OAuthAuthorizationCode.filter(account_id=account_id, used_at=None, expires_at__gt=now)
        .using_db(conn)
        .update(expires_at=now)
    )
    return revoked


async def change_password(
    user: User,
    *,
    current: str,
    new: str,
    confirmation: str,
    guard: PasswordGuard,
    ip: str,
    keep_session_id: int | None = None,
) -> PasswordChange:
    """Set *user*'s password to *new* after checking *current* (through the guard, as every
    password check); end every session but *keep_session_id* and revoke every OAuth token
    and unused authorization code of the account.

    Raises :class:`Invalid` (422) for a new password :func:`new_password_problem` refuses,
    before the current one is checked (a typo there costs no attempt); :class:`WrongPassword`
    (401), or the guard's :class:`~fedisora.services.passwords.TooManyAttempts` (429);
    :class:`Conflict` (409) if the password changed meanwhile.
    """
    account = await Account.get(pk=user.account_id)
    problem = new_password_problem(new, confirmation, user=user, account=account)
    if problem is not None:
        raise Invalid(problem)
    old_hash = user.password_hash
    if not await verify_guarded(guard, current, old_hash, ip=ip, account=user_key(user.pk)):
        raise WrongPassword("The current password is not right.")
    new_hash = await hash_password_off_loop(new)
    async with in_transaction() as conn:
        changed = (
            await User.filter(pk=user.pk, password_hash=old_hash)
            .using_db(conn)
            .update(password_hash=new_hash)
        )
        if not changed:
            raise Conflict("The password was changed meanwhile; log in again.")
        sessions = WebSession.filter(user_id=user.pk)
        if keep_session_id is not None:
            sessions = sessions.exclude(pk=keep_session_id)
        ended = await sessions.using_db(conn).delete()
        revoked = await revoke_access(user.account_id, conn)
    user.password_hash = new_hash
    return PasswordChange(sessions_ended=ended, tokens_revoked=revoked)
