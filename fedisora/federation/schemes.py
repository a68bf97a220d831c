"""The signature scheme each peer host accepted, kept in the database (survives restarts)."""

from __future__ import annotations

import logging

from activitypub.signatures import Scheme
from fedisora.federation.http import SchemeMemory
from fedisora.models import PeerSignatureScheme

__all__ = ["StoredSchemes"]

log = logging.getLogger("fedisora.federation")

_SCHEMES: tuple[Scheme, ...] = ("rfc9421", "cavage")


class StoredSchemes(SchemeMemory):
    """A :class:`SchemeMemory` backed by the ``peer_signature_schemes`` table: a host's row is
    read once per process (on its first signed request), written when the scheme changes."""

    def __init__(self) -> None:
        super().__init__()
        self._loaded: set[str] = set()

    async def load(self, host: str) -> None:
        if host in self._loaded:
            return
        row = await PeerSignatureScheme.get_or_none(host=host)
        self._loaded.add(host)
        if row is None or host in self.by_host:
            return
        for scheme in _SCHEMES:
            if row.scheme == scheme:
                self.by_host[host] = scheme

    async def save(self) -> None:
        changed, self.changed = self.changed, {}
        for host, scheme in changed.items():
            await PeerSignatureScheme.update_or_create(defaults={"scheme": scheme}, host=host[:255])
            self._loaded.add(host)
            log.info("%s accepts %s signatures; remembered", host, scheme)
