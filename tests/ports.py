"""Free loopback ports for servers a test starts (light: `python -m tests.peers` imports it)."""

from __future__ import annotations

import socket

from postpilot.sandbox.process import free_port


def free_port_pair() -> int:
    """A free port p with p + 1 free too (a server on p and a second one beside it)."""
    for _ in range(50):
        base = free_port()
        if base >= 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two adjacent free ports")
