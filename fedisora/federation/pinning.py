"""Connect only to addresses that were checked: the SSRF guard at connect time.

A guard that resolves a host name, checks the answer and then lets the HTTP library resolve
the name again can be fooled by DNS rebinding: a hostile name server answers a public address
to the check and ``127.0.0.1`` to the connect. Here there is one resolution per connection:
:class:`PinnedBackend` (an ``httpcore`` network backend) resolves the host itself, drops every
address the policy refuses, and opens the TCP connection to one of the remaining IP literals.
httpcore still knows the connection by its host name, so TLS SNI and certificate verification
use the name, and so does the ``Host`` header. Every new connection, redirect hops included,
goes through it; a pooled keep-alive connection is reused only for the same scheme, host
and port it was checked for.

Refused: private, loopback, link-local, shared (CGNAT), reserved, unspecified, documentation
and multicast addresses, and IPv6 forms that embed such an IPv4 address (IPv4-mapped, 6to4,
NAT64, Teredo; the deprecated IPv4-compatible ``::a.b.c.d`` is reserved, hence refused).
``allow_private`` (the ``insecure_http`` test mode) checks nothing, so that loopback test
instances can talk to each other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

__all__ = [
    "PinnedBackend",
    "PinnedTransport",
    "RefusedAddress",
    "Resolver",
    "forbidden_address",
    "system_resolve",
    "trusted_roots",
]

#: Resolves ``(host, port)`` to IP address strings, in the order to try them.
Resolver = Callable[[str, int], Awaitable[list[str]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class RefusedAddress(Exception):
    """The host has no address we may connect to (all private, loopback and the like).

    Deliberately not an ``httpcore``/``httpx`` error: it passes through both unchanged, so
    :class:`~fedisora.federation.http.PeerClient` can tell it from a network failure."""

    def __init__(self, host: str, addresses: Iterable[str]) -> None:
        self.host = host
        self.addresses = list(addresses)
        shown = ", ".join(self.addresses) or "nothing"
        super().__init__(f"{host} resolves to no public address ({shown})")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address stands for or routes to."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _forbidden_ip(ip: IPAddress) -> bool:
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
    )


def forbidden_address(address: str) -> bool:
    """Whether *address* (an IP literal, optionally with an IPv6 ``%scope``) is off limits."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(_forbidden_ip(v4) for v4 in _embedded_ipv4(ip)):
            return True
        if ip.ipv4_mapped is not None or any(ip in net for net in _NAT64):
            return False  # judged as the IPv4 address it stands for (NAT64: DNS64 networks)
    return _forbidden_ip(ip)


def ip_literal(host: str) -> IPAddress | None:
    """*host* as an IP address if it is written as one (canonical forms only)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for *host*, in its order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves once, checks, and connects to the checked literal.

    *resolve* is the seam for tests (a name server that rebinds); *network* is the backend
    that opens sockets (``httpcore.AnyIOBackend``, what httpcore's default picks on asyncio).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = system_resolve,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self.network: httpcore.AsyncNetworkBackend = network or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int, seconds: float | None = None) -> list[str]:
        """The addresses a connection to *host* may use, in order; raise
        :class:`RefusedAddress` if there are none."""
        literal = ip_literal(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                async with asyncio.timeout(seconds):
                    found = await self.resolve(host, port)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {host} took too long") from exc
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        allowed = found if self.allow_private else [a for a in found if not forbidden_address(a)]
        if not allowed:
            raise RefusedAddress(host, found)
        return allowed

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        options = list(socket_options) if socket_options is not None else None
        error: Exception | None = None
        for address in await self.addresses(host, port, timeout):
            try:
                return await self.network.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the host's next allowed address
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # Only reachable through a transport configured with ``uds``, never from a URL.
        return await self.network.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self.network.sleep(seconds)


def trusted_roots() -> ssl.SSLContext:
    """The TLS context peers are verified with: certifi's roots, or the operator's own when
    ``SSL_CERT_FILE`` (a PEM bundle) or ``SSL_CERT_DIR`` (a hashed directory) is set, as
    OpenSSL and httpx read them (an instance federating under a private CA). The proxy
    variables httpx would also read stay ignored: peers are always reached directly."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return httpx.create_ssl_context(verify=True, trust_env=False)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through a :class:`PinnedBackend`.

    httpx 0.28 takes no network backend argument, so the connection pool is built here with
    the same settings httpx would use (no proxy: peers are always reached directly)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = system_resolve,
        network: httpcore.AsyncNetworkBackend | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        if verify is True:
            verify = trusted_roots()
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self.backend = PinnedBackend(allow_private=allow_private, resolve=resolve, network=network)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
