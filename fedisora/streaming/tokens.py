"""Which of the access tokens behind open streams are still good, in batched queries.

A stream is authorised once, when it opens; what may end that authorisation later is anything
that makes :func:`fedisora.api.http.load_token` refuse the token: revocation (``/oauth/revoke``,
a refresh, a password change), deletion of the token or its application, expiry, and the
account's suspension, deletion, disabling or loss of approval. This is the same rule for many
tokens at once (the tests compare the two on every case), so a web process re-checks all its
streams' tokens in a couple of queries, whatever changed them and in whichever process.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from tortoise.expressions import Q

from fedisora.api.lookup import column
from fedisora.models import OAuthAccessToken, User, utcnow

__all__ = ["live_tokens"]

CHUNK = 500


async def live_tokens(ids: Collection[int], now: datetime | None = None) -> set[int]:
    """The tokens of *ids* that :func:`~fedisora.api.http.load_token` would still accept."""
    now = now or utcnow()
    ordered = sorted(set(ids))
    live: set[int] = set()
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        rows = await (
            OAuthAccessToken.filter(pk__in=chunk, revoked_at=None)
            .filter(Q(expires_at=None) | Q(expires_at__gt=now))
            .values_list("id", "account_id")
        )
        accounts = {int(a) for _, a in rows if a is not None}
        usable: set[int] = set()
        if accounts:
            users = User.filter(
                account_id__in=accounts,
                account__suspended_at=None,
                disabled=False,
                approved=True,
            )
            usable = {int(a) for a in await column(users, "account_id")}
        live |= {int(t) for t, a in rows if a is None or int(a) in usable}
    return live
