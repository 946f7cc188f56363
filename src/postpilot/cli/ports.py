"""Check a port is free before a command seeds, prints or starts anything on it."""

from __future__ import annotations

import socket

from postpilot.cli import common


def taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on, or None when it can.

    Binds the way uvicorn does (SO_REUSEADDR), so a port in TIME_WAIT counts as free and one
    with a listener as taken.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"{host} is not an address this machine has ({exc.strerror})"
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def ensure_free(port: int, *, flag: str, host: str = "127.0.0.1") -> None:
    """Fail with one line naming the port and the flag that changes it."""
    reason = taken(host, port)
    if reason is not None:
        common.fail(f"port {port} on {host} is not free ({reason}): choose another with {flag}")
