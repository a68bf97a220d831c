"""Two real fedisora instances subscribed to a real relay: ActivityRelay 0.3.5 (PyPI
``activityrelay``, the LitePub relay descended from Pleroma's; AGPL-3.0, only run here, never
vendored), in a virtualenv of its own under ~/.cache/fedisora-tests (its aiohttp must not meet
ours). Without PyPI the virtualenv cannot be made and the test fails, saying so.

ActivityRelay assumes the default ports. Its actor, inbox and activity ids are
``https://{domain}/...`` whatever it listens on; it reads a subscriber's NodeInfo at
``https://{actor's host name}/.well-known/nodeinfo`` (the host name alone: port 443) before it
accepts a Follow; and it signs the ``host`` of a POST as the inbox URL's host name without its
port (aputils' draft-cavage signer), which fedisora rightly refuses when the instance is on
another port. So each server here has a loopback address of its own (three random addresses of
127.0.0.0/8) and the default ports there: the fedisora instances serve plain http on port 80
(FEDISORA_INSECURE_HTTP=1, as every federation test's instances run), and everything also
answers TLS on port 443 through a small TLS-terminating forwarder in this process, with a
certificate for those addresses from a throwaway CA. The relay's venv trusts that CA through
SSL_CERT_FILE (OpenSSL's variable, which aiohttp reads), and so do the fedisora instances (their
peer client reads it too: :func:`fedisora.federation.pinning.trusted_roots`). Ports 80 and 443
need root, as the suite runs here and in CI. Nothing in the relay is patched: it runs as
``activityrelay run`` with a config file written here, and its state is read from its own
SQLite database (``inboxes``, and the ``handle-relay`` cache of what it announced).

What is checked, through fedisora's own CLI (``fedisora relay add|list|remove``) and API:
the relay accepts both instances (its ``inboxes`` rows, fedisora's ``accepted``) and follows
their instance actors back; a public clip posted on ``a`` reaches ``b`` through the relay's
Announce (which carries only the clip's id: ``b`` fetches it from ``a``) and shows in ``b``'s
federated timeline; unlisted and followers-only clips never reach the relay; the clip's
``Delete``, forwarded by the relay under its own signature, is taken by ``b`` on ``a``'s proof;
``relay remove`` sends the Undo of the Follow, the relay drops ``a``, and ``a`` drops the relay's
follow back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedinstances import ROOT, Instance, api_headers, free_port, start, stop, wait_for
from loopback import make_certs
from peer_venv import peer_python

pytestmark = pytest.mark.slow

RELAY_VERSION = "0.3.5"


# --- loopback addresses with ports 80 and 443, TLS on 443 ------------------------------------


def _free_addresses(count: int) -> list[str]:
    """*count* addresses of 127.0.0.0/8 whose ports 80 and 443 are free (chosen at random,
    away from 127.0.0.x, so that parallel runs and other servers are unlikely to meet)."""
    found: list[str] = []
    rng = random.Random()
    for _ in range(50):
        if len(found) == count:
            return found
        host = f"127.{rng.randint(100, 250)}.{rng.randint(1, 250)}.{rng.randint(1, 250)}"
        try:
            for port in (80, 443):
                with socket.socket() as sock:
                    sock.bind((host, port))
        except PermissionError as exc:  # ports below 1024 need root (or CAP_NET_BIND_SERVICE)
            pytest.fail(f"cannot listen on ports 80 and 443 of loopback: {exc}")
        except OSError:
            continue
        if host not in found:
            found.append(host)
    if len(found) == count:
        return found
    pytest.fail("ports 80 and 443 of loopback are taken (a server on 0.0.0.0?)")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class TlsFronts:
    """TLS-terminating forwarders, host:443 -> host:port, on an event loop in a thread."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []

    def add(self, host: str, port: int) -> None:
        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                back_reader, back_writer = await asyncio.open_connection(host, port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, back_writer), _pipe(back_reader, writer))

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(forward, host, 443, ssl=self.tls)

        self.servers.append(asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10))

    def close(self) -> None:
        async def shut() -> None:
            for server in self.servers:
                server.close()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# --- the relay -------------------------------------------------------------------------------


@dataclass
class Relay:
    host: str
    port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def actor(self) -> str:
        return f"https://{self.host}/actor"

    @property
    def inbox(self) -> str:
        return f"https://{self.host}/inbox"

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.dir / "relay.sqlite3", timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def subscribers(self) -> dict[str, tuple[str, str, bool]]:
        """The relay's subscribed instances: domain -> (actor, follow id, accepted)."""
        rows = self.query("SELECT domain, actor, followid, accepted FROM inboxes")
        return {domain: (actor, follow, bool(accepted)) for domain, actor, follow, accepted in rows}

    def relayed(self) -> set[str]:
        """The ids of the objects the relay announced (its dedupe cache)."""
        return {
            key for (key,) in self.query("SELECT key FROM cache WHERE namespace=?", "handle-relay")
        }

    def log(self) -> str:
        return (self.dir / "relay.log").read_text(errors="replace")[-4000:]


def _relay_python() -> Path:
    return peer_python(f"activityrelay-{RELAY_VERSION}", [f"activityrelay=={RELAY_VERSION}"])


def start_relay(python: Path, host: str, tmp: Path, ca: Path) -> Relay:
    relay = Relay(host, free_port(host), tmp / "relay")
    relay.dir.mkdir()
    config = relay.dir / "relay.yaml"
    config.write_text(
        f"listen: {host}\nport: {relay.port}\ndomain: {host}\nworkers: 1\n"
        "database_type: sqlite\ncache_type: database\nsqlite_path: relay.sqlite3\n"
    )
    command = [str(python.with_name("activityrelay")), "-c", str(config)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(relay.dir), "SSL_CERT_FILE": str(ca)}
    # makes the database and the relay's key; "n": do not run it from the setup
    setup = subprocess.run(
        [*command, "setup", "--skip-questions"],
        input="n\n",
        env=env,
        cwd=relay.dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert setup.returncode == 0 and relay.query("SELECT 1 FROM config WHERE key='private-key'"), (
        setup.stdout + setup.stderr
    )
    with (relay.dir / "relay.log").open("wb") as log:
        relay.process = subprocess.Popen(
            [*command, "run"], env=env, cwd=relay.dir, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert relay.process.poll() is None, relay.log()
        try:
            if httpx.get(f"http://{host}:{relay.port}/actor", timeout=1).status_code == 200:
                return relay
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"the relay did not start: {relay.log()}")


def stop_relay(relay: Relay) -> None:
    if relay.process is not None and relay.process.poll() is None:
        relay.process.terminate()  # SIGTERM: it stops its push workers too
        try:
            relay.process.wait(15)
        except subprocess.TimeoutExpired:
            relay.process.kill()
            relay.process.wait()


# --- the rig ---------------------------------------------------------------------------------


@dataclass
class Rig:
    relay: Relay
    a: Instance
    b: Instance


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    python = _relay_python()  # fails the test if it cannot be installed
    a_host, b_host, relay_host = _free_addresses(3)
    certs = make_certs(tmp_path, [a_host, b_host, relay_host])
    ca = tmp_path / "ca.pem"
    fronts = TlsFronts(certs.server)
    started: list[Instance] = []
    relay: Relay | None = None
    try:
        relay = start_relay(python, relay_host, tmp_path, ca)
        fronts.add(relay_host, relay.port)
        for name, host in (("a", a_host), ("b", b_host)):
            env = {"SSL_CERT_FILE": str(ca)}
            started.append(start(name, tmp_path, host, extra_env=env, port=80))
            fronts.add(host, started[-1].port)
        yield Rig(relay, *started)
    finally:
        for instance in started:
            stop(instance)
        if relay is not None:
            stop_relay(relay)
        fronts.close()


def fedisora(instance: Instance, *args: str) -> str:
    """``fedisora ARGS`` against *instance* (its environment), as an admin runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "fedisora", *args],
        env=instance.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"{instance.name} fedisora {args}: {out.stdout}{out.stderr}"
    return out.stdout


def until(check: Callable[[], Any], what: str, rig: Rig, timeout: float = 30) -> Any:
    """*check*'s first true answer within *timeout*; on a time-out, the servers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    logs = [f"relay: {rig.relay.log()}"]
    for instance in (rig.a, rig.b):
        state = instance.act("state")
        logs.append(f"{instance.name}: {state['deliveries']}\n{state['inbox']}")
        logs.append((instance.env_dir / f"{instance.name}.log").read_text()[-3000:])
    raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(logs))


def _subscribed(rig: Rig, instance: Instance) -> None:
    """The relay knows *instance* (its instance actor, fedisora's Follow id), *instance*
    recorded the Accept, and took the relay's follow back (ActivityRelay follows every
    subscriber but Mastodon back)."""
    relay = rig.relay
    actor, follow_id, _ = relay.subscribers()[instance.host]
    assert actor == f"{instance.base}/actor"
    assert follow_id.startswith(f"{instance.base}/relays/")
    accepted = f"{relay.inbox}\taccepted\t{relay.actor}"
    until(
        lambda: accepted in fedisora(instance, "relay", "list"),
        f"{instance.name} to record the relay's Accept",
        rig,
    )
    wait_for(
        instance,
        lambda s: any(
            f["follower"] == relay.actor
            and f["target"] == f"{instance.base}/actor"
            and f["state"] == "accepted"
            for f in s["follows"]
        ),
        "the relay's follow back",
    )


def test_two_instances_federate_through_activityrelay(rig: Rig) -> None:
    relay, a, b = rig.relay, rig.a, rig.b

    # both subscribe with the CLI, naming the relay's actor (LitePub's form)
    for instance in (a, b):
        added = fedisora(instance, "relay", "add", relay.actor)
        assert f"following the relay {relay.inbox}: pending" in added
    until(
        lambda: {d for d, (_, _, ok) in relay.subscribers().items() if ok} == {a.host, b.host},
        "the relay to accept both instances",
        rig,
    )
    for instance in (a, b):
        _subscribed(rig, instance)

    # a posts an unlisted and a followers-only clip, then a public one: only the public one
    # goes to the relay, which announces it to b. ActivityRelay's Announce names the clip by
    # its id alone, so what b shows is what b fetched from a (and checked as a's)
    unlisted = a.act("post", "admin", "unlisted harbour", "unlisted")["uri"]
    private = a.act("post", "admin", "followers-only harbour", "private")["uri"]
    public = a.act("post", "admin", "a lighthouse at dusk #sea", "public")["uri"]
    until(lambda: public in relay.relayed(), f"the relay to announce {public}", rig)
    state = wait_for(b, lambda s: any(c["uri"] == public for c in s["clips"]), "the Announce")
    [clip] = [c for c in state["clips"] if c["uri"] == public]
    assert clip["local"] is False and clip["caption"] == "a lighthouse at dusk #sea"
    assert clip["boosts"] == 0  # a relay's Announce is no boost
    assert {"state": "processed", "type": "Announce", "error": ""} in state["inbox"]
    b_uris = {c["uri"] for c in state["clips"]}
    assert unlisted not in b_uris and private not in b_uris

    headers = api_headers(b, "read")
    timeline = httpx.get(
        f"{b.base}/api/v1/timelines/public", headers=headers, params={"remote": "true"}, timeout=30
    )
    assert timeline.status_code == 200, timeline.text
    [status] = [s for s in timeline.json() if s["uri"] == public]
    assert status["account"]["acct"] == f"admin@{a.domain}"
    assert status["reblog"] is None

    # what a sent to the relay: the public clip's Create and nothing of the other two
    a_state = a.act("state")
    to_relay = [d for d in a_state["deliveries"] if d["inbox"] == relay.inbox]
    assert [d["type"] for d in to_relay].count("Create") == 1, to_relay
    assert all(d["state"] == "delivered" for d in to_relay), to_relay
    assert unlisted not in relay.relayed() and private not in relay.relayed()

    # a deletes the clip: its Delete goes to the relay alone, which forwards it as it is
    # (signed by the relay, not by a's admin); b takes it on the proof of a's admin it carries
    a.act("delete", "admin", public)
    wait_for(b, lambda s: all(c["uri"] != public for c in s["clips"]), "the forwarded Delete")
    deletes = [d for d in a.act("state")["deliveries"] if d["type"] == "Delete"]
    assert [(d["inbox"], d["state"]) for d in deletes] == [(relay.inbox, "delivered")]

    # a leaves: the Undo of its Follow reaches the relay, which drops it; b stays
    fedisora(a, "relay", "remove", relay.actor)
    until(lambda: a.host not in relay.subscribers(), "the relay to drop a", rig)
    assert set(relay.subscribers()) == {b.host}
    assert "no relays" in fedisora(a, "relay", "list")
    a_state = a.act("state")
    undo = [d for d in a_state["deliveries"] if d["type"] == "Undo"]
    assert [(d["inbox"], d["state"]) for d in undo] == [(relay.inbox, "delivered")]
    # ... and the relay's follow of a's instance actor ends with it
    assert not [f for f in a_state["follows"] if f["follower"] == relay.actor]
