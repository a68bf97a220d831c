"""What each event means on each stream for one viewer (SQLite and PostgreSQL), and how a
notification written by another process reaches the hub without Redis (through the outbox)."""

from __future__ import annotations

import json

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account, rendered_video

from fedisora.models import NotificationType
from fedisora.services import events
from fedisora.services.events import Event
from fedisora.services.notify import notify
from fedisora.services.outbox import build_machine
from fedisora.streaming.broker import Hub, decode, encode, start_streaming
from fedisora.streaming.channels import (
    Stream,
    StreamError,
    Viewer,
    messages_for,
    parse_stream,
)
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
