"""Getting domain events from every process to the web process's streaming connections.

- With Redis (``FEDISORA_REDIS_URL``), every process (web, arq workers, render workers) publishes
  its events on one pub/sub channel through a :class:`Publisher`; each web process subscribes
  to that channel and hands what arrives to its :class:`Hub`.
- Without Redis (the embedded default), the web process runs the default queue (deliveries,
  inbox) in-process, so its own events reach the hub directly. The one other process is the
  render worker, whose only events are notifications (render finished or failed): a
  :class:`NotificationPoller` reads new ``Notification`` rows every couple of seconds and
  passes on those no in-process event announced. Events are never the record: a stream that
  misses one (a restart, a slow client) is caught up by the REST timelines, as on Mastodon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from fedisora.models import Notification
from fedisora.services import events
from fedisora.services.events import Event
from fedisora.streaming.hub import STREAMED, Hub

__all__ = [
    "CHANNEL",
    "Hub",
    "NotificationPoller",
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


class NotificationPoller:
    """Announces notifications written by other processes (the render worker) to the hub.

    It remembers which notification ids were already dispatched (by the in-process event or by
    an earlier poll) and re-reads a few ids below its high-water mark, since on PostgreSQL a
    lower id can commit after a higher one.
    """

    LOOKBACK = 50

    def __init__(self, hub: Hub, interval: float = 2.0) -> None:
        self.hub = hub
        self.interval = interval
        self._seen: set[int] = set()
        self._mark: int | None = None
        self._start = 0
        self._task: asyncio.Task[None] | None = None

    def seen(self, notification_id: int) -> bool:
        """Record *notification_id* as dispatched; whether it already was."""
        if notification_id in self._seen or notification_id <= self._floor():
            return True
        self._seen.add(notification_id)
        return False

    def _floor(self) -> int:
        """Ids at or below this are never dispatched (older than the poller, or long seen)."""
        if self._mark is None:
            return -1
        return max(self._start, self._mark - self.LOOKBACK)

    async def start(self) -> None:
        with contextlib.suppress(Exception):  # no database yet: the first poll sets the mark
            await self.poll()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def poll(self) -> None:
        if self._mark is None:  # start from now: older notifications are not news
            last = await Notification.all().order_by("-id").first()
            self._mark = self._start = last.pk if last is not None else 0
            return
        mark = self._mark
        rows = (
            await Notification.filter(pk__gt=self._floor())
            .order_by("id")
            .values("id", "recipient_id")
        )
        for row in rows:
            pk = int(row["id"])
            if not self.seen(pk):
                self.hub.dispatch(
                    Event("notification.created", int(row["recipient_id"]), {"notification_id": pk})
                )
            mark = max(mark, pk)
        self._mark = mark
        self._seen = {pk for pk in self._seen if pk > self._floor()}

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except Exception:  # a locked or restarting database: try again next time
                log.warning("notification poll failed", exc_info=True)


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


async def start_streaming(redis_url: str | None, *, poll_interval: float = 2.0) -> StreamingService:
    """Start streaming in the web process (call after the database is up)."""
    hub = Hub()
    closers: list[Closer] = []
    if redis_url:
        publisher = Publisher(redis_url)
        relay = RedisRelay(redis_url, hub)
        await relay.start()
        events.subscribe(publisher)
        closers += [relay.stop, publisher.close]

        async def _unsubscribe_publisher() -> None:
            events.unsubscribe(publisher)

        closers.append(_unsubscribe_publisher)
    else:
        poller = NotificationPoller(hub, poll_interval)

        async def local(event: Event) -> None:
            if event.kind == "notification.created":
                note_id = event.data.get("notification_id")
                if isinstance(note_id, int) and poller.seen(note_id):
                    return
            hub.dispatch(event)

        events.subscribe(local)
        await poller.start()

        async def _unsubscribe_local() -> None:
            events.unsubscribe(local)

        closers += [_unsubscribe_local, poller.stop]
    return StreamingService(hub, closers)


async def start_publisher(redis_url: str | None) -> Closer:
    """In a worker process: publish its events to the web processes. Returns the stopper.

    Without Redis there is nothing to publish to: the web process polls for the only events
    a separate worker makes (see the module docstring).
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
