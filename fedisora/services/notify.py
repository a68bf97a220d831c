"""Notifications for local accounts, each event at most once."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from fedisora.models import Account, Mute, Notification, NotificationType
from fedisora.services import domain_blocks, events
from fedisora.services.visibility import is_blocked, limits_notification

__all__ = ["notify"]


async def notify(
    recipient: Account,
    type: NotificationType,
    *,
    dedupe_key: str,
    from_account: Account | None = None,
    **related: Any,
) -> Notification | None:
    """Notify *recipient* (if local) unless it is their own action, a block, a mute or a
    block of the sender's domain.

    *dedupe_key* names the event (e.g. ``like:<like id>``): the same key never notifies twice,
    so a duplicated delivery or a retried job cannot spam anyone.

    Called inside the :func:`~fedisora.services.events.transaction` of the change that makes
    the notification, the row and its ``notification.created`` event (which streams it)
    commit with that change, in a savepoint of it (a duplicate rolls back only that);
    called outside one, they commit together in a transaction of their own.
    """
    if not recipient.local:
        return None
    if from_account is not None:
        if from_account.pk == recipient.pk and type not in _SELF_TYPES:
            return None
        if await is_blocked(recipient, from_account):
            return None
        if await Mute.filter(account_id=recipient.pk, target_id=from_account.pk).exists():
            return None
        if await domain_blocks.user_blocks_host(recipient.pk, from_account.domain):
            return None  # the recipient blocked its domain (/api/v1/domain_blocks)
        if type not in _STAFF_TYPES and await limits_notification(recipient, from_account):
            return None  # a silenced account reaches its followers only
    key = f"{recipient.pk}:{type.value}:{dedupe_key}"
    existing = await Notification.get_or_none(dedupe_key=key)
    if existing is not None:
        return None
    try:
        async with events.transaction() as conn:
            note = await Notification.create(
                recipient=recipient,
                type=type,
                from_account=from_account,
                dedupe_key=key,
                using_db=conn,
                **related,
            )
            await events.emit(conn, "notification.created", recipient.pk, notification_id=note.pk)
    except IntegrityError:  # a concurrent duplicate won the race
        return None
    return note


# What staff are told about an account (a report by it, its sign-up, its appeal) reaches
# them whether or not it is silenced.
_STAFF_TYPES = {
    NotificationType.ADMIN_SIGN_UP,
    NotificationType.ADMIN_REPORT,
    NotificationType.ADMIN_APPEAL,
}

# Notifications about your own render or your own likeness are still worth sending.
_SELF_TYPES = {
    NotificationType.RENDER_FINISHED,
    NotificationType.RENDER_FAILED,
    NotificationType.LIKENESS_USE,
}
