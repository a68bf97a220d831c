"""Local accounts: creation with keys, authentication, lookups."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise.transactions import in_transaction

from activitypub import keys
from fedisora import urls
from fedisora.errors import Conflict, FedisoraError, Invalid, NotFound
from fedisora.models import Account, ActorType, User, utcnow
from fedisora.services.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordGuard,
    hash_password_off_loop,
    user_key,
    verify_guarded,
)
from fedisora.services.text import clean_name

__all__ = [
    "LOCAL_NAME_RE",
    "LoginRefused",
    "authenticate",
    "could_name_local",
    "create_instance_actor",
    "create_local_account",
    "get_local_account",
    "new_actor_keys",
]

USERNAME_RE = re.compile(r"^[a-zA-Z0-9_]{1,30}$")
LOCAL_NAME_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
"""What could name a local account in a URL or an ``acct:`` (wider than sign-up's
:data:`USERNAME_RE`, which may change). Anything else names nobody, and is never looked up:
a NUL character in a name would be refused by PostgreSQL."""
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$|^[^@\s]{1,64}@localhost$")
RESERVED = {"admin_", "instance", "inbox", "users", "api", "oauth", "media", "well_known", "www"}
INSTANCE_ACTOR = "instance"


def could_name_local(name: str) -> bool:
    """Whether *name* could be a local account's username (see :data:`LOCAL_NAME_RE`)."""
    return LOCAL_NAME_RE.fullmatch(name) is not None


def new_actor_keys() -> dict[str, Any]:
    """An RSA-2048 key (HTTP signatures) and an Ed25519 key (object proofs), as PEM."""
    rsa_key = keys.generate_rsa_key()
    ed_key = keys.generate_ed25519_key()
    return {
        "private_key_pem": keys.private_key_to_pem(rsa_key),
        "public_key_pem": keys.public_key_to_pem(rsa_key.public_key()),
        "ed25519_private_pem": keys.private_key_to_pem(ed_key),
        "ed25519_public_multibase": keys.public_key_to_multibase(ed_key.public_key()),
    }


def _local_actor_fields(username: str) -> dict[str, Any]:
    u = urls.current()
    return {
        "uri": u.actor(username),
        "url": u.profile(username),
        "inbox_uri": u.inbox(username),
        "shared_inbox_uri": u.shared_inbox(),
        "outbox_uri": u.outbox(username),
        "followers_uri": u.followers(username),
        "following_uri": u.following(username),
        "featured_uri": u.featured(username),
        "public_key_id": u.key_id(username),
    }


def validate_new_user(username: str, email: str, password: str) -> None:
    if not USERNAME_RE.match(username):
        raise Invalid("username must be 1-30 letters, digits or underscores")
    if username.lower() in RESERVED:
        raise Invalid(f"username {username!r} is reserved")
    if not EMAIL_RE.match(email):
        raise Invalid(f"{email!r} is not a valid e-mail address")
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise Invalid(f"password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")


async def create_local_account(
    username: str,
    email: str,
    password: str,
    *,
    admin: bool = False,
    approved: bool = True,
    display_name: str = "",
    signup_reason: str = "",
    claim: Callable[[], Awaitable[object]] | None = None,
    email_confirmed: bool = True,
    then: Callable[[User], Awaitable[object]] | None = None,
) -> Account:
    """Create a local account and its login. Nothing is written if any check fails.

    *claim* runs first in the transaction that creates them (an invite's use, which is
    given back if the account cannot be created); what it raises refuses the sign-up.
    *then* runs last in it, with the new login (a confirmation mail queued)."""
    validate_new_user(username, email, password)
    email = email.strip().lower()
    if await Account.filter(username__iexact=username, domain=None).exists():
        raise Conflict(f"username {username!r} is taken")
    if await User.filter(email=email).exists():
        raise Conflict(f"e-mail {email!r} is already registered")
    keys = new_actor_keys()
    password_hash = await hash_password_off_loop(password)
    async with in_transaction():
        if claim is not None:
            await claim()
        account = await Account.create(
            username=username,
            domain=None,
            display_name=clean_name(display_name) or username,
            **_local_actor_fields(username),
            **keys,
        )
        user = await User.create(
            account=account,
            email=email,
            password_hash=password_hash,
            is_admin=admin,
            approved=approved,
            signup_reason=signup_reason,
            email_confirmed=email_confirmed,
        )
        if then is not None:
            await then(user)
    return account


async def create_instance_actor() -> Account:
    """The instance's own ``Application`` actor, which signs instance-level fetches."""
    existing = await Account.get_or_none(username=INSTANCE_ACTOR, domain=None)
    if existing is not None:
        return existing
    fields = _local_actor_fields(INSTANCE_ACTOR)
    fields["uri"] = f"{urls.current().base}/actor"
    fields["inbox_uri"] = f"{urls.current().base}/actor/inbox"
    fields["outbox_uri"] = f"{urls.current().base}/actor/outbox"
    fields["public_key_id"] = f"{urls.current().base}/actor#main-key"
    return await Account.create(
        username=INSTANCE_ACTOR,
        domain=None,
        actor_type=ActorType.APPLICATION,
        display_name=urls.current().base.split("://", 1)[1],
        locked=True,
        discoverable=False,
        indexable=False,
        **fields,
        **new_actor_keys(),
    )


class LoginRefused(FedisoraError):
    """The password is right but the account cannot log in (yet): its message says why.

    Told only to someone who gave the right password, so it reveals nothing to a guesser."""

    status = 403


PENDING_MESSAGE = (
    "Your account is waiting for approval by this server's admins: "
    "you can log in once it is approved."
)
DISABLED_MESSAGE = "This account is disabled: it cannot log in."


async def authenticate(
    login: str, password: str, *, guard: PasswordGuard, ip: str
) -> Account | None:
    """The account for an e-mail or username and password, or None (same for every failure).

    The right password of an account that may not log in raises :class:`LoginRefused`
    (waiting for approval, or disabled), so that its owner learns why.

    The check goes through *guard* (:func:`~fedisora.services.passwords.verify_guarded`):
    :class:`~fedisora.services.passwords.TooManyAttempts` once *ip* or the account named has
    no failed attempts left. A login that cannot name anyone (a control character, over-long)
    is looked up nowhere, and fails as an unknown one does.
    """
    login = login.strip()
    user = None
    if login.isprintable() and 0 < len(login) <= 254:
        user = await User.get_or_none(email=login.lower()).prefetch_related("account")
        if user is None and could_name_local(login):
            account = await Account.get_or_none(username__iexact=login, domain=None)
            if account is not None:
                user = await User.get_or_none(account=account).prefetch_related("account")
    key = user_key(user.pk) if user is not None else f"login:{login.lower()[:254]}"
    stored = user.password_hash if user is not None else None
    if not await verify_guarded(guard, password, stored, ip=ip, account=key):
        return None
    assert user is not None
    if user.disabled:
        raise LoginRefused(DISABLED_MESSAGE)
    if not user.email_confirmed:
        from fedisora.services.email_confirmation import Unconfirmed

        raise Unconfirmed()
    if not user.approved:
        raise LoginRefused(PENDING_MESSAGE)
    user.last_login_at = utcnow()
    await user.save(update_fields=["last_login_at"])
    return user.account


async def get_local_account(username: str) -> Account:
    account = await Account.get_or_none(username__iexact=username, domain=None)
    if account is None or account.suspended_at is not None:
        raise NotFound(f"no local account {username!r}")
    return account
