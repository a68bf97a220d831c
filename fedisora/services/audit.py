"""The audit log: every moderation and administration action, whoever took it and however.

The services that act (suspending an account, verifying a likeness, resolving a report,
blocking a domain...) call :func:`record` with the acting account, so the API, the admin web
UI and the CLI all leave the same trace; nothing else writes the log, and nothing changes or
deletes its rows. Admins read it at ``/admin/audit`` (filtered by action, actor or target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedisora.models import Account, AuditEntry

__all__ = ["CLI", "Actor", "AuditPage", "actions", "entries", "record", "target"]

CLI = "cli"
"""The actor of an action taken with the ``fedisora`` command (on the server itself)."""

Actor = Account | str
"""Who acted: a local account (an admin or moderator), or :data:`CLI`."""

PAGE = 50
MAX_DETAIL = 2000


def _actor(by: Actor) -> tuple[int | None, str]:
    if isinstance(by, Account):
        return by.pk, f"@{by.acct}"
    return None, by


def _target(target: Account | str | None) -> tuple[str, str, str]:
    """(type, id, label) of a target: an account, or ``"type:id label"`` built by the caller."""
    if target is None:
        return "", "", ""
    if isinstance(target, Account):
        return "account", str(target.pk), f"@{target.acct}"
    kind, _, rest = target.partition(":")
    ident, _, label = rest.partition(" ")
    return kind, ident, label or ident


def target(kind: str, ident: object, label: str = "") -> str:
    """A target that is not an account, for :func:`record` (``target("domain", host)``)."""
    return f"{kind}:{ident} {label}".rstrip()


async def record(
    by: Actor, action: str, target: Account | str | None = None, detail: str = ""
) -> AuditEntry:
    """Log that *by* did *action* (``"account.suspend"``) to *target*, with *detail* (the
    reason given, the values set), now."""
    actor_id, actor_label = _actor(by)
    kind, ident, label = _target(target)
    return await AuditEntry.create(
        actor_id=actor_id,
        actor_label=actor_label[:320],
        action=action[:64],
        target_type=kind[:32],
        target_id=ident[:64],
        target_label=label[:2048],
        detail=detail[:MAX_DETAIL],
    )


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    older: int | None
    """The ``max_id`` of the next (older) page, or None at the end."""


async def entries(
    *,
    action: str = "",
    actor_id: int | None = None,
    target_type: str = "",
    target_id: str = "",
    max_id: int | None = None,
    limit: int | None = None,
) -> AuditPage:
    """The log, newest first, filtered; *action* matches a whole action or a prefix ending
    in a dot (``"account."``); *limit* defaults to :data:`PAGE`."""
    limit = limit or PAGE
    query = AuditEntry.all()
    if action.endswith("."):
        query = query.filter(action__startswith=action)
    elif action:
        query = query.filter(action=action)
    if actor_id is not None:
        query = query.filter(actor_id=actor_id)
    if target_type:
        query = query.filter(target_type=target_type)
    if target_id:
        query = query.filter(target_id=target_id)
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    rows = await query.order_by("-id").limit(limit + 1)
    older = rows[limit - 1].pk if len(rows) > limit else None
    return AuditPage(list(rows[:limit]), older)


async def actions() -> Sequence[str]:
    """The actions the log holds, for the admin page's filter."""
    rows = await AuditEntry.all().distinct().order_by("action").values_list("action", flat=True)
    return [str(r) for r in rows]
