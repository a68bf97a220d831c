"""The apps a user authorized to act for them, and taking that access back.

What Mastodon's ``/oauth/authorized_applications`` page shows: each app that holds a live
token for the account, with the scopes it holds and when it was authorized and last used.
Revoking an app revokes every token it holds for the account and expires its unused
authorization codes; the streaming server closes the app's open streams, which it
re-checks against the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fedisora.errors import NotFound
from fedisora.models import (
    Account,
    OAuthAccessToken,
    OAuthApplication,
    OAuthAuthorizationCode,
    utcnow,
)

__all__ = ["AuthorizedApp", "authorized_apps", "revoke_app"]


@dataclass(frozen=True)
class AuthorizedApp:
    app_id: int
    name: str
    website: str | None
    scopes: tuple[str, ...]
    authorized_at: datetime
    last_used_at: datetime | None


async def authorized_apps(account: Account) -> list[AuthorizedApp]:
    """The apps with a live token for *account*, the most recently authorized first."""
    tokens = (
        await OAuthAccessToken.filter(account_id=account.pk, revoked_at=None)
        .filter(Q(expires_at=None) | Q(expires_at__gt=utcnow()))
        .order_by("created_at")
    )
    by_app: dict[int, list[OAuthAccessToken]] = {}
    for token in tokens:
        by_app.setdefault(token.application_id, []).append(token)
    apps = {a.pk: a for a in await OAuthApplication.filter(pk__in=list(by_app))}
    found = []
    for app_id, held in by_app.items():
        app = apps.get(app_id)
        if app is None:
            continue
        scopes = sorted({scope for t in held for scope in t.scopes.split()})
        used = [t.last_used_at for t in held if t.last_used_at is not None]
        found.append(
            AuthorizedApp(
                app_id=app_id,
                name=app.name,
                website=app.website,
                scopes=tuple(scopes),
                authorized_at=min(t.created_at for t in held),
                last_used_at=max(used) if used else None,
            )
        )
    found.sort(key=lambda a: a.authorized_at, reverse=True)
    return found


async def revoke_app(account: Account, app_id: int) -> int:
    """Revoke every token app *app_id* holds for *account*; how many. An app that holds
    none is a :class:`~fedisora.errors.NotFound` (nothing to revoke, or not the user's)."""
    now = utcnow()
    async with in_transaction() as conn:
        revoked = (
            await OAuthAccessToken.filter(
                account_id=account.pk, application_id=app_id, revoked_at=None
            )
            .using_db(conn)
            .update(revoked_at=now)
        )
        if not revoked:
            raise NotFound("You have not authorized that app, or its access is revoked already.")
        await (
            OAuthAuthorizationCode.filter(
                account_id=account.pk, application_id=app_id, used_at=None, expires_at__gt=now
            )
            .using_db(conn)
            .update(expires_at=now)
        )
    return revoked
