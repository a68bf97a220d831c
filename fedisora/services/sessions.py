"""Browser logins kept on the server: one :class:`~fedisora.models.WebSession` row each.

The browser's cookie carries a random token and nothing else; the row keeps its SHA-256,
the user, when it began and was last seen, and the browser's user agent and address, so the
user can see their sessions and end any of them (:func:`list_sessions`, :func:`end_session`,
:func:`end_other_sessions`). Logging out deletes the row; a password change ends every other
one (:mod:`fedisora.services.credentials`); suspending or disabling an account ends all of
its (:func:`end_account_sessions`), and deleting it deletes them with its login row. A
session idle for :data:`IDLE_LIMIT` is over. The web pages (:mod:`web.sessions`) and any
future API call these functions.

A **suspended** local account may still log in, as on Mastodon, but its session is
*restricted* (:func:`is_restricted`, :attr:`LiveSession.restricted`): it reaches only the
pages that say why it was suspended, its warnings and the appeal form, the export of its
clips and the logout (the web's one gate: :class:`web.sessions.SessionMiddleware`). Its
tokens stay refused (:func:`fedisora.api.http.load_token`, and no token is issued to it).
Once the suspension is lifted (an approved appeal, a moderator's unsuspension) the same
session works in full. A disabled login, an unapproved sign-up and a deleted account
(no login row) have no session at all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fedisora.models import Account, User, WebSession, utcnow

__all__ = [
    "IDLE_LIMIT",
    "TOUCH_EVERY",
    "LiveSession",
    "end_account_sessions",
    "end_other_sessions",
    "end_session",
    "end_session_by_token",
    "is_restricted",
    "list_sessions",
    "resume_session",
    "start_session",
]

IDLE_LIMIT = timedelta(days=30)
"""A session not seen for this long is over (the cookie lives as long, renewed on use)."""
TOUCH_EVERY = timedelta(minutes=5)
"""``last_seen_at`` is written at most this often, not on every request."""
_TOKEN_BYTES = 32
_MAX_TOKEN = 64  # token_urlsafe(32) is 43 characters; anything longer is not a token


@dataclass(frozen=True)
class LiveSession:
    """A session that is still valid, with its user and account."""

    session: WebSession
    user: User
    account: Account
    touched: bool
    """Whether this request refreshed ``last_seen_at`` (and so the cookie's lifetime)."""

    @property
    def restricted(self) -> bool:
        """Whether the session may only see its account's suspension (:func:`is_restricted`)."""
        return is_restricted(self.account)


def is_restricted(account: Account) -> bool:
    """Whether a login of the local *account* is restricted to its suspension: reading why,
    appealing, exporting its clips and logging out (Mastodon's suspended user). The one rule
    every page's access goes by (:class:`web.sessions.SessionMiddleware` applies it)."""
    return account.suspended_at is not None


def _key_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _usable(user: User, account: Account) -> bool:
    """Whether *user* may have a session at all (a suspended one: a restricted session)."""
    return not user.disabled and user.approved and account.domain is None


def _clip(text: str, limit: int) -> str:
    """*text* shortened to *limit* characters, without control characters or lone
    surrogates (a user agent is the client's to choose)."""
    return "".join(c for c in text if c.isprintable())[:limit]


async def start_session(user: User, *, user_agent: str, ip: str) -> tuple[WebSession, str]:
    """A new session for *user*; returns it and the token for the browser's cookie (the only
    copy: the row keeps its hash). Sessions idle past :data:`IDLE_LIMIT` are removed."""
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = utcnow()
    session = await WebSession.create(
        key_hash=_key_hash(token),
        user=user,
        last_seen_at=now,
        user_agent=_clip(user_agent, 255),
        ip=_clip(ip, 64),
    )
    await WebSession.filter(last_seen_at__lt=now - IDLE_LIMIT).delete()
    return session, token


async def resume_session(token: str, *, ip: str) -> LiveSession | None:
    """The live session of a cookie's *token*, or None (unknown, ended, idle too long, or its
    user can no longer log in: such a row is deleted). Refreshes ``last_seen_at`` and the
    address at most every :data:`TOUCH_EVERY`."""
    if not token or len(token) > _MAX_TOKEN or not token.isascii():
        return None
    session = (
        await WebSession.filter(key_hash=_key_hash(token))
        .select_related("user", "user__account")
        .first()
    )
    if session is None:
        return None
    now = utcnow()
    user = session.user
    account = user.account
    if session.last_seen_at < now - IDLE_LIMIT or not _usable(user, account):
        await WebSession.filter(pk=session.pk).delete()
        return None
    touched = False
    if session.last_seen_at < now - TOUCH_EVERY:
        touched = True
        session.last_seen_at = now
        session.ip = _clip(ip, 64)
        await WebSession.filter(pk=session.pk).update(last_seen_at=now, ip=session.ip)
    return LiveSession(session=session, user=user, account=account, touched=touched)


async def list_sessions(user: User) -> list[WebSession]:
    """*user*'s live sessions, the most recently seen first."""
    return (
        await WebSession.filter(user_id=user.pk, last_seen_at__gte=utcnow() - IDLE_LIMIT)
        .order_by("-last_seen_at", "-id")
        .all()
    )


async def end_session(user: User, session_id: int) -> bool:
    """End *user*'s session *session_id*; False if there is none (or it is someone else's)."""
    return await WebSession.filter(pk=session_id, user_id=user.pk).delete() > 0


async def end_session_by_token(token: str) -> bool:
    """End the session of a cookie's *token* (logging out)."""
    if not token or len(token) > _MAX_TOKEN:
        return False
    return await WebSession.filter(key_hash=_key_hash(token)).delete() > 0


async def end_other_sessions(user: User, keep_id: int | None) -> int:
    """End all of *user*'s sessions but *keep_id* (None: all of them); returns how many."""
    query = WebSession.filter(user_id=user.pk)
    if keep_id is not None:
        query = query.exclude(pk=keep_id)
    return await query.delete()


async def end_account_sessions(account_id: int) -> int:
    """End every session of the local account *account_id* (suspended, disabled)."""
    user_ids = await User.filter(account_id=account_id).values_list("id", flat=True)
    if not user_ids:
        return 0
    return await WebSession.filter(user_id__in=list(user_ids)).delete()
