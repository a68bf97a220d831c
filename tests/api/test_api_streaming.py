"""The streaming API against real running instances: WebSocket (websockets) and SSE (httpx).

Covers update/status.update/delete/notification events on user, public and hashtag streams,
subscribe/unsubscribe messages, auth and scopes, visibility (a followers-only clip never
reaches a stranger), and events made by another process: through the database poll without
Redis, through Redis pub/sub with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from instance import ROOT, Instance, finished_render, running_instance
from websockets.asyncio.client import ClientConnection, connect

from fedisora.services.events import Event
from fedisora.streaming.broker import Hub, Publisher, RedisRelay
from fedisora.streaming.channels import Stream, Viewer

PASSWORD = "a long password 1"
WAIT = 15.0


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("streaming")) as inst:
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


def sign_up(instance: Instance, username: str, scope: str = "read write follow push") -> str:
    """Register *username* through the API and return a password-grant token for *scope*."""
    with httpx.Client(base_url=instance.url, timeout=30) as http:
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
        return token


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
        # Read by the one JSON reader: too deep (a RecursionError before), or a lone surrogate.
        for bad in (
            "[" * 100_000,
            "[" * 500 + "]" * 500,
            '{"type": "subscribe", "tag": "\\ud800"}',
        ):
            await anon.send(bad)
            assert (await next_message(anon))["status"] == 400
    async with sse(instance, "/api/v1/streaming/user/notification", token):
        pass  # subscribed (the ``:)`` comment came), and disconnecting is clean


async def test_events_from_another_process_reach_streams(instance: Instance) -> None:
    """Without Redis, a notification a worker process writes (a finished render) is found by
    the web process's poll and streamed to its owner."""
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
    lines = sse_lines(hub, Viewer(None), Stream("public"), heartbeat=0.05)
    assert await anext(lines) == ":)\n\n"
    assert hub.connections == 1
    assert await anext(lines) == ":thump\n\n"
    await lines.aclose()
    assert hub.connections == 0


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
def redis_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    redis = os.environ.get("FEDISORA_TEST_REDIS", "redis://127.0.0.1:6379/9")
    data = tmp_path_factory.mktemp("streaming-redis")
    with running_instance(data, FEDISORA_REDIS_URL=redis) as inst:
        yield inst


async def test_worker_events_over_redis(redis_instance: Instance) -> None:
    """With Redis, a worker process publishes its events (as ``fedisora worker`` does)."""
    token = sign_up(redis_instance, "frank")
    async with connect(ws_url(redis_instance, f"stream=user&access_token={token}")) as ws:
        in_instance(
            redis_instance,
            """
            from fedisora.services.notify import notify
            from fedisora.streaming.broker import start_publisher
            stop = await start_publisher(settings.redis_url)
            await notify(await account("frank"), NotificationType.RENDER_FAILED,
                         dedupe_key="render:redis-test")
            await stop()
            """,
        )
        msg = await next_message(ws)
        assert msg["event"] == "notification"
        assert json.loads(msg["payload"])["type"] == "fedisora.render_failed"
