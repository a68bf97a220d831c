"""Invite links: ``/invite/<code>`` signs up whatever ``FEDISORA_REGISTRATIONS`` says.

As on Mastodon, an invite skips approval and works while sign-ups are closed. Who may create
invites is ``FEDISORA_INVITES``: ``admins`` (the default) or ``users`` (every local user).
Each invite has an optional limit of uses and an optional expiry, and can be revoked by its
creator or an admin; admins' creations and revocations are written to the audit log.

A sign-up *claims* a use with one conditional UPDATE (``uses = uses + 1`` where the invite
is live and ``uses < max_uses``) in the transaction that creates the account
(:func:`fedisora.services.accounts.create_local_account`): concurrent sign-ups never take
more uses than the invite has, and a sign-up that fails gives its use back.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import F, Q

from fedisora.config import Settings
from fedisora.errors import FedisoraError, Forbidden, Invalid, NotFound
from fedisora.models import Account, Invite, User, utcnow
from fedisora.services import audit

__all__ = [
    "EXPIRY_CHOICES",
    "MAX_LIVE",
    "MAX_USES_CHOICES",
    "InviteUnusable",
    "InviteView",
    "claim",
    "create",
    "find_usable",
    "invites_of",
    "may_create",
    "revoke",
    "state",
    "views",
]

MAX_USES_CHOICES: tuple[int | None, ...] = (None, 1, 5, 10, 25, 50, 100)
"""Uses an invite may allow (None: no limit), as Mastodon's form offers them."""
EXPIRY_CHOICES: dict[int | None, str] = {
    None: "never",
    1800: "30 minutes",
    3600: "1 hour",
    21600: "6 hours",
    43200: "12 hours",
    86400: "1 day",
    604800: "1 week",
}
"""Seconds until an invite expires (None: never), with their names."""
MAX_LIVE = 100
"""Invites one account may have that are neither revoked, expired nor used up."""
CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


class InviteUnusable(FedisoraError):
    """The invite exists but can sign nobody up any more (revoked, expired or used up)."""

    status = 410


def may_create(settings: Settings, user: User) -> bool:
    """Whether *user* may create invites here (``FEDISORA_INVITES``)."""
    if user.disabled or not user.approved:
        return False
    return user.is_admin or settings.invites == "users"


def state(invite: Invite, now: datetime | None = None) -> str:
    """``active``, ``revoked``, ``expired`` or ``used up``."""
    now = now or utcnow()
    if invite.revoked_at is not None:
        return "revoked"
    if invite.expires_at is not None and invite.expires_at <= now:
        return "expired"
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return "used up"
    return "active"


_REFUSALS = {
    "revoked": "This invite was revoked: ask whoever sent it for a new one.",
    "expired": "This invite has expired: ask whoever sent it for a new one.",
    "used up": "This invite has been used as many times as it allows.",
}


def _live() -> Q:
    now = utcnow()
    return (
        Q(revoked_at=None)
        & (Q(expires_at=None) | Q(expires_at__gt=now))
        & (Q(max_uses=None) | Q(uses__lt=F("max_uses")))
    )


async def find_usable(code: str) -> Invite:
    """The live invite *code* names: :class:`NotFound` for an unknown code,
    :class:`InviteUnusable` (410) for one revoked, expired or used up, or whose creator
    can no longer act here (suspended, disabled)."""
    invite = await Invite.get_or_none(code=code) if CODE_RE.fullmatch(code) else None
    if invite is None:
        raise NotFound("This invite link is not valid: check that it was copied whole.")
    current = state(invite)
    if current != "active":
        raise InviteUnusable(_REFUSALS[current])
    creator = await Account.get_or_none(pk=invite.creator_id)
    user = await User.get_or_none(account_id=invite.creator_id)
    if creator is None or creator.suspended_at is not None or user is None or user.disabled:
        raise InviteUnusable("This invite is no longer valid.")
    return invite


async def claim(code: str) -> None:
    """Take one use of the invite *code* (inside the sign-up's transaction): one conditional
    UPDATE, so concurrent claims never exceed ``max_uses``. :class:`InviteUnusable` when no
    use is left (or it was revoked or expired meanwhile)."""
    taken = await Invite.filter(_live(), code=code).update(uses=F("uses") + 1)
    if not taken:
        invite = await Invite.get_or_none(code=code)
        current = state(invite) if invite is not None else "revoked"
        raise InviteUnusable(_REFUSALS.get(current, _REFUSALS["used up"]))


async def create(
    settings: Settings,
    creator: Account,
    user: User,
    *,
    max_uses: int | None = None,
    expires_in: int | None = None,
    autofollow: bool = False,
) -> Invite:
    """A new invite of *creator*'s (whose login is *user*). *max_uses* and *expires_in*
    (seconds) must be among :data:`MAX_USES_CHOICES` and :data:`EXPIRY_CHOICES`."""
    if not may_create(settings, user):
        raise Forbidden("Only this server's admins can create invites.")
    if max_uses not in MAX_USES_CHOICES:
        choices = ", ".join(str(n) for n in MAX_USES_CHOICES if n)
        raise Invalid(f"max_uses must be one of {choices}, or none for no limit")
    if expires_in not in EXPIRY_CHOICES:
        choices = ", ".join(str(n) for n in EXPIRY_CHOICES if n)
        raise Invalid(f"expires_in must be one of {choices} seconds, or none for never")
    live = await Invite.filter(_live(), creator_id=creator.pk).count()
    if live >= MAX_LIVE:
        raise Forbidden(f"You have {MAX_LIVE} invites in use: revoke some first.")
    invite = await Invite.create(
        code=secrets.token_urlsafe(9),
        creator=creator,
        max_uses=max_uses,
        expires_at=utcnow() + timedelta(seconds=expires_in) if expires_in else None,
        autofollow=autofollow,
    )
    if user.is_admin:
        await audit.record(creator, "invite.create", _target(invite), detail=_describe(invite))
    return invite


async def revoke(invite_id: int, by: Account, user: User) -> Invite:
    """Revoke an invite: its creator or an admin may. Revoking it again changes nothing."""
    invite = await Invite.get_or_none(pk=invite_id)
    if invite is None or (invite.creator_id != by.pk and not user.is_admin):
        raise NotFound("no such invite")
    if invite.revoked_at is None:
        changed = await Invite.filter(pk=invite.pk, revoked_at=None).update(revoked_at=utcnow())
        await invite.refresh_from_db()
        if changed and user.is_admin:
            await audit.record(by, "invite.revoke", _target(invite), detail=_describe(invite))
    return invite


def _target(invite: Invite) -> str:
    return audit.target("invite", invite.pk, invite.code)


def _describe(invite: Invite) -> str:
    uses = "no limit" if invite.max_uses is None else f"{invite.max_uses} uses"
    expiry = invite.expires_at.strftime("%Y-%m-%d %H:%M UTC") if invite.expires_at else "never"
    return f"{uses}, expires {expiry}, used {invite.uses}" + (
        ", autofollow" if invite.autofollow else ""
    )


@dataclass(frozen=True)
class InviteView:
    invite: Invite
    creator: Account | None
    state: str


async def views(invites: list[Invite]) -> list[InviteView]:
    now = utcnow()
    creators = {a.pk: a for a in await Account.filter(pk__in={i.creator_id for i in invites})}
    return [InviteView(i, creators.get(i.creator_id), state(i, now)) for i in invites]


async def invites_of(
    account: Account | None, *, before: int | None = None, limit: int = 50
) -> list[Invite]:
    """*account*'s invites (None: everyone's, for admins), newest first, *limit* of them
    below the id *before*."""
    query = Invite.all() if account is None else Invite.filter(creator_id=account.pk)
    if before is not None:
        query = query.filter(id__lt=before)
    return list(await query.order_by("-id").limit(limit))
