"""``Idempotency-Key``: a client's retry of a post answers the status its first try made.

Render requests use the same keys (:meth:`Key.for_render`, in a namespace of their own): an
API client's retried ``POST /api/fedisora/v1/renders`` or a browser's create form sent twice
(its form token) queues one render; the row then names the render job instead of a status.

The key is stored in the transaction that stores the status (the posting services take a
:class:`Key` and call :func:`record` in theirs), never after it: a process killed right after
that commit cannot leave a status without its key, so the retry finds the key and answers the
first status instead of posting a second one. Two concurrent tries with one key both pass the
look-up, but only one can store the key: the other's transaction, status included, rolls back
(:class:`Replayed`), and its caller answers the winner's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from fedisora.errors import Conflict
from fedisora.models import IdempotencyKey, utcnow

__all__ = ["MAX_KEY", "RENDER_PREFIX", "TTL", "Key", "Replayed", "forget", "previous", "record"]

#: How long a key answers its first status; Mastodon keeps its keys for an hour too.
TTL = timedelta(hours=1)
#: Longer keys are cut to this length (the column's size).
MAX_KEY = 200
#: The namespace of render requests' keys (their rows name a render job).
RENDER_PREFIX = "render "


@dataclass(frozen=True)
class Key:
    """The key *key* sent by the account *account_id*."""

    account_id: int
    key: str

    @classmethod
    def from_header(cls, account_id: int, header: str | None) -> Key | None:
        key = (header or "").strip()[:MAX_KEY]
        return cls(account_id, key) if key else None

    @classmethod
    def for_render(cls, account_id: int, raw: str | None) -> Key | None:
        """The key of a render request (an ``Idempotency-Key`` header or a form's token)."""
        key = (raw or "").strip()[: MAX_KEY - len(RENDER_PREFIX)]
        return cls(account_id, RENDER_PREFIX + key) if key else None


class Replayed(Conflict):
    """Another request with this key stored its status first; this one's was rolled back
    (a 409 for a caller that cannot answer that status)."""

    def __init__(self, key: Key) -> None:
        super().__init__(f"Idempotency-Key {key.key!r} was used by a concurrent request")
        self.key = key


async def previous(key: Key, conn: BaseDBAsyncClient | None = None) -> int | None:
    """The id of the status (or render job) *key* made within :data:`TTL`, if it made one."""
    row = (
        await IdempotencyKey.filter(
            account_id=key.account_id, key=key.key, created_at__gte=utcnow() - TTL
        )
        .using_db(conn)
        .first()
    )
    return None if row is None else row.status_id


async def forget(key: Key) -> None:
    """Let *key* be used again (its status is gone)."""
    await IdempotencyKey.filter(account_id=key.account_id, key=key.key).delete()


async def record(conn: BaseDBAsyncClient, key: Key, status_id: int) -> None:
    """Store *key* as having made *status_id*, in *conn*: the transaction that stores the
    status. Raises :class:`Replayed` (the caller lets it roll the transaction back) when a
    live key is already there."""
    await (
        IdempotencyKey.filter(account_id=key.account_id, key=key.key, created_at__lt=utcnow() - TTL)
        .using_db(conn)
        .delete()
    )
    try:
        await IdempotencyKey.create(
            account_id=key.account_id, key=key.key, status_id=status_id, using_db=conn
        )
    except IntegrityError:
        raise Replayed(key) from None
