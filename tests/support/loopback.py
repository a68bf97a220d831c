"""Rigs for tests that talk to real servers on 127.0.0.1 and never leave loopback.

* :class:`OnLoopback`: a ``port`` on 127.0.0.1 as a ``domain`` (host:port) and an ``http://``
  ``base``; :class:`LoopbackServer` is an asyncio stream server there (plain or TLS), and
  :func:`running` starts one for the length of a ``with`` block (a fixture's life).
* :func:`parse_head`: the path and headers of an HTTP/1.1 request head.
* The pinned transport's seams: :class:`ScriptedResolver` (a name server under the test's
  control) and :class:`RecordingNetwork` (opens the sockets, recording each attempt and
  routing "public" literals to local ports); :func:`pinned_client` puts them under a
  production :class:`~fedisora.federation.http.PeerClient`.
* :func:`make_certs`: a throwaway CA and a server certificate for host names or IPs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

import httpcore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedisora.federation.http import PeerClient
from fedisora.federation.pinning import PinnedTransport

#: A public address no test contacts: :class:`RecordingNetwork` routes or refuses it.
PUBLIC_V4 = "93.184.216.34"


class OnLoopback:
    """Something listening on ``port`` of 127.0.0.1."""

    port: int

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.domain}"


@dataclass
class LoopbackServer(OnLoopback):
    """An asyncio stream server on 127.0.0.1 (a free port); subclasses answer in ``_serve``."""

    port: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def start(self, tls: ssl.SSLContext | None = None) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


S = TypeVar("S", bound=LoopbackServer)


@asynccontextmanager
async def running(server: S, tls: ssl.SSLContext | None = None) -> AsyncIterator[S]:
    """*server*, started (with *tls* if given) for the block and stopped after it."""
    await server.start(tls)
    try:
        yield server
    finally:
        await server.stop()


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """The path and the headers (names lower-cased) of a request head read up to its blank
    line."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0].split(" ")[1], headers


# --- the pinned transport's name server and network ------------------------------------------


class ScriptedResolver:
    """A name server under the test's control: each name gets a list of answers, one per
    lookup (the last one repeats). The rebinding attacker is one of these."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        script = self.answers.get(host)
        if not script:
            raise OSError(f"{host}: no such name")
        return script[min(self.calls.count(host), len(script)) - 1]


class RecordingStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, net: RecordingNetwork) -> None:
        self.inner = inner
        self.net = net

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self.net.server_hostnames.append(server_hostname)
        return await self.inner.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Opens sockets for the pinned backend, recording each attempt. Only loopback is dialled:
    an attempt on a routed literal goes to a local port, any other non-loopback one fails."""

    def __init__(self, routes: dict[tuple[str, int], int] | None = None) -> None:
        self.routes = routes or {}
        self.attempts: list[tuple[str, int]] = []
        self.server_hostnames: list[str | None] = []
        self.real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        ip = ipaddress.ip_address(host)  # the pinned backend dials IP literals only
        self.attempts.append((host, port))
        if (host, port) in self.routes:
            host, port = "127.0.0.1", self.routes[(host, port)]
        elif not ip.is_loopback:
            raise httpcore.ConnectError(f"{host}: tests do not leave loopback")
        stream = await self.real.connect_tcp(host, port, timeout=timeout)
        return RecordingStream(stream, self)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("not used")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def pinned_client(
    resolver: ScriptedResolver,
    net: RecordingNetwork,
    *,
    insecure: bool = False,
    verify: ssl.SSLContext | bool = True,
) -> PeerClient:
    """The production client over a pinned transport resolving with *resolver* and dialling
    through *net*."""
    transport = PinnedTransport(
        allow_private=insecure, resolve=resolver, network=net, verify=verify
    )
    return PeerClient(insecure=insecure, transport=transport)


# --- TLS -------------------------------------------------------------------------------------


@dataclass
class Certs:
    server: ssl.SSLContext
    client: ssl.SSLContext


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_certs(tmp: Path, names: list[str]) -> Certs:
    """A throwaway CA and a server certificate for *names* (host names, or IP addresses as
    IP subject names). Written to *tmp*: ``server.pem`` (with the CA), ``server.key`` and
    ``ca.pem`` (the CA alone, for another process's ``SSL_CERT_FILE``)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedisora test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp / "server.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode("ascii"))
    return Certs(server, client)
