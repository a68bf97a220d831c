"""What each event means on each stream for one viewer (SQLite and PostgreSQL), and how a
notification written by another process reaches the hub without Redis (through the outbox)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account, rendered_video
from streaming_reference import reference_messages
from test_api_entities import counting

from fedisora.api import entity_cache
from fedisora.api.http import load_token
from fedisora.errors import FedisoraError
from fedisora.models import (
    Account,
    Clip,
    Notification,
    NotificationType,
    OAuthAccessToken,
    OAuthApplication,
    User,
    Visibility,
    utcnow,
)
from fedisora.services import bookmarks, events, follows, interactions, moderation, posts
from fedisora.services.events import Event
from fedisora.services.notify import notify
from fedisora.services.outbox import build_machine
from fedisora.streaming.broker import Hub, decode, encode, start_streaming
from fedisora.streaming.channels import (
    Message,
    Stream,
    StreamError,
    Viewer,
    fan_out,
    messages_for,
    parse_stream,
)
from fedisora.streaming.hub import (
    MAX_SUBSCRIPTIONS,
    QUEUE_SIZE,
    TOKEN_ENDED,
    Limits,
    TooManyStreams,
)
from fedisora.streaming.tokens import live_tokens
from fedisora.work.engine import Engine
from fedisora.work.runner import InProcessRunner

ALL = [
    Stream("user"),
    Stream("public"),
    Stream("public:local"),
    Stream("public:remote"),
    Stream("hashtag", "waves"),
    Stream("hashtag", "other"),
]


async def _clip(client: httpx.AsyncClient, me: Login, text: str, **extra: str) -> str:
    media = await rendered_video(me.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": text, "media_ids[]": str(media.pk), **extra},
        headers=me.headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _viewer(login_: Login | None, scopes: str = "read write follow push") -> Viewer:
    return Viewer(login_.account if login_ else None, tuple(scopes.split()))


async def test_clip_events_follow_visibility(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    stranger = await login(client, await local_account("stranger"))
    await client.post(f"/api/v1/accounts/{alice.account.pk}/follow", headers=bob.headers)
    public = await _clip(client, alice, "surf #waves")
    private = await _clip(client, alice, "secret #waves", visibility="private")
    unlisted = await _clip(client, alice, "quiet #waves", visibility="unlisted")

    def created(clip_id: str) -> Event:
        return Event("clip.created", alice.account.pk, {"clip_id": int(clip_id)})

    got = await messages_for(created(public), _viewer(bob), ALL)
    assert [(m.stream, m.event) for m in got] == [
        (["user"], "update"),
        (["public"], "update"),
        (["public:local"], "update"),
        (["hashtag", "waves"], "update"),
    ]
    assert json.loads(got[0].payload)["id"] == public
    anon = await messages_for(created(public), Viewer(None), ALL)
    assert [m.stream for m in anon] == [["public"], ["public:local"], ["hashtag", "waves"]]

    # followers-only: only the follower's home; nothing for a stranger or anyone public
    got = await messages_for(created(private), _viewer(bob), ALL)
    assert [(m.stream, json.loads(m.payload)["id"]) for m in got] == [(["user"], private)]
    assert await messages_for(created(private), _viewer(stranger), ALL) == []
    assert await messages_for(created(private), Viewer(None), ALL) == []
    # unlisted: the follower's home, never public streams
    got = await messages_for(created(unlisted), _viewer(bob), ALL)
    assert [m.stream for m in got] == [["user"]]

    # a silenced (limited) author: public streams reach its followers and itself only
    await moderation.silence(alice.account)
    followers = await messages_for(created(public), _viewer(bob), ALL)
    assert [m.stream for m in followers] == [
        ["user"],
        ["public"],
        ["public:local"],
        ["hashtag", "waves"],
    ]
    own = await messages_for(created(public), _viewer(alice), ALL)
    assert ["public"] in [m.stream for m in own]
    assert await messages_for(created(public), _viewer(stranger), ALL) == []
    assert await messages_for(created(public), Viewer(None), ALL) == []
    await moderation.unsilence(alice.account)
    assert [m.stream for m in await messages_for(created(public), Viewer(None), ALL)] == [
        ["public"],
        ["public:local"],
        ["hashtag", "waves"],
    ]

    # a token that cannot read statuses gets no updates on the user stream
    assert await messages_for(created(public), _viewer(bob, "read:notifications"), ALL[:1]) == []

    # mutes and blocks
    await client.post(f"/api/v1/accounts/{alice.account.pk}/mute", headers=stranger.headers)
    assert await messages_for(created(public), _viewer(stranger), ALL) == []
    await client.post(f"/api/v1/accounts/{bob.account.pk}/block", headers=alice.headers)
    assert await messages_for(created(public), _viewer(bob), ALL) == []

    # deletion: the id to those who could see it and had it
    r = await client.delete(f"/api/v1/statuses/{private}", headers=alice.headers)
    assert r.status_code == 200
    gone = Event("clip.deleted", alice.account.pk, {"clip_id": int(private)})
    assert await messages_for(gone, _viewer(stranger), ALL) == []
    got = await messages_for(gone, _viewer(alice), ALL)
    assert [(m.stream, m.event, m.payload) for m in got] == [(["user"], "delete", private)]
    # an unknown or malformed event makes nothing
    assert await messages_for(Event("clip.created", 1, {"clip_id": "x"}), _viewer(bob), ALL) == []
    assert await messages_for(Event("like.created", 1, {}), _viewer(bob), ALL) == []


async def test_notifications_only_to_their_recipient(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    note = await notify(
        alice.account, NotificationType.FOLLOW, dedupe_key="t", from_account=bob.account
    )
    assert note is not None
    event = Event("notification.created", alice.account.pk, {"notification_id": note.pk})
    streams = [Stream("user"), Stream("user:notification"), Stream("public")]
    got = await messages_for(event, _viewer(alice), streams)
    assert [(m.stream, m.event) for m in got] == [
        (["user"], "notification"),
        (["user:notification"], "notification"),
    ]
    assert json.loads(got[0].payload)["account"]["acct"] == "bob"
    assert await messages_for(event, _viewer(bob), streams) == []
    assert await messages_for(event, _viewer(alice, "read:statuses"), streams) == []


async def test_parse_stream_rules(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    assert parse_stream(Viewer(None), "hashtag", "#Waves") == Stream("hashtag", "waves")
    assert parse_stream(_viewer(alice, "read:notifications"), "user:notification").name
    for viewer, name, status in [
        (Viewer(None), "user", 401),
        (_viewer(alice, "write"), "user", 401),
        (_viewer(alice, "write"), "public", 401),
        (_viewer(alice, "read:statuses"), "user:notification", 401),
        (Viewer(None), "direct", 400),
        (Viewer(None), "hashtag", 400),
    ]:
        with pytest.raises(StreamError) as err:
            parse_stream(viewer, name)
        assert err.value.status == status


async def test_notifications_of_another_process_reach_the_hub_once(
    client: httpx.AsyncClient, db: str
) -> None:
    """Without Redis, a notification another process writes (the render worker's, which runs
    no outbox) is an outbox row like any other: the web process's runner hands it to the
    hub once, and nothing announces it before."""
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    service = await start_streaming(None)  # as the web process does
    queue = service.hub.connect()
    try:
        events.clear_runner()  # the writing process: its rows wait for a runner
        note = await notify(
            alice.account, NotificationType.MENTION, dedupe_key="a", from_account=bob.account
        )
        assert note is not None and queue.empty()
        runner = InProcessRunner(Engine([build_machine()]), poll_interval=3600)
        await runner.drain()
        got = [queue.get_nowait() for _ in range(queue.qsize())]
        mention = Event("notification.created", alice.account.pk, {"notification_id": note.pk})
        assert got == [mention]
        await runner.drain()
        assert queue.empty()  # once
    finally:
        await service.stop()


def test_wire_format() -> None:
    event = Event("clip.created", 3, {"clip_id": 12})
    assert decode(encode(event)) == event
    for bad in ("", "[]", '{"kind": 1, "actor_id": 2, "data": {}}', '{"kind": "x"}'):
        assert decode(bad) is None
    hub = Hub()
    queue = hub.connect()
    hub.dispatch(Event("like.created", 1, {}))  # not a streamed kind
    assert queue.empty()
    for n in range(1005):  # a slow connection loses the oldest events, never blocks others
        hub.dispatch(Event("clip.created", 1, {"clip_id": n}))
    assert queue.qsize() == 1000 and queue.get_nowait().data == {"clip_id": 5}


@dataclass(eq=False)  # one per connection: hashed by identity
class _Sub:
    viewer: Viewer
    streams: Sequence[Stream]


async def test_fan_out_matches_each_viewer_alone(client: httpx.AsyncClient, db: str) -> None:
    """The batched fan-out gives every connection exactly what the per-viewer rules (the
    implementation before batching, kept as an oracle) give it alone, for every event kind,
    across followers, strangers, mentions, mutes, blocks both ways, interactions, a remix of a
    followers-only clip, app-only and anonymous viewers, and tokens with narrow scopes."""
    names = ["alice", "bob", "carol", "dan", "erin", "frank", "gina", "hank", "ivan", "judy"]
    acct = {n: await local_account(n) for n in names}
    alice = acct["alice"]
    for fan in ("bob", "hank", "judy", "frank"):
        await follows.follow(acct[fan], alice)
    for fan in ("ivan", "judy"):
        await follows.follow(acct[fan], acct["bob"])
    await follows.mute(acct["erin"], alice)
    await follows.block(alice, acct["frank"])
    await follows.block(acct["gina"], alice)
    await follows.block(acct["judy"], acct["bob"])

    async def post(text: str, visibility: Visibility, remix_of: Clip | None = None) -> Clip:
        media = await rendered_video(alice)
        return await posts.post_clip(
            alice, media, caption=text, visibility=visibility, remix_of=remix_of
        )

    public = await post("surf #waves @dan", Visibility.PUBLIC)
    unlisted = await post("quiet #waves", Visibility.UNLISTED)
    private = await post("secret #waves @carol", Visibility.FOLLOWERS)
    direct = await post("psst @dan", Visibility.DIRECT)
    remix = await post("again #waves", Visibility.PUBLIC, remix_of=private)
    await interactions.like(acct["hank"], public)
    await bookmarks.bookmark(acct["hank"], public)
    await interactions.boost(acct["hank"], public)
    boost = await interactions.boost(acct["bob"], public)
    reply = await interactions.comment(acct["bob"], public, "nice @alice @dan")
    notes = await Notification.filter(recipient_id=alice.pk)
    assert notes

    events = [Event("clip.created", alice.pk, {"clip_id": c.pk}) for c in (public, unlisted)]
    events += [Event("clip.created", alice.pk, {"clip_id": c.pk}) for c in (private, direct)]
    events += [
        Event("clip.created", alice.pk, {"clip_id": remix.pk}),
        Event("clip.updated", alice.pk, {"clip_id": public.pk}),
        Event("boost.created", acct["bob"].pk, {"boost_id": boost.pk}),
        *(Event("notification.created", n.recipient_id, {"notification_id": n.pk}) for n in notes),
    ]
    full = ("read", "write", "follow", "push")
    viewers = [Viewer(None), Viewer(None, ("read",))]  # anonymous, an app-only token
    viewers += [Viewer(a, full) for a in acct.values()]
    viewers += [Viewer(acct["bob"], ("read:notifications",)), Viewer(alice, ("read:statuses",))]
    streams = [*ALL, Stream("user:notification"), Stream("hashtag:local", "waves")]
    subs = [_Sub(v, streams) for v in viewers]
    subs += [_Sub(Viewer(acct[n], full), [Stream("user")]) for n in ("bob", "dan")]

    async def compare() -> int:
        delivered = 0
        for event in events:
            batched = dict(await fan_out(event, subs))
            for sub in subs:
                expected = await reference_messages(event, sub.viewer, sub.streams)
                got = batched.get(sub, [])
                assert [(m.stream, m.event, m.payload) for m in got] == [
                    (m.stream, m.event, m.payload) for m in expected
                ], (event, sub.viewer.account and sub.viewer.account.username)
                delivered += len(got)
        return delivered

    assert await compare() > 40
    # what the comparison covered: hank's view has his interactions, a stranger's remix quote
    # is unauthorized while a follower's shows the followers-only source
    update = Event("clip.updated", alice.pk, {"clip_id": public.pk})
    mine = json.loads((await messages_for(update, Viewer(acct["hank"], full), ALL))[0].payload)
    assert mine["favourited"] and mine["reblogged"] and mine["bookmarked"]
    made = Event("clip.created", alice.pk, {"clip_id": remix.pk})
    seen = await messages_for(made, Viewer(acct["ivan"], full), [Stream("public")])
    assert json.loads(seen[0].payload)["quote"]["state"] == "unauthorized"
    seen = await messages_for(made, Viewer(acct["bob"], full), [Stream("public")])
    assert json.loads(seen[0].payload)["quote"]["quoted_status"]["id"] == str(private.pk)

    # deletions: a comment and clips (the events come after the rows are marked deleted)
    await interactions.delete_comment(acct["bob"], reply)
    for clip in (private, public, direct):
        await posts.delete_clip(alice, clip)
    events = [Event("comment.deleted", acct["bob"].pk, {"comment_id": reply.pk})]
    events += [
        Event("clip.deleted", alice.pk, {"clip_id": c.pk}) for c in (private, public, direct)
    ]
    assert await compare() > 10


async def test_fan_out_cost_does_not_grow_with_connections(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries per event are the same for 2 connections as for 200 (anonymous ones and
    signed-in strangers alike), and equal messages are one shared object."""
    alice = await local_account("alice")
    strangers = [await local_account(f"s{n}") for n in range(40)]
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="hi #waves")
    event = Event("clip.created", alice.pk, {"clip_id": clip.pk})

    def subs(count: int) -> list[_Sub]:
        out = [_Sub(Viewer(None), [Stream("public"), Stream("hashtag", "waves")])] * count
        return out + [_Sub(Viewer(s, ("read",)), [Stream("public")]) for s in strangers[:count]]

    # Each from an empty rendering cache (a warm one would spare the second its renders).
    for cache in entity_cache.caches():
        cache.clear()
    with counting(monkeypatch) as few:
        small = await fan_out(event, subs(1))
    for cache in entity_cache.caches():
        cache.clear()
    with counting(monkeypatch) as many:
        large = await fan_out(event, subs(40) * 5)
    assert len(small) == 2 and len(large) == 400
    assert len(many) == len(few), many
    payloads = {id(m) for _, messages in large for m in messages}
    assert len(payloads) == 3  # public and hashtag for anonymous viewers, public for the rest


async def test_live_tokens_agree_with_load_token(client: httpx.AsyncClient, db: str) -> None:
    """The batched token check behind open streams accepts exactly what REST accepts."""
    app = await OAuthApplication.create(name="t", client_id="c", client_secret="s")
    ok, suspended, disabled, unapproved = [await local_account() for _ in range(4)]
    await Account.filter(pk=suspended.pk).update(suspended_at=utcnow())
    await User.filter(account_id=disabled.pk).update(disabled=True)
    await User.filter(account_id=unapproved.pk).update(approved=False)
    soon, past = utcnow() + timedelta(hours=1), utcnow() - timedelta(seconds=1)
    cases = {
        "user": {"account": ok},
        "app only": {"account": None},
        "expires later": {"account": ok, "expires_at": soon},
        "expired": {"account": ok, "expires_at": past},
        "revoked": {"account": ok, "revoked_at": utcnow()},
        "app only, revoked": {"account": None, "revoked_at": utcnow()},
        "suspended": {"account": suspended},
        "disabled": {"account": disabled},
        "unapproved": {"account": unapproved},
        "deleted": {"account": ok},
    }
    tokens = {
        name: await OAuthAccessToken.create(token=f"t{n}", application=app, scopes="read", **fields)
        for n, (name, fields) in enumerate(cases.items())
    }
    await tokens["deleted"].delete()
    accepted = set()
    for token in tokens.values():
        try:
            await load_token(token.token)
            accepted.add(token.pk)
        except FedisoraError:
            pass
    assert len(accepted) == 3  # user, app only, expires later
    assert await live_tokens([t.pk for t in tokens.values()]) == accepted
    many = list(range(10**9, 10**9 + 1300))  # no such tokens, and more than one chunk
    assert await live_tokens([*many, tokens["user"].pk]) == {tokens["user"].pk}


async def test_hub_fans_out_off_the_callers_path_and_ends_revoked_streams(
    client: httpx.AsyncClient, db: str
) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    await client.post(f"/api/v1/accounts/{alice.account.pk}/follow", headers=bob.headers)
    token = await OAuthAccessToken.get(token=bob.token)
    hub = Hub(recheck_interval=3600)  # only the check made with each event, here
    mine = hub.open(_viewer(bob), [Stream("user")], token_id=token.pk)
    anon = hub.open(Viewer(None), [Stream("public")])
    try:
        first = await _clip(client, alice, "one", visibility="private")
        hub.dispatch(Event("clip.created", alice.account.pk, {"clip_id": int(first)}))
        assert await mine.receive(0) == []  # dispatch only queued it
        await hub.drain()
        (message,) = await mine.receive(1) or []
        assert json.loads(message.payload)["id"] == first

        r = await client.post(
            "/oauth/revoke",
            data={
                "client_id": bob.client_id,
                "client_secret": bob.client_secret,
                "token": bob.token,
            },
        )
        assert r.status_code == 200
        second = await _clip(client, alice, "two", visibility="private")
        hub.dispatch(Event("clip.created", alice.account.pk, {"clip_id": int(second)}))
        await hub.drain()
        assert await mine.receive(1) is None  # ended, and the clip was never handed over
        assert mine.reason == TOKEN_ENDED
        assert hub.connections == 1 and not anon.closed

        # the periodic check finds what ended between events
        carol = await login(client, await local_account("carol"))
        row = await OAuthAccessToken.get(token=carol.token)
        theirs = [hub.open(_viewer(carol), [Stream("public")], token_id=row.pk) for _ in "ab"]
        assert await hub.recheck() == 0
        await Account.filter(pk=carol.account.pk).update(suspended_at=utcnow())
        assert await hub.recheck() == 2
        assert all(c.closed for c in theirs) and hub.connections == 1
    finally:
        await hub.stop()
    assert anon.closed and hub.connections == 0


async def test_hub_limits() -> None:
    hub = Hub()
    limits = Limits(per_ip=2, per_token=1)
    try:
        first = hub.open(Viewer(None), ip="2001:db8::1", limits=limits)
        hub.open(Viewer(None), ip="2001:db8::ffff", limits=limits)  # the same /64
        with pytest.raises(TooManyStreams) as refused:
            hub.open(Viewer(None), ip="2001:db8::2", limits=limits)
        assert refused.value.status == 429 and "address" in refused.value.message
        hub.open(Viewer(None), ip="2001:db8:0:1::1", limits=limits)  # another /64
        hub.close(first)
        hub.close(first)  # closing twice counts once
        hub.open(Viewer(None), ip="2001:db8::3", limits=limits)
        with pytest.raises(TooManyStreams):
            hub.open(Viewer(None), ip="2001:db8::4", limits=limits)

        hub.open(Viewer(None), ip="192.0.2.1", token_id=7, limits=limits)
        with pytest.raises(TooManyStreams) as refused:
            hub.open(Viewer(None), ip="192.0.2.2", token_id=7, limits=limits)
        assert "token" in refused.value.message
        hub.open(Viewer(None), ip="::ffff:192.0.2.1", limits=limits)  # 192.0.2.1's second
        with pytest.raises(TooManyStreams):
            hub.open(Viewer(None), ip="192.0.2.1", limits=limits)

        conn = hub.open(Viewer(None), [Stream("public")])
        for n in range(MAX_SUBSCRIPTIONS - 1):
            conn.subscribe(Stream("hashtag", f"t{n}"))
        with pytest.raises(TooManyStreams):
            conn.subscribe(Stream("hashtag", "one-too-many"))
        # a connection that falls behind keeps the newest QUEUE_SIZE messages
        conn.push([Message(["public"], "delete", str(n)) for n in range(QUEUE_SIZE + 5)])
        batch = await conn.receive(0)
        assert batch is not None and len(batch) == QUEUE_SIZE and batch[0].payload == "5"
    finally:
        await hub.stop()
