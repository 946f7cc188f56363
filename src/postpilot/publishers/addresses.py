"""Which network addresses postpilot may connect to: public ones, plus the operator's explicit
allow-list (the sandbox, a self-hosted instance). Pure: no DNS, no sockets.

Tenant input (account URLs, media URLs) must never reach loopback, the cloud metadata service or
the private network, whatever spelling it uses: IPv4 embedded in IPv6 (mapped, compatible,
NAT64, 6to4), decimal or octal IPv4 (`2130706433`, `0177.0.0.1`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA special-purpose blocks that are not globally reachable. `is_global` misses some of them
# on Python 3.11 (192.0.0.0/24, multicast, ::/96 and the IPv4-embedding IPv6 forms).
_V4_BLOCKED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_BLOCKED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "64:ff9b:1::/48",  # local-use NAT64: the embedding is not fixed
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated `::a.b.c.d`, `::1` included
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
# What the C resolver (inet_aton) reads as IPv4: `127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`.
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it stands for one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str | IPAddress) -> bool:
    """True for a globally reachable unicast address; False for anything a tenant must not reach
    (an IPv6 address embedding an IPv4 one is judged by the IPv4 one)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(embedded)
        return (
            ip in _V6_GLOBAL_UNICAST
            and ip.is_global
            and not any(ip in network for network in _V6_BLOCKED)
        )
    return ip.is_global and not any(ip in network for network in _V4_BLOCKED)


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names without DNS: an IP literal (brackets optional), or an
    IPv4 in the legacy spellings the system resolver accepts. None for a name."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_loopback_name(host: str) -> bool:
    """`localhost` and `*.localhost` always mean this machine (RFC 6761)."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _host_key(host: str) -> str:
    """One spelling per host: lower case, no brackets, no trailing dot, IPs in canonical form."""
    host = host.strip().strip("[]").rstrip(".").lower()
    literal = literal_address(host)
    return str(literal) if literal is not None else host


def _parse_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip()
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return _host_key(host), int(port) if port else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return _host_key(host), int(port)
    return _host_key(entry), None  # a name, an IPv4, or a bare IPv6


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses, plus what the operator allowed by host or host:port (names and
    addresses alike). An allowed name is connected to as resolved; anything else must resolve
    only to public (or allowed) addresses."""

    allowed: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def allowing(cls, *entries: str) -> AddressPolicy:
        """From `host`, `host:port`, `[v6]:port` entries; empty ones are skipped."""
        return cls(frozenset(_parse_entry(e) for e in entries if e.strip()))

    def is_allowed_host(self, host: str, port: int) -> bool:
        key = _host_key(host)
        return (key, None) in self.allowed or (key, port) in self.allowed

    def may_connect(self, address: str | IPAddress, port: int) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        return is_public_address(ip) or self.is_allowed_host(str(ip), port)

    def refusal(self, host: str, port: int) -> str | None:
        """Why a URL naming `host` cannot be used without even resolving it, or None: a
        private IP literal, or `localhost`, that is not allowed."""
        if self.is_allowed_host(host, port):
            return None
        literal = literal_address(host)
        if literal is not None and not self.may_connect(literal, port):
            return f"{host} is not a public address"
        if literal is None and is_loopback_name(host):
            return f"{host} is not a public address"
        return None
