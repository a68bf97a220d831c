"""A lease shorter than a request: the worker making the request renews it, so no other
worker takes the row over mid-request and the peer gets no second POST (or GET).

Two runners on one database (as two worker processes are), a lease of one second (the
setting allows five; the engine takes any), and a real peer on 127.0.0.1 that answers after
three: without renewal, the second runner took the row over after a second and made the same
request again.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import local_account
from loopback import LoopbackServer, parse_head, running

from activitypub import keys
from fedisora import urls
from fedisora.config import Settings, load_settings
from fedisora.federation.context import Federation, close_federation, set_federation
from fedisora.federation.delivery import enqueue
from fedisora.federation.http import PeerClient
from fedisora.models import Account, Delivery, Follow, InboxItem, utcnow
from fedisora.work.engine import Engine
from fedisora.work.machines import build_machines
from fedisora.work.runner import InProcessRunner

LEASE = timedelta(seconds=1)
SLOW = 3.0  # seconds the peer takes to answer: three leases


@dataclass
class SlowPeer(LoopbackServer):
    """A fediverse server on 127.0.0.1 that answers every request after *delay* seconds:
    ``rita``'s actor document, 202 to POSTs to its inboxes. It records each request."""

    delay: float = SLOW
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    key: Any = field(default_factory=keys.generate_rsa_key)

    @property
    def actor(self) -> str:
        return f"{self.base}/users/rita"

    def document(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.actor,
            "type": "Person",
            "preferredUsername": "rita",
            "inbox": f"{self.actor}/inbox",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": f"{self.actor}#main-key",
                "owner": self.actor,
                "publicKeyPem": keys.public_key_to_pem(self.key.public_key()),
            },
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method = head.split(b" ", 1)[0].decode()
                path, headers = parse_head(head)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append((method, path, json.loads(body).get("id") if body else None))
                await asyncio.sleep(self.delay)
                if method == "GET" and path == "/users/rita":
                    doc = json.dumps(self.document()).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/activity+json\r\n"
                        + f"Content-Length: {len(doc)}\r\n\r\n".encode()
                        + doc
                    )
                elif method == "POST":
                    writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def peer() -> AsyncIterator[SlowPeer]:
    async with running(SlowPeer()) as server:
        yield server


@pytest.fixture
async def settings(db: str, tmp_path: Path) -> AsyncIterator[Settings]:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_INSECURE_HTTP": "1",
        }
    )
    urls.configure(settings)
    set_federation(Federation(settings, PeerClient(insecure=True)))
    try:
        yield settings
    finally:
        await close_federation()


async def _two_runners_until(settings: Settings, table: str, done: Any) -> list[InProcessRunner]:
    """Two runners with a one-second lease, polling ten times a second (each would take over
    any row whose lease ran out), until *done*; both stopped. They run the deliveries, and
    for an inbox item the inbox and the outbox (which turns the answer into a delivery)."""
    providers = ["fedisora.federation.delivery:machines"]
    if table == "inbox_items":
        providers += ["fedisora.federation.inbox:machines", "fedisora.services.outbox:machines"]
    runners = [
        InProcessRunner(
            Engine(
                build_machines(settings, providers),
                lease=LEASE,
                context={"settings": settings},
            ),
            poll_interval=0.1,
            stagger=0.0,
        )
        for _ in range(2)
    ]
    for runner in runners:
        runner.start()
    try:
        for _ in range(300):
            if await done():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("not done within 30 s")
    finally:
        for runner in runners:
            await runner.stop(grace=None)
    return runners


async def test_a_slow_delivery_keeps_its_lease_and_posts_once(
    settings: Settings, peer: SlowPeer
) -> None:
    alice = await local_account()
    rita = await Account.create(
        username="rita",
        domain=peer.domain,
        uri=peer.actor,
        inbox_uri=f"{peer.actor}/inbox",
        shared_inbox_uri=f"{peer.base}/inbox",
    )
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{alice.uri}#likes/{secrets.token_hex(4)}",
        "type": "Like",
        "actor": alice.uri,
        "object": f"{peer.base}/notes/1",
    }
    assert await enqueue(alice, activity, [rita]) == 1

    async def delivered() -> bool:
        return await Delivery.filter(state="delivered").exists()

    await _two_runners_until(settings, "deliveries", delivered)
    row = await Delivery.get()
    assert row.attempts == 0 and row.last_error == "", row.last_error
    assert [s for s in peer.seen if s[0] == "POST"] == [("POST", "/inbox", activity["id"])]


async def test_a_slow_inbox_item_keeps_its_lease_and_fetches_once(
    settings: Settings, peer: SlowPeer
) -> None:
    """A Follow from an actor not cached yet: processing it fetches the actor (three
    seconds), then answers with an Accept (three more)."""
    alice = await local_account()
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{peer.actor}#follows/{secrets.token_hex(4)}",
        "type": "Follow",
        "actor": peer.actor,
        "object": alice.uri,
    }
    now = utcnow()
    item = await InboxItem.create(
        activity_id=follow["id"],
        actor_uri=peer.actor,
        payload=follow,
        state="received",
        state_changed_at=now,
        next_attempt_at=now,
    )

    async def accepted() -> bool:
        return await Delivery.filter(state="delivered").exists()

    await _two_runners_until(settings, "inbox_items", accepted)
    done = await InboxItem.get(pk=item.pk)
    assert done.state == "processed" and done.attempts == 0, done.last_error
    assert await Follow.filter(uri=follow["id"]).count() == 1
    gets = [s for s in peer.seen if s[0] == "GET"]
    posts = [s for s in peer.seen if s[0] == "POST"]
    assert gets == [("GET", "/users/rita", None)]
    assert len(posts) == 1 and posts[0][1] in ("/inbox", "/users/rita/inbox")
