"""The open streams of one web process, and the fan-out of events to them.

:meth:`Hub.dispatch` is the one entry point for events (from this process's services, the
Redis relay or the notification poll). It only appends the event to the hub's inbox, so the
caller (a request that just posted a clip) never waits for the fan-out; a task of the hub's
own takes events from the inbox in order, computes each one's messages for every open stream
at once (:func:`~fedisora.streaming.channels.fan_out`: a fixed number of queries per event,
one rendered status per class of viewer) and hands each connection the shared
:class:`~fedisora.streaming.channels.Message` objects meant for it.

Authorisation does not outlive the token. Every :data:`RECHECK_INTERVAL` seconds the hub
re-checks the tokens of all its streams in one batched query (:func:`live_tokens`) and closes
the streams of any token that is no longer good, whatever ended it (revocation, deletion,
expiry, suspension, a disabled login, a password change) and in whichever process it happened:
several web processes share the database, and each checks its own streams. Polling was chosen
over signals from the revocation sites because it cannot miss a cause added later and needs no
cross-process channel. Between two checks, each event's signed-in recipients are checked the
same way before anything is handed to them, so nothing is delivered on a token after its
revocation has committed, even in the seconds before its streams are closed.

Limits: open streams per client address and per token (``FEDISORA_STREAMS_PER_IP``,
``FEDISORA_STREAMS_PER_TOKEN``, counted per web process), subscriptions per WebSocket
(:data:`MAX_SUBSCRIPTIONS`), messages waiting per connection (:data:`QUEUE_SIZE`: a connection
that falls behind loses its oldest messages rather than holding the others back; the messages
are shared objects, so a full queue costs pointers, not payloads) and events waiting for
fan-out (:data:`INBOX_SIZE`, the oldest dropped). Events are never the record: a stream that
misses one is caught up by the REST timelines, as on Mastodon.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from fedisora.errors import RateLimited
from fedisora.services.events import Event
from fedisora.streaming.channels import Message, Stream, Viewer, fan_out
from fedisora.streaming.tokens import live_tokens

__all__ = [
    "INBOX_SIZE",
    "MAX_SUBSCRIPTIONS",
    "QUEUE_SIZE",
    "RECHECK_INTERVAL",
    "STREAMED",
    "TOKEN_ENDED",
    "Connection",
    "Hub",
    "Limits",
    "TooManyStreams",
]

log = logging.getLogger("fedisora.streaming")

# Events a stream can turn into messages; the rest (likes, follows...) reach clients as
# notifications, which have their own event.
STREAMED = frozenset(
    {
        "clip.created",
        "clip.updated",
        "clip.deleted",
        "comment.deleted",
        "boost.created",
        "notification.created",
    }
)
QUEUE_SIZE = 1000
INBOX_SIZE = 10_000
MAX_SUBSCRIPTIONS = 100
RECHECK_INTERVAL = 2.0
SLICE = 64  # connections handed an event per turn of the event loop
TOKEN_ENDED = "The access token is no longer valid"


class TooManyStreams(RateLimited):
    """A stream refused by a limit: 429 on the HTTP upgrade or the event-stream request."""


@dataclass(frozen=True)
class Limits:
    per_ip: int
    per_token: int


def address_key(ip: str) -> str:
    """The unit an address limit counts: the address, or its /64 for IPv6 (one host's share,
    so that a whole prefix does not count as millions of clients)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Connection:
    """One open stream (an event-stream response or a WebSocket): its viewer, subscriptions
    and the messages waiting for it. Its consumer calls :meth:`receive` until it returns None
    (the hub closed it: its token ended, or the server is stopping)."""

    __slots__ = ("_pending", "_ready", "closed", "ip", "reason", "streams", "token_id", "viewer")

    def __init__(
        self, viewer: Viewer, streams: Sequence[Stream], token_id: int | None, ip: str | None
    ) -> None:
        self.viewer = viewer
        self.streams: list[Stream] = list(dict.fromkeys(streams))
        self.token_id = token_id
        self.ip = ip
        self.closed = False
        self.reason = ""
        self._pending: deque[Message] = deque(maxlen=QUEUE_SIZE)
        self._ready = asyncio.Event()

    def subscribe(self, stream: Stream) -> None:
        if stream in self.streams:
            return
        if len(self.streams) >= MAX_SUBSCRIPTIONS:
            raise TooManyStreams(f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        self.streams.append(stream)

    def unsubscribe(self, stream: Stream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)

    def push(self, messages: Sequence[Message]) -> None:
        if self.closed or not messages:
            return
        self._pending.extend(messages)  # a full deque drops its oldest
        self._ready.set()

    def end(self, reason: str) -> None:
        """Close: messages still waiting are dropped, never delivered."""
        if not self.closed:
            self.closed, self.reason = True, reason
            self._pending.clear()
            self._ready.set()

    async def ended(self) -> None:
        """Return once the hub closes this connection (one without subscriptions: it drops
        any messages)."""
        while await self.receive(3600) is not None:
            pass

    async def receive(self, idle: float) -> list[Message] | None:
        """The messages waiting (none if *idle* seconds pass first), or None once closed."""
        if not self._pending and not self.closed:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self._ready.wait()
        if self.closed:
            return None
        batch = list(self._pending)
        self._pending.clear()
        return batch


class Hub:
    """The streams of this process; see the module docstring."""

    def __init__(self, *, recheck_interval: float = RECHECK_INTERVAL) -> None:
        self.recheck_interval = recheck_interval
        self._connections: set[Connection] = set()
        self._per_ip: Counter[str] = Counter()
        self._per_token: Counter[int] = Counter()
        self._taps: set[asyncio.Queue[Event]] = set()
        self._inbox: deque[Event] = deque(maxlen=INBOX_SIZE)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()  # set while the inbox is empty and nothing is being sent
        self._idle.set()
        self.dropped = 0  # events dropped because the inbox was full

    # -- streams ----------------------------------------------------------------------------

    def open(
        self,
        viewer: Viewer,
        streams: Sequence[Stream] = (),
        *,
        token_id: int | None = None,
        ip: str | None = None,
        limits: Limits | None = None,
    ) -> Connection:
        """A new stream, or :class:`TooManyStreams` when *limits* refuse it."""
        key = address_key(ip) if ip is not None else None
        if limits is not None:
            if key is not None and self._per_ip[key] >= limits.per_ip:
                raise TooManyStreams("Too many open streams from this address")
            if token_id is not None and self._per_token[token_id] >= limits.per_token:
                raise TooManyStreams("Too many open streams for this access token")
        self._start()
        conn = Connection(viewer, streams, token_id, key)
        self._connections.add(conn)
        if key is not None:
            self._per_ip[key] += 1
        if token_id is not None:
            self._per_token[token_id] += 1
        return conn

    def close(self, conn: Connection, reason: str = "closed") -> None:
        """Forget *conn* (idempotent); its consumer's next :meth:`~Connection.receive` ends."""
        conn.end(reason)
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        if conn.ip is not None:
            self._per_ip[conn.ip] -= 1
            if self._per_ip[conn.ip] <= 0:
                del self._per_ip[conn.ip]
        if conn.token_id is not None:
            self._per_token[conn.token_id] -= 1
            if self._per_token[conn.token_id] <= 0:
                del self._per_token[conn.token_id]

    @property
    def connections(self) -> int:
        return len(self._connections)

    # -- events -----------------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Queue *event* for this process's streams; returns at once (the fan-out runs in the
        hub's own task)."""
        if event.kind not in STREAMED:
            return
        for queue in list(self._taps):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)
        if not self._connections:
            return
        if len(self._inbox) == self._inbox.maxlen:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("streaming inbox full: dropped %d events so far", self.dropped)
        self._inbox.append(event)
        self._idle.clear()
        self._wake.set()

    def connect(self) -> asyncio.Queue[Event]:
        """A raw feed of every streamed event as dispatched (for tests and diagnostics); it
        loses its oldest events when :data:`QUEUE_SIZE` behind."""
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._taps.add(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[Event]) -> None:
        self._taps.discard(queue)

    async def drain(self) -> None:
        """Wait until every event dispatched so far has been fanned out (for tests)."""
        await self._idle.wait()

    async def _deliver(self, event: Event) -> None:
        conns = [c for c in self._connections if c.streams]
        if not conns:
            return
        out = await fan_out(event, conns)
        tokens = {c.token_id for c, _ in out if c.token_id is not None}
        ended = tokens - await live_tokens(tokens) if tokens else set()
        for n, (conn, messages) in enumerate(out, 1):
            if conn.token_id in ended:
                self.close(conn, TOKEN_ENDED)
            else:
                conn.push(messages)
            if n % SLICE == 0:
                # Each push wakes a connection's task to write to its socket. Handing them
                # out a slice at a time lets requests waiting on the event loop (the very
                # POST that made this event) run between slices instead of after them all.
                await asyncio.sleep(0)

    async def _fan_out_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                event = self._inbox.popleft()
                try:
                    await self._deliver(event)
                except Exception:  # one bad event (or a database hiccup) must not stop streaming
                    log.exception("streaming %s failed", event.kind)
            self._idle.set()

    # -- token checks -----------------------------------------------------------------------

    async def recheck(self) -> int:
        """Close the streams whose token is no longer good; how many were closed."""
        tokens = {c.token_id for c in self._connections if c.token_id is not None}
        if not tokens:
            return 0
        ended = tokens - await live_tokens(tokens)
        doomed = [c for c in self._connections if c.token_id in ended]
        for conn in doomed:
            self.close(conn, TOKEN_ENDED)
        return len(doomed)

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_interval)
            try:
                await self.recheck()
            except Exception:  # the database restarting: streams wait for the next check
                log.warning("streaming token check failed", exc_info=True)

    # -- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._fan_out_loop(), name="streaming fan-out"),
                asyncio.create_task(self._recheck_loop(), name="streaming token check"),
            ]

    async def stop(self) -> None:
        """Close every stream and stop the hub's tasks."""
        for conn in list(self._connections):
            self.close(conn, "The server is shutting down")
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
