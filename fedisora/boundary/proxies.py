"""The client's address behind reverse proxies: ``X-Forwarded-For``, trusted only from the
proxies named in ``FEDISORA_TRUSTED_PROXIES``. Pure.

A proxy appends the address it received the request from to ``X-Forwarded-For``; everything to
the left of that may have been sent by the client itself. So the header is read right to left,
starting only if the connection came from a trusted proxy, skipping every hop that is a trusted
proxy too: the first address that is not one is the client. If the header runs out or holds
something that is not an address, the last trusted hop is used (a request that cannot be
traced further counts against that proxy, never against an address a client could choose).

Only ``X-Forwarded-For`` is read, not ``Forwarded`` (RFC 7239): nginx, Caddy, Traefik and
HAProxy set the former; reading both would let a client spoof through whichever header its
proxy passes on untouched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["TrustedProxies", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(raw: str) -> tuple[str, ...]:
    """The IPs and CIDR networks in *raw* (separated by commas or spaces), normalised;
    ValueError naming the first entry that is neither."""
    out: list[str] = []
    for item in raw.replace(",", " ").split():
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(dict.fromkeys(out))


def _address(raw: str) -> Address | None:
    """An address as proxies write it: bare, ``[v6]``, ``v4:port`` or ``[v6]:port``."""
    text = raw.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose ``X-Forwarded-For`` is believed (none: the header is ignored)."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        return cls(tuple(ipaddress.ip_network(e, strict=False) for e in entries))

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address for a connection from *peer* carrying the
        ``X-Forwarded-For`` header lines *forwarded_for*."""
        if not self.networks:
            return peer
        current = _address(peer)
        if current is None or not self.trusts(current):
            return peer
        hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break
            current = address
            if not self.trusts(address):
                break
        return str(current)
