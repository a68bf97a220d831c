"""Mastodon's stream types, and what each domain event means on them for one viewer.

Streams (the names Mastodon's streaming server accepts): ``user`` (home timeline and
notifications), ``user:notification``, ``public`` / ``public:local`` / ``public:remote`` (each
with a ``:media`` form, the same here since every clip is a video), ``hashtag`` and
``hashtag:local`` (with a ``tag``). Lists and direct conversations do not exist in fedisora.

Events: ``update`` (a new clip, or a boost in the home feed; the payload is the Status JSON as a
string), ``status.update`` (an edited clip), ``delete`` (the status id) and ``notification``.
Streams follow the REST timelines: public and hashtag streams carry public clips only, the
user stream what the viewer's home feed receives. Comments live in threads, not timelines:
they reach a stream as the ``mention`` notification, and their deletion as ``delete``.

Every message passes the same visibility rules as the REST API (``visible_statuses``, blocks
both ways and mutes), checked when the event is delivered. :func:`fan_out` does the work once
per event and class of viewer, not once per connection: anonymous viewers share one check and
one rendered status; signed-in viewers are grouped by their relations to the accounts and
statuses the event involves (read in a few batched queries), and the rules and the status
entity run once per group on one member of it. A thousand connections to the public stream
cost the same queries as one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, TypeVar

from fedisora.api import scopes as scope_rules
from fedisora.api.entities import notification_entities, reblog_entity, status_entities
from fedisora.api.lookup import column
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.errors import FedisoraError
from fedisora.models import (
    Account,
    Block,
    Bookmark,
    Boost,
    Clip,
    ClipTag,
    Comment,
    Follow,
    FollowState,
    Like,
    Mention,
    Mute,
    Notification,
    TimelineEntry,
    Visibility,
)
from fedisora.services.events import Event
from fedisora.services.visibility import public_readers_of_limited

__all__ = [
    "STREAM_NAMES",
    "Message",
    "Stream",
    "StreamError",
    "Subscriber",
    "Viewer",
    "fan_out",
    "messages_for",
    "parse_stream",
]

PUBLIC_NAMES = frozenset(
    {
        "public",
        "public:media",
        "public:local",
        "public:local:media",
        "public:remote",
        "public:remote:media",
    }
)
USER_NAMES = frozenset({"user", "user:notification"})
TAG_NAMES = frozenset({"hashtag", "hashtag:local"})
STREAM_NAMES = PUBLIC_NAMES | USER_NAMES | TAG_NAMES


class StreamError(FedisoraError):
    """A subscription Mastodon's streaming server refuses (400, or 401 for auth)."""

    status = 400


class StreamAuthError(StreamError):
    status = 401


@dataclass(frozen=True)
class Viewer:
    """Who is connected: their account (None when anonymous or an app token) and scopes."""

    account: Account | None
    scopes: tuple[str, ...] = ()

    def may(self, *required: str) -> bool:
        return scope_rules.allows(self.scopes, *required)


@dataclass(frozen=True)
class Stream:
    name: str
    tag: str | None = None

    @property
    def label(self) -> list[str]:
        """The ``stream`` array of a WebSocket message (``["hashtag", "tag"]``)."""
        return [self.name] if self.tag is None else [self.name, self.tag]


@dataclass(frozen=True)
class Message:
    """One message for a stream. :func:`fan_out` hands the same object to every connection
    that gets it, so its wire texts are built once (on first use) and shared."""

    stream: list[str]
    event: str
    payload: str

    @cached_property
    def _websocket_text(self) -> str:
        return json.dumps({"stream": self.stream, "event": self.event, "payload": self.payload})

    @cached_property
    def _sse_text(self) -> str:
        return f"event: {self.event}\ndata: {self.payload}\n\n"

    def websocket_text(self) -> str:
        return self._websocket_text

    def sse_text(self) -> str:
        return self._sse_text


class Subscriber(Protocol):
    """What :func:`fan_out` reads of a connection: who is watching, and which streams."""

    @property
    def viewer(self) -> Viewer: ...

    @property
    def streams(self) -> Sequence[Stream]: ...


def parse_stream(viewer: Viewer, name: str | None, tag: str | None = None) -> Stream:
    """The stream *name* (with *tag*) if *viewer* may subscribe to it, else StreamError."""
    if not name or name not in STREAM_NAMES:
        raise StreamError("Unknown stream type")
    if name in TAG_NAMES:
        clean = (tag or "").strip().lstrip("#").lower()
        if not clean:
            raise StreamError("No tag for stream provided")
        return Stream(name, clean)
    if name in USER_NAMES:
        if viewer.account is None:
            raise StreamAuthError("This stream requires an authenticated user")
        needed = (
            ("read:notifications",)
            if name == "user:notification"
            else (
                "read:statuses",
                "read:notifications",
            )
        )
        if not viewer.may(*needed):
            raise StreamAuthError("Access token does not have the required scopes")
        return Stream(name)
    if viewer.scopes and not viewer.may("read:statuses"):
        raise StreamAuthError("Access token does not have the required scopes")
    return Stream(name)


def _public_match(stream: Stream, clip: Clip, tags: Collection[str] | None) -> bool:
    """Whether a public clip belongs on *stream* (*tags*: None when unknown, e.g. deleted)."""
    if stream.name in PUBLIC_NAMES:
        if ":local" in stream.name and not clip.local:
            return False
        return not (":remote" in stream.name and clip.local)
    if stream.name in TAG_NAMES:
        if stream.name == "hashtag:local" and not clip.local:
            return False
        return tags is None or stream.tag in tags
    return False


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


Sub = TypeVar("Sub", bound=Subscriber)
T = TypeVar("T")
Status = Clip | Comment
CHUNK = 500  # ids per IN (...) list: well inside SQLite's and asyncpg's limits


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _key(status: Status) -> str:
    return f"{'clip' if isinstance(status, Clip) else 'comment'}:{status.pk}"


@dataclass(frozen=True)
class _Facts:
    """A viewer's relations to the accounts and statuses one event involves.

    These are everything the rules read about a viewer: ``visible_statuses`` (being the author,
    blocks either way, accepted follows, mentions),
    ``hidden_account_ids`` (blocks and mutes) and the viewer's fields of a status entity
    (favourited, reblogged, bookmarked, pinned for the author; the same of a quoted source,
    and whether the viewer may see it). Two viewers with equal facts get equal answers, so
    each rule runs once per distinct facts, on one of the viewers having them.
    """

    me: frozenset[int] = frozenset()  # the involved accounts that are the viewer
    blocks: frozenset[int] = frozenset()  # blocked by, or blocking, the viewer
    mutes: frozenset[int] = frozenset()
    follows: frozenset[int] = frozenset()  # accepted follows of the viewer
    mentions: frozenset[str] = frozenset()  # the statuses (keys) mentioning the viewer
    likes: frozenset[str] = frozenset()
    boosts: frozenset[int] = frozenset()
    bookmarks: frozenset[int] = frozenset()


@dataclass
class _Relations:
    """Reads :class:`_Facts` for many viewers at once: a few queries per :data:`CHUNK`."""

    accounts: set[int]
    statuses: list[Status]
    _facts: dict[int, _Facts] = field(default_factory=dict)

    async def load(self, viewers: Collection[int]) -> None:
        todo = set(viewers) - set(self._facts)
        if not todo:
            return
        found: dict[int, dict[str, set[Any]]] = {
            v: {name: set() for name in _Facts.__dataclass_fields__} for v in todo
        }
        accounts = sorted(self.accounts)
        clip_ids = [s.pk for s in self.statuses if isinstance(s, Clip)]
        keys = [_key(s) for s in self.statuses]
        ids = [s.pk for s in self.statuses]
        for chunk in _chunks(todo):
            for v in chunk:
                found[v]["me"] |= {v} & self.accounts
            # (fact, query, viewer column, value column)
            reads: list[tuple[str, Any, str, str]] = [
                (
                    "blocks",
                    Block.filter(account_id__in=chunk, target_id__in=accounts),
                    "account_id",
                    "target_id",
                ),
                (
                    "blocks",
                    Block.filter(account_id__in=accounts, target_id__in=chunk),
                    "target_id",
                    "account_id",
                ),
                (
                    "mutes",
                    Mute.filter(account_id__in=chunk, target_id__in=accounts),
                    "account_id",
                    "target_id",
                ),
                (
                    "follows",
                    Follow.filter(
                        follower_id__in=chunk, target_id__in=accounts, state=FollowState.ACCEPTED
                    ),
                    "follower_id",
                    "target_id",
                ),
                (
                    "likes",
                    Like.filter(account_id__in=chunk, target_key__in=keys),
                    "account_id",
                    "target_key",
                ),
                (
                    "bookmarks",
                    Bookmark.filter(account_id__in=chunk, status_id__in=ids),
                    "account_id",
                    "status_id",
                ),
            ]
            mentions = Mention.filter(account_id__in=chunk, target_key__in=keys)
            reads.append(("mentions", mentions, "account_id", "target_key"))
            if clip_ids:
                boosts = Boost.filter(account_id__in=chunk, clip_id__in=clip_ids)
                reads.append(("boosts", boosts, "account_id", "clip_id"))
            for name, query, viewer_column, value_column in reads:
                for v, value in await query.values_list(viewer_column, value_column):
                    found[int(v)][name].add(value)
        for v, sets in found.items():
            self._facts[v] = _Facts(**{name: frozenset(values) for name, values in sets.items()})

    def __getitem__(self, viewer: int) -> _Facts:
        return self._facts[viewer]


class _PerClass:
    """Runs an async rule once per class of viewers (equal :class:`_Facts`)."""

    def __init__(self, relations: _Relations) -> None:
        self.relations = relations
        self._results: dict[tuple[str, _Facts], Any] = {}

    async def get(self, name: str, viewer: Account, rule: Callable[[Account], Awaitable[T]]) -> T:
        key = (name, self.relations[viewer.pk])
        if key not in self._results:
            self._results[key] = await rule(viewer)
        result: T = self._results[key]
        return result


class _Messages:
    """Builds each distinct message once, so every connection getting it shares the object."""

    def __init__(self) -> None:
        self._made: dict[tuple[tuple[str, ...], str, str], Message] = {}

    def __call__(self, stream: Stream, event: str, payload: str) -> Message:
        key = (tuple(stream.label), event, payload)
        message = self._made.get(key)
        if message is None:
            message = self._made[key] = Message(stream.label, event, payload)
        return message


def _event_id(event: Event, name: str) -> int:
    return int(event.data.get(name, -1))


async def _home_owners(
    clip_id: int, owners: Collection[int], boosted_by: int | None = None
) -> set[int]:
    """Those of *owners* whose home timeline holds the clip (boosted by *boosted_by*)."""
    found: set[int] = set()
    for chunk in _chunks(owners):
        query = TimelineEntry.filter(owner_id__in=chunk, clip_id=clip_id)
        if boosted_by is not None:
            query = query.filter(boosted_by_id=boosted_by)
        found |= {int(i) for i in await column(query, "owner_id")}
    return found


async def _with_source(clip: Clip) -> tuple[set[int], list[Status]]:
    """The accounts and statuses whose relations to a viewer shape *clip*'s entity: the clip,
    and the clip a remix quotes."""
    accounts: set[int] = {clip.account_id}
    statuses: list[Status] = [clip]
    if clip.remix_of_id is not None:
        source = await Clip.get_or_none(pk=clip.remix_of_id)
        if source is not None:
            accounts.add(source.account_id)
            statuses.append(source)
    return accounts, statuses


async def _sees(viewer: Account | None, status: Status, *, hidden: Collection[int] = ()) -> bool:
    """Whether *viewer* may see *status*, and none of *hidden* is hidden from them."""
    if hidden and set(hidden) & await hidden_account_ids(viewer):
        return False
    return bool(await visible_statuses(viewer, [status]))


def _user_streams(sub: Subscriber, *names: str) -> list[Stream]:
    return [s for s in dict.fromkeys(sub.streams) if s.name in names]


async def _clip_fan_out(
    event: Event, subs: Sequence[Sub], kind: str
) -> list[tuple[Sub, list[Message]]]:
    clip = await Clip.get_or_none(pk=_event_id(event, "clip_id"))
    if clip is None or clip.deleted_at is not None:
        return []
    public = clip.visibility == Visibility.PUBLIC
    tags: set[str] = set()
    if public and any(s.name in TAG_NAMES for sub in subs for s in sub.streams):
        tags = set(await column(ClipTag.filter(clip_id=clip.pk), "tag__name"))
    home_readers = {
        sub.viewer.account.pk
        for sub in subs
        if sub.viewer.account is not None
        and sub.viewer.may("read:statuses")
        and _user_streams(sub, "user")
    }
    in_home = await _home_owners(clip.pk, home_readers) if home_readers else set()
    # A silenced author's clips reach public streams of its followers only (as the timelines).
    limited_to = (
        await public_readers_of_limited(
            clip.account_id, {s.viewer.account.pk for s in subs if s.viewer.account is not None}
        )
        if public
        else None
    )

    wanted: list[tuple[Sub, list[Stream]]] = []
    for sub in subs:
        me = sub.viewer.account
        targets = []
        for stream in dict.fromkeys(sub.streams):
            if stream.name == "user":
                if me is not None and me.pk in in_home and sub.viewer.may("read:statuses"):
                    targets.append(stream)
            elif (
                stream.name != "user:notification"
                and public
                and _public_match(stream, clip, tags)
                and (limited_to is None or (me is not None and me.pk in limited_to))
            ):
                targets.append(stream)
        if targets:
            wanted.append((sub, targets))
    if not wanted:
        return []

    accounts, statuses = await _with_source(clip)
    relations = _Relations(accounts, statuses)
    await relations.load({s.viewer.account.pk for s, _ in wanted if s.viewer.account})
    per_class = _PerClass(relations)
    anonymous: str | None = None
    anonymous_sees: bool | None = None

    async def payload(viewer: Account) -> str | None:
        if not await _sees(viewer, clip, hidden=[clip.account_id]):
            return None
        (entity,) = await status_entities(viewer, [clip])
        return _dump(entity)

    message = _Messages()
    out: list[tuple[Sub, list[Message]]] = []
    for sub, targets in wanted:
        me = sub.viewer.account
        text: str | None
        if me is None:
            if anonymous_sees is None:
                anonymous_sees = await _sees(None, clip)
                if anonymous_sees:
                    (entity,) = await status_entities(None, [clip])
                    anonymous = _dump(entity)
            text = anonymous
        else:
            text = await per_class.get("entity", me, payload)
        if text is not None:
            out.append((sub, [message(s, kind, text) for s in targets]))
    return out


async def _boost_fan_out(event: Event, subs: Sequence[Sub]) -> list[tuple[Sub, list[Message]]]:
    readers = [
        (sub, streams)
        for sub in subs
        if sub.viewer.account is not None
        and sub.viewer.may("read:statuses")
        and (streams := _user_streams(sub, "user"))
    ]
    if not readers:
        return []
    boost = await Boost.get_or_none(pk=_event_id(event, "boost_id"))
    if boost is None:
        return []
    owners = {sub.viewer.account.pk for sub, _ in readers if sub.viewer.account is not None}
    in_home = await _home_owners(boost.clip_id, owners, boost.account_id)
    readers = [
        (sub, streams)
        for sub, streams in readers
        if sub.viewer.account is not None and sub.viewer.account.pk in in_home
    ]
    if not readers:
        return []
    clip = await Clip.get_or_none(pk=boost.clip_id)
    booster = await Account.get_or_none(pk=boost.account_id)
    if clip is None or booster is None:
        return []
    accounts, statuses = await _with_source(clip)
    relations = _Relations(accounts | {booster.pk}, statuses)
    await relations.load(in_home)
    per_class = _PerClass(relations)

    async def payload(viewer: Account) -> str | None:
        if not await _sees(viewer, clip, hidden=[clip.account_id, booster.pk]):
            return None
        (inner,) = await status_entities(viewer, [clip])
        return _dump(reblog_entity(boost, booster, inner))

    message = _Messages()
    out: list[tuple[Sub, list[Message]]] = []
    for sub, streams in readers:
        assert sub.viewer.account is not None
        text = await per_class.get("reblog", sub.viewer.account, payload)
        if text is not None:
            out.append((sub, [message(s, "update", text) for s in streams]))
    return out


async def _delete_fan_out(event: Event, subs: Sequence[Sub]) -> list[tuple[Sub, list[Message]]]:
    """``delete`` for a status the viewer could see before it went (only its id is sent), on
    the public streams it was on and on the home streams it reached."""
    status: Status | None
    if event.kind == "clip.deleted":
        status = await Clip.get_or_none(pk=_event_id(event, "clip_id"))
    else:
        status = await Comment.get_or_none(pk=_event_id(event, "comment_id"))
    if status is None:
        return []
    before = _as_before(status)
    accounts, statuses = {before.account_id}, [before]
    if isinstance(before, Comment):
        parent = await Clip.get_or_none(pk=before.clip_id)
        if parent is not None:
            accounts.add(parent.account_id)
            statuses.append(parent)
    relations = _Relations(accounts, statuses)
    signed_in = {
        sub.viewer.account.pk
        for sub in subs
        if sub.viewer.account is not None and sub.viewer.may("read:statuses")
    }
    await relations.load(signed_in)
    notified: set[int] = set()
    if isinstance(before, Comment) and signed_in:
        for chunk in _chunks(signed_in):
            query = Notification.filter(recipient_id__in=chunk, comment_id=before.pk)
            notified |= {int(i) for i in await column(query, "recipient_id")}

    def had_it(viewer: Account) -> bool:
        """Whether the status reached the viewer's home stream or notifications: their own,
        a clip of someone they follow or that mentions them, a comment they were notified of."""
        facts = relations[viewer.pk]
        if before.account_id in facts.me:
            return True
        if isinstance(before, Comment):
            return viewer.pk in notified
        return before.account_id in facts.follows or _key(before) in facts.mentions

    per_class = _PerClass(relations)
    anonymous_sees: bool | None = None
    payload = str(status.pk)
    message = _Messages()
    out: list[tuple[Sub, list[Message]]] = []
    for sub in subs:
        viewer = sub.viewer
        targets: list[Stream] = []
        for stream in dict.fromkeys(sub.streams):
            if stream.name == "user":
                if viewer.account is not None and viewer.may("read:statuses"):
                    if had_it(viewer.account):
                        targets.append(stream)
            elif (
                isinstance(before, Clip)
                and stream.name != "user:notification"
                and before.visibility == Visibility.PUBLIC
                and _public_match(stream, before, None)
            ):
                targets.append(stream)
        if not targets:
            continue
        if viewer.account is None:
            if anonymous_sees is None:
                anonymous_sees = await _sees(None, before)
            sees = anonymous_sees
        else:
            if viewer.account.pk not in signed_in:  # a public stream with a non-reading token
                await relations.load([viewer.account.pk])
            sees = await per_class.get("sees", viewer.account, lambda v: _sees(v, before))
        if sees:
            out.append((sub, [message(s, "delete", payload) for s in targets]))
    return out


def _as_before(status: Status) -> Status:
    """An in-memory copy of a deleted status as it was (for the visibility check only)."""
    before = copy.copy(status)
    before.deleted_at = None
    return before


async def _notification_fan_out(
    event: Event, subs: Sequence[Sub]
) -> list[tuple[Sub, list[Message]]]:
    """A notification goes to its recipient's user streams only: rendered once for all their
    connections."""
    readers = [
        (sub, streams)
        for sub in subs
        if sub.viewer.account is not None
        and sub.viewer.account.pk == event.actor_id
        and sub.viewer.may("read:notifications")
        and (streams := _user_streams(sub, *USER_NAMES))
    ]
    if not readers:
        return []
    me = readers[0][0].viewer.account
    assert me is not None
    note = await Notification.get_or_none(
        pk=_event_id(event, "notification_id"), recipient_id=me.pk, dismissed=False
    )
    if note is None:
        return []
    rendered = await notification_entities(me, [note])
    if not rendered:
        return []
    payload = _dump(rendered[0])
    message = _Messages()
    return [
        (sub, [message(s, "notification", payload) for s in streams]) for sub, streams in readers
    ]


async def fan_out(event: Event, subscribers: Sequence[Sub]) -> list[tuple[Sub, list[Message]]]:
    """The messages *event* makes for each of *subscribers* (only those getting any).

    Equal messages are the same :class:`Message` object. The cost is a fixed number of
    queries per event, plus one run of the rules per class of signed-in viewer (see the
    module docstring), whatever the number of subscribers.
    """
    subs = [s for s in subscribers if s.streams]
    if not subs:
        return []
    try:
        if event.kind == "clip.created":
            return await _clip_fan_out(event, subs, "update")
        if event.kind == "clip.updated":
            return await _clip_fan_out(event, subs, "status.update")
        if event.kind == "boost.created":
            return await _boost_fan_out(event, subs)
        if event.kind in ("clip.deleted", "comment.deleted"):
            return await _delete_fan_out(event, subs)
        if event.kind == "notification.created":
            return await _notification_fan_out(event, subs)
    except (TypeError, ValueError):  # malformed event data from another process
        return []
    return []


@dataclass(frozen=True)
class _One:
    viewer: Viewer
    streams: Sequence[Stream]


async def messages_for(event: Event, viewer: Viewer, streams: Iterable[Stream]) -> list[Message]:
    """The messages *event* makes on *streams* for one *viewer* (often none)."""
    got = await fan_out(event, [_One(viewer, list(dict.fromkeys(streams)))])
    return got[0][1] if got else []
