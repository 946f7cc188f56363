"""Which address a request comes from when a reverse proxy sits in front: the connecting
address, unless it is one of TRUSTED_PROXIES; then X-Forwarded-For is read from the right,
skipping the trusted proxies, and the first other address is the client's. Anything a client
wrote further left is never believed."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(listed: str) -> tuple[Network, ...]:
    """'10.0.0.0/8, 192.0.2.1' -> networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in filter(None, (e.strip() for e in listed.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from exc
    return tuple(networks)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address: `peer` (the connection's), or from the X-Forwarded-For headers'
    values when `peer` is a trusted proxy."""
    if not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: keep the last one a trusted proxy vouched for
        address = hop
        if not _trusted(hop, trusted):
            break
    return address
