"""The rendering cache of Status and Account entities (issue 20, point 6).

Rendering a page's entities costs more CPU than anything else on the read path: the media,
hashtag and mention rows loaded for them, and the JSON built from them. This process keeps
what it rendered, bounded (least recently used first out, :data:`DEFAULT_SIZE` entries per
kind, ``FEDISORA_ENTITY_CACHE_SIZE``; 0 turns it off), and serves it again only when the rows
the page reads anyway say nothing shown changed:

- an entry's *stamp* is the values of every shown column of the row as read (a clip's counts,
  text, flags, quote state, ...; an account's names, avatar, counts, suspension, ...), the
  stamps of what it embeds (its author; the account it moved to), the ``version`` of the
  clip or comment (raised in the writing transaction whenever its hashtags, mentions or media
  row change: :mod:`fedisora.services.entity_versions`) and this process's URL scheme;
- an entry is served only when its stamp equals the one computed from the rows this request
  read. A row read is never older than the entry's (each statement reads the latest commit),
  so an entry can never be served for a row that has changed since, whichever web process
  changed it: no invalidation message is needed, and none can be lost.

What differs by viewer (``favourited``, ``reblogged``, ``bookmarked``, ``muted``, ``pinned``,
a remix's quoted clip) is never cached: :func:`fedisora.api.entities.status_entities` adds it
to a copy of the cached part on each request. Cached entities are shared: callers may set
top-level keys of what they are handed (a copy), never change nested values.

Each cache counts its hits and misses; ``/metrics`` reads them through
:mod:`fedisora.cachestats`, with the process's other caches
(``fedisora_cache_lookups_total{cache="status_entities"}``, ``"account_entities"``).
"""

from __future__ import annotations

from collections import OrderedDict
from operator import attrgetter
from typing import Any

from fedisora import cachestats
from fedisora.models import Account, Clip, Comment

__all__ = [
    "ACCOUNTS",
    "DEFAULT_SIZE",
    "STATUSES",
    "EntityCache",
    "account_stamp",
    "caches",
    "configure",
    "status_stamp",
]

DEFAULT_SIZE = 10_000
"""Entries kept per kind (statuses, accounts) in each web process: a Status entity is about
3 kB, so about 30 MB at most for the statuses."""


class EntityCache:
    """A bounded map of key -> (stamp, entity): served only for an equal stamp."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()

    def counts(self) -> tuple[int, int]:
        """(hits, misses) so far, as :func:`fedisora.cachestats.watch` reads them."""
        return self.hits, self.misses

    def get(self, key: Any, stamp: Any) -> Any:
        """The entity stored for *key* under *stamp*; None (a miss) otherwise."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        return None

    def put(self, key: Any, stamp: Any, entity: Any) -> None:
        if self.size <= 0:
            return
        self._entries[key] = (stamp, entity)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


STATUSES = EntityCache("status_entities", DEFAULT_SIZE)
ACCOUNTS = EntityCache("account_entities", DEFAULT_SIZE)


def caches() -> tuple[EntityCache, ...]:
    return (STATUSES, ACCOUNTS)


for _cache in caches():
    cachestats.watch(_cache.name, _cache.counts)  # their hits and misses in /metrics


def configure(size: int) -> None:
    """Bound each cache to *size* entries (``FEDISORA_ENTITY_CACHE_SIZE``; 0: off)."""
    for cache in caches():
        cache.size = size
        while len(cache) > max(size, 0):
            cache._entries.popitem(last=False)


# Columns no entity shows, left out so that they change nothing: what players report (For
# You's signals), when a stamp was last re-verified, when an actor was last fetched.
_UNSHOWN: dict[type, set[str]] = {
    Clip: {"views_count", "completions_count", "skips_count", "quote_checked_at"},
    Comment: set(),
    Account: {"fetched_at", "updated_at"},
}
_getters: dict[type, attrgetter[Any]] = {}


def _getter(model: type) -> attrgetter[Any]:
    """The shown columns of *model* as one C-level getter, made on first use (the foreign
    keys' ``*_id`` columns are known once tortoise is initialised)."""
    found = _getters.get(model)
    if found is None:
        projection = model._meta.fields_db_projection  # type: ignore[attr-defined]
        found = attrgetter(*(f for f in projection if f not in _UNSHOWN[model]))
        _getters[model] = found
    return found


def account_stamp(account: Account) -> tuple[Any, ...]:
    """What an Account entity is rendered from, on its row (every shown column)."""
    return _getter(Account)(account)  # type: ignore[no-any-return]


def status_stamp(status: Clip | Comment) -> tuple[Any, ...]:
    """What a Status entity is rendered from, on its row: every shown column, ``version``
    (which stands for its hashtags, mentions and media) included."""
    return _getter(type(status))(status)  # type: ignore[no-any-return]
