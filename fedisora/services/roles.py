"""Who may do what: the instance's roles, checked here and nowhere else.

Three roles, as Mastodon's default ones: **admin** (everything), **moderator** (reports,
accounts and the likeness verification queue: the staff's daily work) and **user**. The
instance's settings (domain blocks, the prompt policy, invites, the audit log and any
future settings page) are the admins' alone. The web pages, the Mastodon API and the
command line all ask :func:`require` (or :func:`is_staff`, :func:`is_admin`); the role is
changed by :func:`set_role` only, which never leaves the instance without an admin and
writes the audit log.

A moderator acts on users and remote accounts, never on another staff member
(:func:`may_moderate`), as Mastodon's role ranks keep a moderator off an admin.
"""

from __future__ import annotations

from typing import Literal

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.models import Account, User
from fedisora.services import audit

__all__ = [
    "ADMIN",
    "MODERATOR",
    "PERMISSIONS",
    "ROLES",
    "USER",
    "Level",
    "active_staff",
    "check_may_moderate",
    "is_admin",
    "is_staff",
    "may_moderate",
    "require",
    "role_of",
    "set_role",
    "staff_accounts",
]

ADMIN = "admin"
MODERATOR = "moderator"
USER = "user"
ROLES = (ADMIN, MODERATOR, USER)

Level = Literal["admin", "staff"]

# Mastodon's UserRole::FLAGS (app/models/user_role.rb), the bits of a Role's ``permissions``.
_ADMINISTRATOR = 1 << 0
_VIEW_DASHBOARD = 1 << 3
_MANAGE_REPORTS = 1 << 4
_MANAGE_USERS = 1 << 10

PERMISSIONS = {
    ADMIN: _ADMINISTRATOR,
    # what a moderator here may do: the overview, reports, accounts (and sign-ups)
    MODERATOR: _VIEW_DASHBOARD | _MANAGE_REPORTS | _MANAGE_USERS,
    USER: 0,
}
"""The ``permissions`` bitmask of each role in Mastodon's Role entity."""

_REFUSED = "This action is not allowed"
_STAFF_TARGET = "Moderators cannot act on a moderator's or an admin's account"


def is_admin(user: User | None) -> bool:
    return user is not None and user.is_admin


def is_staff(user: User | None) -> bool:
    """An admin or a moderator."""
    return user is not None and (user.is_admin or user.is_moderator)


def role_of(user: User | None) -> str:
    """:data:`ADMIN`, :data:`MODERATOR` or :data:`USER` (also for no login at all)."""
    if is_admin(user):
        return ADMIN
    return MODERATOR if is_staff(user) else USER


def require(user: User | None, level: Level, message: str = _REFUSED) -> User:
    """*user*, if it may do what *level* needs (``"admin"``: admins only; ``"staff"``: admins
    and moderators); else :class:`~fedisora.errors.Forbidden` with *message* (Mastodon's
    ``This action is not allowed`` by default)."""
    allowed = is_admin(user) if level == "admin" else is_staff(user)
    if not allowed or user is None:
        raise Forbidden(message)
    return user


def staff_accounts() -> Q:
    """The filter of :class:`Account` rows whose login is an admin's or a moderator's."""
    return Q(user__is_admin=True) | Q(user__is_moderator=True)


async def active_staff() -> list[Account]:
    """The staff who can act now (local, not suspended, login not disabled): those told of
    new sign-ups and new reports."""
    return list(
        await Account.filter(
            staff_accounts(), domain=None, suspended_at=None, user__disabled=False
        ).distinct()
    )


def may_moderate(by: User, target: User | None) -> bool:
    """Whether *by* (staff) may act on the account of *target* (None: a remote account, or
    a local one whose login was deleted): an admin on anyone, a moderator on non-staff."""
    return is_admin(by) or (is_staff(by) and not is_staff(target))


async def check_may_moderate(by: Account, target: Account) -> None:
    """:class:`Forbidden` if *by* is not an admin and *target*'s login is staff's: what a
    service acting on an account for a moderator (a report's suspension) checks."""
    users = {u.account_id: u for u in await User.filter(account_id__in=[by.pk, target.pk])}
    if not is_admin(users.get(by.pk)) and is_staff(users.get(target.pk)):
        raise Forbidden(_STAFF_TARGET)


async def set_role(account: Account, role: str, *, by: audit.Actor) -> tuple[str, str]:
    """Make the local *account* an admin, a moderator or a plain user; returns (old, new).

    Refused: an unknown role (:class:`Invalid`), an account without a login (a remote or
    deleted one: :class:`NotFound`), and taking the admin role from the last admin
    (:class:`Forbidden`: someone must be able to run the instance). Only an admin (or the
    command line) may call this; the change is audited as ``account.role``."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    async with in_transaction() as conn:
        user = await User.filter(account_id=account.pk).using_db(conn).select_for_update().first()
        if user is None or not account.local:
            raise NotFound(f"@{account.acct} has no login here: only local accounts have roles")
        old = role_of(user)
        if old == role:
            return old, role
        if old == ADMIN:
            # the admins' rows locked: two admins demoting each other at once leave one
            admins = await User.filter(is_admin=True).using_db(conn).select_for_update()
            if not [u for u in admins if u.pk != user.pk and not u.disabled]:
                raise Forbidden(
                    f"@{account.username} is the instance's last admin: "
                    "make someone else admin first"
                )
        await (
            User.filter(pk=user.pk)
            .using_db(conn)
            .update(is_admin=role == ADMIN, is_moderator=role == MODERATOR)
        )
        await audit.record(by, "account.role", account, f"{old} -> {role}")
    return old, role
