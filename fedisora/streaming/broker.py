"""Getting domain events from the outbox to the web process's streaming connections.

Events reach streams only through the outbox machine (:mod:`fedisora.services.outbox`), which
hands each processed event to the listeners subscribed in its process:

- With Redis (``FEDISORA_REDIS_URL``), the arq workers run the outbox; each publishes the
  events it processes on one pub/sub channel through a :class:`Publisher`
  (:func:`start_publisher`), and each web process subscribes to that channel and hands what
  arrives to its :class:`Hub` (:func:`start_streaming`).
- Without Redis (the embedded default), the web process runs the default queue in-process,
  the outbox with it, and hands events to its hub directly. Events written by another
  process (the render worker's notifications) are outbox rows like any other: the web
  process's runner finds them within its poll interval.

Streams are best effort: a stream that misses a message (a restart, a slow client, a kill
between an event's processing and its message) is caught up by the REST timelines, as on
Mastodon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from fedisora.services import events
from fedisora.services.events import Event
from fedisora.streaming.hub import STREAMED, Hub

__all__ = [
    "CHANNEL",
    "Hub",
    "Publisher",
    "RedisRelay",
    "StreamingService",
    "decode",
    "encode",
    "start_publisher",
    "start_streaming",
]

log = logging.getLogger("fedisora.streaming")

CHANNEL = "fedisora:streaming:events"


def encode(event: Event) -> str:
    return json.dumps(
        {"kind": event.kind, "actor_id": event.actor_id, "data": event.data}, default=str
    )


def decode(raw: str | bytes) -> Event | None:
    """The event in *raw*, or None for anything malformed (never trusted blindly)."""
    try:
        body = json.loads(raw)
        kind, actor_id, data = body["kind"], body["actor_id"], body["data"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(kind, str) or not isinstance(actor_id, int) or not isinstance(data, dict):
        return None
    return Event(kind, actor_id, data)


class Publisher:
    """Publishes this process's streamable events on the Redis channel."""

    def __init__(self, redis_url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(redis_url)

    async def __call__(self, event: Event) -> None:
        if event.kind in STREAMED:
            await self._redis.publish(CHANNEL, encode(event))

    async def close(self) -> None:
        await self._redis.aclose()


class RedisRelay:
    """Subscribes to the Redis channel and hands each event to the hub (reconnecting)."""

    def __init__(self, redis_url: str, hub: Hub) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(redis_url)
        self.hub = hub
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        # Subscribed before the app serves, so no event published after startup is missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._ready.set()
                    delay = 0.5
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=30
                        )
                        if message is None or message.get("type") != "message":
                            continue
                        event = decode(message["data"])
                        if event is not None:
                            self.hub.dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("streaming relay lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)


Closer = Callable[[], Awaitable[None]]


class StreamingService:
    """What the web process runs for streaming: the hub and whatever feeds it."""

    def __init__(self, hub: Hub, closers: list[Closer]) -> None:
        self.hub = hub
        self._closers = closers

    async def stop(self) -> None:
        for close in reversed(self._closers):
            try:
                await close()
            except Exception:
                log.warning("streaming shutdown step failed", exc_info=True)
        await self.hub.stop()


async def start_streaming(redis_url: str | None) -> StreamingService:
    """Start streaming in the web process (call after the database is up): with Redis, the
    relay of the events the workers publish; without, the hub hears the events this
    process's outbox runner processes."""
    hub = Hub()
    closers: list[Closer] = []
    if redis_url:
        relay = RedisRelay(redis_url, hub)
        await relay.start()
        closers.append(relay.stop)
    else:

        async def local(event: Event) -> None:
            hub.dispatch(event)

        events.subscribe(local)

        async def _unsubscribe_local() -> None:
            events.unsubscribe(local)

        closers.append(_unsubscribe_local)
    return StreamingService(hub, closers)


async def start_publisher(redis_url: str | None) -> Closer:
    """In a worker process: publish the events its outbox runner processes to the web
    processes. Returns the stopper.

    Without Redis there is nothing to publish to: the web process runs the outbox itself
    (see the module docstring).
    """
    if not redis_url:

        async def nothing() -> None:
            return None

        return nothing
    publisher = Publisher(redis_url)
    events.subscribe(publisher)

    async def stop() -> None:
        events.unsubscribe(publisher)
        await publisher.close()

    return stop
