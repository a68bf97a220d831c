"""The per-process federation context: settings, the peer HTTP client and signing keys."""

from __future__ import annotations

from datetime import datetime

from activitypub.keys import PrivateKey, load_private_key_pem
from fedisora.config import Settings
from fedisora.federation.http import PeerClient, SignatureAuth
from fedisora.federation.keycache import KeyCache, TimedCache
from fedisora.federation.schemes import StoredSchemes
from fedisora.models import Account

__all__ = ["Federation", "close_federation", "get_federation", "set_federation"]


class Federation:
    """What federation code needs besides the database. One per process (see
    :func:`get_federation`); tests build their own with a custom transport."""

    def __init__(self, settings: Settings, client: PeerClient | None = None) -> None:
        self.settings = settings
        self.client = client or PeerClient(insecure=settings.insecure_http, memory=StoredSchemes())
        if self.client.host_guard is None:
            from fedisora.services.domain_blocks import peer_guard

            # Nothing is fetched from, or sent to, a host this instance blocks.
            self.client.host_guard = peer_guard(settings)
        self._keys: dict[int, tuple[str, PrivateKey]] = {}
        self.keys = KeyCache()  # remote actors' public keys, for inbox verification
        self.local_inboxes: TimedCache[str, bool] = TimedCache(30.0, 10_000, name="local_inboxes")
        # host -> when its back-off ends: deliveries this process claimed before the host was
        # found down wait with it (see fedisora.federation.delivery)
        self.down_hosts: dict[str, datetime] = {}

    async def instance_actor(self) -> Account:
        from fedisora.services.accounts import create_instance_actor

        return await create_instance_actor()

    def auth_for(self, account: Account) -> SignatureAuth:
        """Signing for requests made on behalf of a local *account*."""
        cached = self._keys.get(account.pk)
        if cached is None:
            if not account.local or not account.private_key_pem or not account.public_key_id:
                raise ValueError(f"{account.acct} has no signing key here")
            cached = (account.public_key_id, load_private_key_pem(account.private_key_pem))
            self._keys[account.pk] = cached
        return self.client.auth(*cached)

    async def instance_auth(self) -> SignatureAuth:
        return self.auth_for(await self.instance_actor())

    async def aclose(self) -> None:
        await self.client.aclose()


_current: Federation | None = None


def get_federation(settings: Settings) -> Federation:
    """The process's federation context for *settings* (made on first use)."""
    global _current
    # (Identity first: comparing every setting costs microseconds on each inbox POST.)
    if _current is None or (_current.settings is not settings and _current.settings != settings):
        _current = Federation(settings)
    return _current


def set_federation(federation: Federation | None) -> None:
    global _current
    _current = federation


async def close_federation() -> None:
    global _current
    if _current is not None:
        await _current.aclose()
        _current = None
