"""The SSRF guard holds at connect time: the address checked is the address connected to.

Real servers listen on 127.0.0.1 (one plain, one TLS with a certificate for host names only).
"Public" addresses are never contacted: a recording network backend under the pinned backend
notes every connect attempt (always an IP literal) and either refuses it or routes it to one
of the local servers, so a test can show which literal was dialled without leaving loopback.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest
from loopback import (
    PUBLIC_V4,
    Certs,
    LoopbackServer,
    RecordingNetwork,
    ScriptedResolver,
    make_certs,
    parse_head,
    pinned_client,
    running,
)

from fedisora.federation.http import FetchError, PeerClient, UnsafeURL, check_url
from fedisora.federation.pinning import (
    PinnedBackend,
    RefusedAddress,
    forbidden_address,
    system_resolve,
)

PUBLIC_V6 = "2606:4700::1111"

# --- the rig: local servers (the name server and the network are loopback.py's) -------------


@dataclass
class Server(LoopbackServer):
    """An HTTP/1.1 server on 127.0.0.1 that records what reached it."""

    redirects: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    hosts: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    async def start(self, tls: ssl.SSLContext | None = None) -> Self:
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        return await super().start(tls)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        path, headers = parse_head(head)
        if "host" in headers:
            self.hosts.append(headers["host"])
        if path in self.redirects:
            answer = f"HTTP/1.1 302 Found\r\nLocation: {self.redirects[path]}\r\n"
            answer += "Content-Length: 0\r\n\r\n"
        else:
            body = '{"ok": true}'
            answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            answer += f"Content-Length: {len(body)}\r\n\r\n{body}"
        writer.write(answer.encode())
        try:
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def guard() -> AsyncIterator[Server]:
    """The loopback server a rebinding attacker wants to reach."""
    async with running(Server()) as server:
        yield server


@pytest.fixture
async def tls_peer(tmp_path: Path) -> AsyncIterator[tuple[Server, Certs]]:
    """A TLS server on loopback with a certificate for peer.test only."""
    certs = make_certs(tmp_path, ["peer.test"])
    async with running(Server(), certs.server) as server:
        yield server, certs


# --- DNS rebinding ---------------------------------------------------------------------------


async def test_a_rebinding_name_server_cannot_steer_the_connect_to_loopback(
    guard: Server,
) -> None:
    """Public to the first lookup, 127.0.0.1 to every later one: each connection resolves
    once and dials the very literal it checked, so loopback is never reached."""
    resolver = ScriptedResolver({"rebind.test": [[PUBLIC_V4], ["127.0.0.1"]]})
    net = RecordingNetwork()
    client = pinned_client(resolver, net)
    url = f"https://rebind.test:{guard.port}/inbox"
    try:
        with pytest.raises(FetchError) as first:
            await client.get_json(url)
        assert not isinstance(first.value, UnsafeURL)  # the public host is just unreachable
        assert resolver.calls == ["rebind.test"]  # one lookup: the check's is the connect's
        assert net.attempts == [(PUBLIC_V4, guard.port)]

        with pytest.raises(UnsafeURL, match=r"rebind\.test resolves to no public address"):
            await client.get_json(url)
        assert resolver.calls == ["rebind.test", "rebind.test"]
        assert net.attempts == [(PUBLIC_V4, guard.port)]  # no attempt on 127.0.0.1
    finally:
        await client.aclose()
    assert guard.connections == 0


async def test_the_same_rig_does_reach_loopback_when_insecure(guard: Server) -> None:
    """The control for the test above: with ``insecure_http`` the rebinding answer is
    allowed, and the recording network really connects to the guard server."""
    resolver = ScriptedResolver({"rebind.test": [[PUBLIC_V4], ["127.0.0.1"]]})
    net = RecordingNetwork()
    client = pinned_client(resolver, net, insecure=True)
    try:
        with pytest.raises(FetchError):
            await client.get_json(f"http://rebind.test:{guard.port}/x")
        _, doc = await client.get_json(f"http://rebind.test:{guard.port}/x")
    finally:
        await client.aclose()
    assert doc == {"ok": True}
    assert net.attempts == [(PUBLIC_V4, guard.port), ("127.0.0.1", guard.port)]
    assert guard.connections == 1 and guard.hosts == [f"rebind.test:{guard.port}"]


async def test_mixed_answers_dial_only_the_public_addresses(guard: Server) -> None:
    answer = [
        "127.0.0.1",
        "10.1.2.3",
        "::1",
        "fe80::1",
        PUBLIC_V4,
        "::ffff:127.0.0.1",
        "169.254.169.254",
        PUBLIC_V6,
        "fc00::1",
    ]
    resolver = ScriptedResolver({"mixed.test": [answer]})
    net = RecordingNetwork()
    client = pinned_client(resolver, net)
    try:
        with pytest.raises(FetchError) as caught:
            await client.get_json(f"https://mixed.test:{guard.port}/x")
    finally:
        await client.aclose()
    assert not isinstance(caught.value, UnsafeURL)
    assert net.attempts == [(PUBLIC_V4, guard.port), (PUBLIC_V6, guard.port)]
    assert guard.connections == 0


async def test_tls_is_verified_against_the_host_name_not_the_pinned_address(
    tls_peer: tuple[Server, Certs],
) -> None:
    """The socket goes to the checked literal; SNI, certificate check and Host keep the name.
    The certificate names peer.test only (no IP), so verifying against the literal fails."""
    server, certs = tls_peer
    resolver = ScriptedResolver(
        {"peer.test": [["127.0.0.1", PUBLIC_V4]], "stranger.test": [[PUBLIC_V4]]}
    )
    net = RecordingNetwork(routes={(PUBLIC_V4, server.port): server.port})
    client = pinned_client(resolver, net, verify=certs.client)
    try:
        final, doc = await client.get_json(f"https://peer.test:{server.port}/actor")
        assert doc == {"ok": True} and final == f"https://peer.test:{server.port}/actor"
        assert net.attempts == [(PUBLIC_V4, server.port)]  # 127.0.0.1 was dropped
        assert net.server_hostnames == ["peer.test"]
        assert server.sni == ["peer.test"]
        assert server.hosts == [f"peer.test:{server.port}"]

        # A name the certificate does not cover is refused by the TLS check.
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get_json(f"https://stranger.test:{server.port}/actor")
        assert net.server_hostnames == ["peer.test", "stranger.test"]
        assert server.hosts == [f"peer.test:{server.port}"]  # no request was sent
    finally:
        await client.aclose()

    # Verification is on: with the system's CAs the test CA's certificate is refused.
    strict = pinned_client(resolver, RecordingNetwork(routes=net.routes))
    try:
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            await strict.get_json(f"https://peer.test:{server.port}/actor")
    finally:
        await strict.aclose()


async def test_redirect_hops_are_resolved_and_pinned_too(
    tls_peer: tuple[Server, Certs], guard: Server
) -> None:
    server, certs = tls_peer
    server.redirects["/go"] = f"https://inside.test:{guard.port}/latest/meta-data"
    resolver = ScriptedResolver({"peer.test": [[PUBLIC_V4]], "inside.test": [["127.0.0.1"]]})
    net = RecordingNetwork(routes={(PUBLIC_V4, server.port): server.port})
    client = pinned_client(resolver, net, verify=certs.client)
    try:
        with pytest.raises(UnsafeURL, match=r"inside\.test resolves to no public address"):
            await client.get_json(f"https://peer.test:{server.port}/go")
    finally:
        await client.aclose()
    assert resolver.calls == ["peer.test", "inside.test"]
    assert net.attempts == [(PUBLIC_V4, server.port)]
    assert server.hosts == [f"peer.test:{server.port}"]
    assert guard.connections == 0


# --- address forms ---------------------------------------------------------------------------

SPECIAL_V6 = [
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "2001:db8::1",
]


@pytest.mark.parametrize("address", SPECIAL_V6)
async def test_special_ipv6_addresses_are_refused(guard: Server, address: str) -> None:
    """Written as a literal in the URL, or as a name's answer: never dialled."""
    resolver = ScriptedResolver({"six.test": [[address]]})
    net = RecordingNetwork()
    client = pinned_client(resolver, net)
    try:
        with pytest.raises(UnsafeURL):
            await client.get_json(f"https://[{address}]:{guard.port}/x")
        with pytest.raises(UnsafeURL, match="no public address"):
            await client.get_json(f"https://six.test:{guard.port}/x")
    finally:
        await client.aclose()
    assert net.attempts == [] and guard.connections == 0
    # The connect-time check stands on its own (without check_url in front of it).
    backend = PinnedBackend(allow_private=False, resolve=resolver, network=net)
    with pytest.raises(RefusedAddress):
        await backend.connect_tcp(address, guard.port)
    assert net.attempts == []


NUMERIC_V4 = ["2130706433", "0177.0.0.1", "0x7f000001", "127.1", "0x7f.0.0.1", "017700000001"]


@pytest.mark.parametrize("host", NUMERIC_V4)
@pytest.mark.parametrize("insecure", [False, True])
async def test_numeric_ipv4_hosts_are_refused(guard: Server, host: str, insecure: bool) -> None:
    """``http://2130706433/`` is 127.0.0.1 to the system resolver: refused in every mode (no
    peer has such a name), and refused by the pinned backend on its own when not insecure."""
    scheme = "http" if insecure else "https"
    client = PeerClient(insecure=insecure)  # the production transport, system resolver
    try:
        with pytest.raises(UnsafeURL):
            await client.get_json(f"{scheme}://{host}:{guard.port}/x")
    finally:
        await client.aclose()
    assert guard.connections == 0
    if not insecure:
        backend = PinnedBackend(allow_private=False, resolve=system_resolve)
        with pytest.raises(RefusedAddress) as caught:
            await backend.connect_tcp(host, guard.port)
        assert caught.value.addresses == ["127.0.0.1"]
        assert guard.connections == 0


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("192.0.2.1", True),
        ("fe80::1%2", True),
        ("64:ff9b::a00:1", True),
        (PUBLIC_V4, False),
        (PUBLIC_V6, False),
        (f"::ffff:{PUBLIC_V4}", False),
        ("64:ff9b::5db8:d822", False),  # NAT64 of a public address: DNS64 networks need it
        ("2002:5db8:d822::", False),
    ],
)
def test_address_policy(address: str, forbidden: bool) -> None:
    assert forbidden_address(address) is forbidden


# --- the production transport ----------------------------------------------------------------


async def test_default_transport_refuses_a_name_for_loopback(guard: Server) -> None:
    """No custom seam: the system resolver answers 127.0.0.1 for localhost and the pinned
    backend (not a check before it) refuses to connect."""
    await check_url(f"https://localhost:{guard.port}/x", insecure=False, resolve=None)
    client = PeerClient(insecure=False)
    try:
        with pytest.raises(UnsafeURL, match="localhost resolves to no public address"):
            await client.get_json(f"https://localhost:{guard.port}/x")
    finally:
        await client.aclose()
    assert guard.connections == 0


async def test_default_transport_reaches_loopback_when_insecure(guard: Server) -> None:
    client = PeerClient(insecure=True)
    try:
        _, by_name = await client.get_json(f"http://localhost:{guard.port}/a")
        _, by_ip = await client.get_json(f"http://127.0.0.1:{guard.port}/b")
    finally:
        await client.aclose()
    assert by_name == by_ip == {"ok": True}
    assert guard.hosts == [f"localhost:{guard.port}", f"127.0.0.1:{guard.port}"]


async def test_an_operators_ca_bundle_is_trusted_through_ssl_cert_file(
    tls_peer: tuple[Server, Certs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE (as OpenSSL and httpx read it) names the roots peers are verified with:
    a federation under a private CA. Without it certifi's roots refuse the test CA."""
    server, _ = tls_peer
    resolver = ScriptedResolver({"peer.test": [[PUBLIC_V4]]})
    routes = {(PUBLIC_V4, server.port): server.port}
    url = f"https://peer.test:{server.port}/actor"
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    strict = pinned_client(resolver, RecordingNetwork(routes=routes))
    try:
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            await strict.get_json(url)
    finally:
        await strict.aclose()

    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    trusting = pinned_client(resolver, RecordingNetwork(routes=routes))
    try:
        _, doc = await trusting.get_json(url)
    finally:
        await trusting.aclose()
    assert doc == {"ok": True} and server.sni == ["peer.test", "peer.test"]
