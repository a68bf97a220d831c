"""The streaming API against real running instances: WebSocket (websockets) and SSE (httpx).

Covers update/status.update/delete/notification events on user, public and hashtag streams,
subscribe/unsubscribe messages, auth and scopes, visibility (a followers-only clip never
reaches a stranger), events made by another process (through the outbox the web process
runs without Redis, through a worker's outbox and Redis pub/sub with it), streams ending with
their token (revoked, expired, deleted with its app, the account suspended or disabled; in two
web processes with Redis), and the limits per token and per client address.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from instance import ROOT, Instance, cli_ok, fedisora, finished_render, running_instance
from websockets.asyncio.client import ClientConnection, connect

from fedisora.services.events import Event
from fedisora.streaming.broker import Hub, Publisher, RedisRelay
from fedisora.streaming.channels import Stream, Viewer

PASSWORD = "a long password 1"
WAIT = 15.0
# A stream must end this soon after its token does: the hub re-checks every 2 s.
ENDS_WITHIN = 6.0
PER_IP, PER_TOKEN = 16, 3
_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(
        tmp_path_factory.mktemp("streaming"),
        FEDISORA_STREAMS_PER_IP=str(PER_IP),
        FEDISORA_STREAMS_PER_TOKEN=str(PER_TOKEN),
    ) as inst:
        yield inst


def in_instance(instance: Instance, body: str) -> str:
    """Run *body* (async code with ``account(username)``) in a separate process on the
    instance's database, as a worker would; returns what it prints."""
    script = (
        textwrap.dedent(
            """
            import asyncio
            from fedisora import urls
            from fedisora.config import load_settings
            from fedisora.db import close_db, init_db
            from fedisora.models import Account, MediaFile, MediaKind, NotificationType

            async def account(username):
                return await Account.get(username=username, domain=None)

            async def main():
                settings = load_settings()
                urls.configure(settings)
                await init_db(settings)
            """
        )
        + textwrap.indent(textwrap.dedent(body), " " * 4)
        + "\n    await close_db()\n\nasyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=instance.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return str(done.stdout).strip()


def settled(instance: Instance) -> None:
    """Wait until the instance's outbox has processed every event committed so far (its
    stream messages go out just after the requests that made them, as on Mastodon)."""
    in_instance(
        instance,
        """
        from fedisora.models import OutboxEvent
        for _ in range(300):
            if not await OutboxEvent.filter(state="pending").exists():
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit("the outbox did not settle")
        """,
    )


def sign_up(instance: Instance, username: str, scope: str = "read write follow push") -> str:
    """Register *username* through the API and return a password-grant token for *scope*."""
    return sign_up_app(instance, username, scope)[0]


def sign_up_app(
    instance: Instance, username: str, scope: str = "read write follow push"
) -> tuple[str, dict[str, str]]:
    """:func:`sign_up`, also returning the app's ``client_id`` and ``client_secret``.

    Each call comes from a loopback address of its own: sign-ups are limited per address."""
    transport = httpx.HTTPTransport(local_address=f"127.0.1.{next(_addresses)}")
    with httpx.Client(base_url=instance.url, transport=transport, timeout=30) as http:
        app = http.post(
            "/api/v1/apps",
            data={
                "client_name": "streaming tests",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write follow push",
            },
        ).json()
        creds = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
        exists = http.get("/api/v1/accounts/lookup", params={"acct": username})
        if exists.status_code == 404:
            app_token = http.post(
                "/oauth/token", data={**creds, "grant_type": "client_credentials"}
            ).json()["access_token"]
            made = http.post(
                "/api/v1/accounts",
                headers={"Authorization": f"Bearer {app_token}"},
                data={
                    "username": username,
                    "email": f"{username}@example.com",
                    "password": PASSWORD,
                    "agreement": "true",
                },
            )
            assert made.status_code == 200, made.text
        r = http.post(
            "/oauth/token",
            data={
                **creds,
                "grant_type": "password",
                "username": f"{username}@example.com",
                "password": PASSWORD,
                "scope": scope,
            },
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token, creds


class Api:
    def __init__(self, instance: Instance, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=instance.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = await self.http.request(method, path, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()


def ws_url(instance: Instance, query: str) -> str:
    return str(instance.url).replace("http://", "ws://") + "/api/v1/streaming?" + query


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


class Sse:
    """A server-sent event reader over an httpx stream."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines

    async def _next(self) -> tuple[str, str]:
        event = data = ""
        async for line in self.lines:
            if line.startswith(":"):
                if line in (":)", ":thump"):
                    return "comment", line
                continue
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and event:
                return event, data
        raise AssertionError("stream ended")

    async def next(self) -> tuple[str, str]:
        return await asyncio.wait_for(self._next(), WAIT)

    async def next_event(self) -> tuple[str, str]:
        """The next event that is not a heartbeat (one may come first on a slow machine)."""
        while True:
            event, data = await self.next()
            if event != "comment":
                return event, data

    async def ends(self) -> None:
        """The response ends, with nothing but heartbeats before."""
        while True:
            try:
                got = await self.next()
            except AssertionError:
                return
            assert got == ("comment", ":thump"), got


@asynccontextmanager
async def sse(instance: Instance, path: str, token: str | None = None) -> AsyncIterator[Sse]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx.AsyncClient(base_url=instance.url, timeout=httpx.Timeout(30, read=60)) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = Sse(response.aiter_lines())
        assert await reader.next() == ("comment", ":)")  # subscribed from here on
        yield reader


async def test_streams_end_to_end(instance: Instance) -> None:
    alice_token = sign_up(instance, "alice")
    bob_token = sign_up(instance, "bob")
    carol_token = sign_up(instance, "carol")
    alice, bob, carol = (Api(instance, t) for t in (alice_token, bob_token, carol_token))
    alice_id = (await alice.call("GET", "/api/v1/accounts/verify_credentials"))["id"]
    await bob.call("POST", f"/api/v1/accounts/{alice_id}/follow")
    settled(instance)  # the follow's notification is streamed before alice connects

    async with (
        connect(ws_url(instance, f"stream=user&access_token={bob_token}")) as bob_ws,
        connect(
            ws_url(instance, "stream=public"),
            additional_headers={"Authorization": f"Bearer {carol_token}"},
        ) as carol_ws,
        connect(ws_url(instance, "stream=user"), subprotocols=[alice_token]) as alice_ws,  # type: ignore[list-item]
        sse(instance, "/api/v1/streaming/public/local", bob_token) as bob_public,
        sse(instance, "/api/v1/streaming/hashtag?tag=Clip") as anon_tag,
        sse(instance, "/api/v1/streaming/user", carol_token) as carol_user,
    ):
        # carol also subscribes to her user stream over the same socket
        await carol_ws.send(json.dumps({"type": "subscribe", "stream": "user"}))
        await carol_ws.send(json.dumps({"type": "subscribe", "stream": "nonsense"}))
        assert await next_message(carol_ws) == {"error": "Unknown stream type", "status": 400}

        # A public clip reaches bob's home, public streams and the hashtag stream
        media = finished_render(instance, "alice")
        clip = await alice.call(
            "POST", "/api/v1/statuses", data={"status": "hello #clip", "media_ids[]": media}
        )
        msg = await next_message(bob_ws)
        assert msg["stream"] == ["user"] and msg["event"] == "update"
        assert json.loads(msg["payload"])["id"] == clip["id"]
        msg = await next_message(carol_ws)
        assert msg["stream"] == ["public"] and msg["event"] == "update"
        status = json.loads(msg["payload"])
        assert status["id"] == clip["id"] and status["media_attachments"][0]["type"] == "video"
        event, data = await bob_public.next()
        assert event == "update" and json.loads(data)["id"] == clip["id"]
        event, data = await anon_tag.next()
        assert event == "update" and json.loads(data)["tags"][0]["name"] == "clip"
        # alice's own home feed has it too
        msg = await next_message(alice_ws)
        assert msg["event"] == "update" and json.loads(msg["payload"])["id"] == clip["id"]

        # A followers-only clip: bob (a follower) gets it, carol and public streams never
        media = finished_render(instance, "alice")
        private = await alice.call(
            "POST",
            "/api/v1/statuses",
            data={"status": "secret #clip", "media_ids[]": media, "visibility": "private"},
        )
        msg = await next_message(bob_ws)
        assert msg["event"] == "update" and json.loads(msg["payload"])["id"] == private["id"]
        assert json.loads(msg["payload"])["visibility"] == "private"
        msg = await next_message(alice_ws)
        assert json.loads(msg["payload"])["id"] == private["id"]

        # bob favourites the public clip: alice gets a notification
        await bob.call("POST", f"/api/v1/statuses/{clip['id']}/favourite")
        msg = await next_message(alice_ws)
        assert msg["event"] == "notification"
        note = json.loads(msg["payload"])
        assert note["type"] == "favourite" and note["status"]["id"] == clip["id"]
        assert note["account"]["acct"] == "bob"

        # an edit is status.update; the next thing carol sees is that, not the private clip
        await alice.call("PUT", f"/api/v1/statuses/{clip['id']}", data={"status": "edited #clip"})
        msg = await next_message(carol_ws)
        assert msg["stream"] == ["public"] and msg["event"] == "status.update"
        assert json.loads(msg["payload"])["id"] == clip["id"]
        assert "edited" in json.loads(msg["payload"])["content"]
        event, data = await bob_public.next()
        assert event == "status.update" and json.loads(data)["id"] == clip["id"]
        event, data = await anon_tag.next()
        assert event == "status.update" and json.loads(data)["id"] == clip["id"]
        for ws in (bob_ws, alice_ws):
            msg = await next_message(ws)
            assert msg["event"] == "status.update" and msg["stream"] == ["user"]

        # a deletion: the id, on every stream that had the clip
        r = await alice.http.delete(f"/api/v1/statuses/{clip['id']}")
        assert r.status_code == 200
        assert await next_message(carol_ws) == {
            "stream": ["public"],
            "event": "delete",
            "payload": clip["id"],
        }
        assert await bob_public.next() == ("delete", clip["id"])
        assert await anon_tag.next() == ("delete", clip["id"])
        for ws in (bob_ws, alice_ws):
            msg = await next_message(ws)
            assert (msg["event"], msg["payload"]) == ("delete", clip["id"])

        # carol's SSE user stream received nothing at all: the first thing it gets is a
        # notification of her own (bob follows her)
        carol_id = (await carol.call("GET", "/api/v1/accounts/verify_credentials"))["id"]
        await bob.call("POST", f"/api/v1/accounts/{carol_id}/follow")
        event, data = await carol_user.next()
        assert event == "notification" and json.loads(data)["type"] == "follow"
        msg = await next_message(carol_ws)  # and on the socket she subscribed with a message
        assert msg["stream"] == ["user"] and json.loads(msg["payload"])["type"] == "follow"

        # unsubscribing from public: a new public clip then reaches only the other streams
        await carol_ws.send(json.dumps({"type": "unsubscribe", "stream": "public"}))
        await asyncio.sleep(0.5)  # the server reads the message before the next event
        media = finished_render(instance, "alice")
        third = await alice.call(
            "POST", "/api/v1/statuses", data={"status": "third", "media_ids[]": media}
        )
        event, data = await bob_public.next()
        assert event == "update" and json.loads(data)["id"] == third["id"]
        for ws in (alice_ws, bob_ws):
            msg = await next_message(ws)
            assert msg["event"] == "update" and json.loads(msg["payload"])["id"] == third["id"]
        # carol follows bob, who boosts the clip: it reaches her home as a reblog, and that
        # (not the public clip she unsubscribed from) is the next thing on her socket
        bob_id = (await bob.call("GET", "/api/v1/accounts/verify_credentials"))["id"]
        await carol.call("POST", f"/api/v1/accounts/{bob_id}/follow")
        msg = await next_message(bob_ws)
        assert msg["event"] == "notification" and json.loads(msg["payload"])["type"] == "follow"
        await bob.call("POST", f"/api/v1/statuses/{third['id']}/reblog")
        msg = await next_message(carol_ws)
        assert msg["stream"] == ["user"] and msg["event"] == "update"
        boost = json.loads(msg["payload"])
        assert boost["reblog"]["id"] == third["id"] and boost["account"]["acct"] == "bob"
        msg = await next_message(alice_ws)  # the boost notification
        assert json.loads(msg["payload"])["type"] == "reblog"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(carol_ws.recv(), 1.5)

    for http in (alice.http, bob.http, carol.http):
        await http.aclose()


async def test_stream_auth_and_errors(instance: Instance) -> None:
    token = sign_up(instance, "dave")
    write_only = sign_up(instance, "dave", scope="write")
    async with httpx.AsyncClient(base_url=instance.url, timeout=30) as http:
        r = await http.get("/api/v1/streaming/user")
        assert r.status_code == 401 and set(r.json()) == {"error"}
        r = await http.get("/api/v1/streaming/user", params={"access_token": "nope"})
        assert r.status_code == 401
        r = await http.get(
            "/api/v1/streaming/user", headers={"Authorization": f"Bearer {write_only}"}
        )
        assert r.status_code == 401 and "scopes" in r.json()["error"]
        r = await http.get("/api/v1/streaming/hashtag")
        assert r.status_code == 400 and r.json() == {"error": "No tag for stream provided"}
        r = await http.get("/api/v1/streaming", params={"stream": "list", "list": "1"})
        assert r.status_code == 400
        assert (await http.get("/api/v1/streaming/health")).text == "OK"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(ws_url(instance, "stream=user&access_token=nope")):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(ws_url(instance, f"stream=user&access_token={write_only}")):
            pass
    assert refused.value.response.status_code == 401
    async with connect(ws_url(instance, "stream=public")) as anon:
        await anon.send(json.dumps({"type": "subscribe", "stream": "user"}))
        msg = await next_message(anon)
        assert msg["status"] == 401 and msg["error"]
        await anon.send("not json")
        assert (await next_message(anon))["status"] == 400
        await anon.send(b"\xff\xfe")  # a binary frame that is not even UTF-8
        assert await next_message(anon) == {"error": "Invalid JSON message", "status": 400}
        await anon.send(json.dumps({"type": "subscribe", "stream": "hashtag", "tag": "x" * 9000}))
        assert await next_message(anon) == {"error": "Message too long", "status": 400}
        await anon.send(
            json.dumps({"type": "subscribe", "stream": "hashtag", "tag": "ok"}).encode()
        )
        await anon.send(json.dumps({"type": "subscribe", "stream": "direct"}))  # still served
        assert (await next_message(anon))["error"] == "Unknown stream type"
        # Read by the one JSON reader: too deep (a RecursionError before), or a lone surrogate.
        for bad in (
            "[" * 4000,  # under the message cap, far deeper than the reader allows
            "[" * 500 + "]" * 500,
            '{"type": "subscribe", "tag": "\\ud800"}',
        ):
            await anon.send(bad)
            assert (await next_message(anon))["status"] == 400
    async with sse(instance, "/api/v1/streaming/user/notification", token):
        pass  # subscribed (the ``:)`` comment came), and disconnecting is clean


async def test_events_from_another_process_reach_streams(instance: Instance) -> None:
    """Without Redis, a notification a worker process writes (a finished render) is an
    outbox row that the web process's runner processes and streams to its owner."""
    token = sign_up(instance, "erin")
    async with connect(ws_url(instance, f"stream=user:notification&access_token={token}")) as ws:
        in_instance(
            instance,
            """
            from fedisora.services.notify import notify
            await notify(await account("erin"), NotificationType.RENDER_FINISHED,
                         dedupe_key="render:stream-test")
            """,
        )
        msg = await next_message(ws)
        assert msg["stream"] == ["user:notification"] and msg["event"] == "notification"
        assert json.loads(msg["payload"])["type"] == "fedisora.render_finished"


def test_server_stops_with_open_event_streams(tmp_path: Path) -> None:
    """An open SSE response never ends by itself: ``serve`` still stops within seconds."""
    with (
        running_instance(tmp_path / "stopping") as inst,
        httpx.Client(timeout=30) as http,
        http.stream("GET", f"{inst.url}/api/v1/streaming/public") as response,
    ):
        assert next(response.iter_lines()) == ":)"
        started = time.monotonic()
        inst.process.terminate()
        inst.process.wait(20)
        assert time.monotonic() - started < 15


async def test_sse_heartbeat() -> None:
    from fedisora.api.streaming import sse_lines

    hub = Hub()
    conn = hub.open(Viewer(None), [Stream("public")])
    lines = sse_lines(conn, heartbeat=0.05)
    assert await anext(lines) == ":)\n\n"
    assert hub.connections == 1
    assert await anext(lines) == ":thump\n\n"
    hub.close(conn, "done")  # as the hub ends a stream whose token ended: the text ends
    with pytest.raises(StopAsyncIteration):
        await anext(lines)
    assert hub.connections == 0
    await hub.stop()


async def test_redis_relay_carries_events_between_processes(redis_url: str) -> None:
    """A Publisher (as in a worker) and a RedisRelay (as in the web process) over real Redis;
    events not meant for streams are not published at all."""
    hub = Hub()
    queue = hub.connect()
    relay = RedisRelay(redis_url, hub)
    publisher = Publisher(redis_url)
    await relay.start()
    try:
        await publisher(Event("like.created", 1, {"like_id": 3}))
        await publisher(Event("notification.created", 7, {"notification_id": 42}))
        got = await asyncio.wait_for(queue.get(), WAIT)
        assert got == Event("notification.created", 7, {"notification_id": 42})
        assert queue.empty()
    finally:
        await publisher.close()
        await relay.stop()


@pytest.fixture(scope="module")
def redis_instance(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Instance]:
    """Two web processes sharing the database and Redis, and a worker for the default queue
    (with Redis, the outbox that turns events into stream messages runs there). No render
    worker: renders stay queued."""
    data = tmp_path_factory.mktemp("streaming-redis")
    with running_instance(data, "--workers", "2", FEDISORA_REDIS_URL=redis_url) as inst:
        worker = subprocess.Popen(
            [sys.executable, "-m", "fedisora", "worker", "--queues", "default"],
            env=inst.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield inst
        finally:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


async def test_worker_events_over_redis(redis_instance: Instance) -> None:
    """With Redis, a worker process runs the outbox and publishes its events (as ``fedisora
    worker`` does)."""
    token = sign_up(redis_instance, "frank")
    async with connect(ws_url(redis_instance, f"stream=user&access_token={token}")) as ws:
        in_instance(
            redis_instance,
            """
            from fedisora.services.notify import notify
            from fedisora.services.outbox import build_machine
            from fedisora.streaming.broker import start_publisher
            from fedisora.work.engine import Engine
            from fedisora.work.runner import InProcessRunner
            stop = await start_publisher(settings.redis_url)
            await notify(await account("frank"), NotificationType.RENDER_FAILED,
                         dedupe_key="render:redis-test")
            await InProcessRunner(Engine([build_machine()])).drain()
            await stop()
            """,
        )
        msg = await next_message(ws)
        assert msg["event"] == "notification"
        assert json.loads(msg["payload"])["type"] == "fedisora.render_failed"


def renders(instance: Instance, username: str, count: int) -> list[str]:
    """*count* postable videos of *username* (see ``finished_render``), made in one process."""
    out = in_instance(
        instance,
        f"""
        owner = await account({username!r})
        for n in range({count}):
            media = await MediaFile.create(
                account=owner, kind=MediaKind.VIDEO, file=f"clips/{username}-{{n}}.mp4",
                content_type="video/mp4", width=256, height=448, duration=3.0, fps=16.0,
                frames=49, provenance={{"state": "trusted", "local": True}},
            )
            print(media.pk)
        """,
    )
    return out.split()


async def ws_ends(ws: ClientConnection) -> int:
    """The socket is closed by the server (nothing else arriving first); its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        got = await asyncio.wait_for(ws.recv(), WAIT)
        raise AssertionError(f"a message after the token ended: {got}")
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_streams_end_with_their_token(instance: Instance) -> None:
    """A token revoked, expired, deleted with its app, or whose account is suspended or
    disabled (each done as an operator or another process would) ends its event stream and
    its WebSocket within seconds, and a private clip posted right after is never delivered."""
    poster_token = sign_up(instance, "pia")
    poster = Api(instance, poster_token)
    poster_id = (await poster.call("GET", "/api/v1/accounts/verify_credentials"))["id"]
    causes = ["revoke", "expire", "app deleted", "suspend", "disable"]
    viewers: dict[str, tuple[str, dict[str, str]]] = {}
    for n, cause in enumerate(causes):
        token, creds = sign_up_app(instance, f"watcher{n}")
        viewers[cause] = token, creds
        await Api(instance, token).call("POST", f"/api/v1/accounts/{poster_id}/follow")
    media = renders(instance, "pia", 3)

    async def post_private() -> str:
        clip = await poster.call(
            "POST",
            "/api/v1/statuses",
            data={"status": "followers only", "media_ids[]": media.pop(), "visibility": "private"},
        )
        return str(clip["id"])

    def end(cause: str) -> None:
        token, creds = viewers[cause]
        n = causes.index(cause)
        if cause == "revoke":
            r = httpx.post(f"{instance.url}/oauth/revoke", data={**creds, "token": token})
            assert r.status_code == 200, r.text
        elif cause == "expire":
            in_instance(
                instance,
                f"""
                from fedisora.models import OAuthAccessToken, utcnow
                await OAuthAccessToken.filter(token={token!r}).update(expires_at=utcnow())
                """,
            )
        elif cause == "app deleted":
            in_instance(
                instance,
                f"""
                from fedisora.models import OAuthApplication
                await OAuthApplication.filter(client_id={creds["client_id"]!r}).delete()
                """,
            )
        elif cause == "suspend":
            cli_ok(fedisora(["suspend", f"watcher{n}"], instance.env))
        else:
            in_instance(
                instance,
                f"""
                from fedisora.models import User
                owner = await account("watcher{n}")
                await User.filter(account_id=owner.pk).update(disabled=True)
                """,
            )

    async with AsyncExitStack() as stack:
        streams: dict[str, tuple[Sse, ClientConnection]] = {}
        for cause, (token, _) in viewers.items():
            reader = await stack.enter_async_context(sse(instance, "/api/v1/streaming/user", token))
            ws = await stack.enter_async_context(
                connect(ws_url(instance, f"stream=user&access_token={token}"))
            )
            streams[cause] = reader, ws
        first = await post_private()
        for reader, ws in streams.values():  # all alive
            event, data = await reader.next_event()
            assert event == "update" and json.loads(data)["id"] == first
            msg = await next_message(ws)
            assert msg["event"] == "update" and json.loads(msg["payload"])["id"] == first

        took: dict[str, float] = {}
        for cause in causes:
            end(cause)
            started = time.monotonic()
            if cause in ("suspend", "disable"):  # an event at once: checked before delivery
                clip = await post_private()
                for later in causes[causes.index(cause) + 1 :]:  # others still get it
                    event, data = await streams[later][0].next_event()
                    assert event == "update" and json.loads(data)["id"] == clip
                    msg = await next_message(streams[later][1])
                    assert json.loads(msg["payload"])["id"] == clip
            reader, ws = streams[cause]
            await reader.ends()
            assert await ws_ends(ws) == 1008
            took[cause] = time.monotonic() - started
        assert max(took.values()) < ENDS_WITHIN, took
    await poster.http.aclose()


async def test_stream_limits(instance: Instance) -> None:
    """Per token and per client address: the stream over the limit gets 429 with an error,
    on the event stream and on the WebSocket upgrade alike; a closed stream frees its place."""
    token = sign_up(instance, "sam")
    bearer = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/streaming/public"
    async with httpx.AsyncClient(base_url=instance.url, timeout=30) as http:
        async with AsyncExitStack() as stack:
            for _ in range(PER_TOKEN):
                await stack.enter_async_context(sse(instance, path, token))
            r = await http.get(path, headers=bearer)
            assert r.status_code == 429
            assert r.json() == {"error": "Too many open streams for this access token"}
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(ws_url(instance, f"stream=public&access_token={token}")):
                    pass
            assert refused.value.response.status_code == 429
        for _ in range(50):  # the server notices the closed streams within moments
            if await _has_room(http, path, bearer):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("a closed stream did not free its place")

    # per address: from another loopback address, so the other tests' streams do not count
    here = "127.0.0.77"
    transport = httpx.AsyncHTTPTransport(local_address=here)
    async with (
        httpx.AsyncClient(base_url=instance.url, transport=transport, timeout=30) as http,
        AsyncExitStack() as stack,
    ):
        for _ in range(PER_IP):
            response = await stack.enter_async_context(http.stream("GET", path))
            assert response.status_code == 200
        r = await http.get(path)
        assert r.status_code == 429
        assert r.json() == {"error": "Too many open streams from this address"}
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(ws_url(instance, "stream=public"), local_addr=(here, 0)):
                pass
        assert refused.value.response.status_code == 429
        async with connect(ws_url(instance, "stream=public")):  # other addresses are not limited
            pass


async def _has_room(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> bool:
    async with http.stream("GET", path, headers=headers) as response:
        return response.status_code == 200


async def test_a_revoked_token_ends_its_streams_in_every_web_process(
    redis_instance: Instance,
) -> None:
    """Streams of one token spread over two web processes: revoking it in one request ends
    them all, and the private clip posted right after reaches none."""
    poster = Api(redis_instance, sign_up(redis_instance, "quinn"))
    poster_id = (await poster.call("GET", "/api/v1/accounts/verify_credentials"))["id"]
    token, creds = sign_up_app(redis_instance, "rhea")
    await Api(redis_instance, token).call("POST", f"/api/v1/accounts/{poster_id}/follow")
    media = renders(redis_instance, "quinn", 2)

    async def post_private() -> str:
        clip = await poster.call(
            "POST",
            "/api/v1/statuses",
            data={"status": "followers only", "media_ids[]": media.pop(), "visibility": "private"},
        )
        return str(clip["id"])

    async with AsyncExitStack() as stack:
        readers = [
            await stack.enter_async_context(sse(redis_instance, "/api/v1/streaming/user", token))
            for _ in range(4)
        ]
        sockets = [
            await stack.enter_async_context(
                connect(ws_url(redis_instance, f"stream=user&access_token={token}"))
            )
            for _ in range(4)
        ]
        first = await post_private()
        for reader in readers:
            assert json.loads((await reader.next())[1])["id"] == first
        for ws in sockets:
            assert json.loads((await next_message(ws))["payload"])["id"] == first
        r = await poster.http.post("/oauth/revoke", data={**creds, "token": token})
        assert r.status_code == 200
        started = time.monotonic()
        await post_private()
        for reader in readers:
            await reader.ends()
        for ws in sockets:
            assert await ws_ends(ws) == 1008
        took = time.monotonic() - started
        assert took < ENDS_WITHIN, took
    await poster.http.aclose()


async def test_render_progress_streams_are_held_to_the_same_rules(
    redis_instance: Instance,
) -> None:
    """A render's progress events (``/api/fedisora/v1/renders/:id/events``) count against the
    stream limit per token and end with their token. (No worker runs for this instance, so
    the render stays queued and its stream open.)"""
    token, creds = sign_up_app(redis_instance, "sara")
    api = Api(redis_instance, token)
    made = await api.http.post("/api/fedisora/v1/renders", data={"prompt": "waves"})
    assert made.status_code == 202, made.text
    render = made.json()
    path = f"/api/fedisora/v1/renders/{render['id']}/events"
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=redis_instance.url, timeout=httpx.Timeout(30, read=60)) as http,
        AsyncExitStack() as stack,
    ):
        streams = []
        refused = False
        # 20 per token (the default) in each of the two processes: the 41st is refused at
        # the latest
        for _ in range(41):
            response = await stack.enter_async_context(http.stream("GET", path, headers=headers))
            if response.status_code == 429:
                assert json.loads(await response.aread()) == {
                    "error": "Too many open streams for this access token"
                }
                refused = True
                break
            assert response.status_code == 200
            lines = response.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            streams.append(lines)
        assert refused and 20 <= len(streams) <= 40
        r = await http.post("/oauth/revoke", data={**creds, "token": token})
        assert r.status_code == 200
        started = time.monotonic()
        for lines in streams:
            async for line in lines:  # progress events of the queued render, then the end
                assert not line or line.startswith(("id:", "event: progress", "data:", ":"))
        took = time.monotonic() - started
        assert took < ENDS_WITHIN, took
    await api.http.aclose()
