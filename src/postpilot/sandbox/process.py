"""Start the sandbox as a separate process on a free loopback port (tests, demo, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from postpilot.errors import PostpilotError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SandboxProcess:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sandbox(port: int | None = None, *, timeout: float = 30.0) -> SandboxProcess:
    """Start a sandbox; with no port given, on a free one (retried if another process takes it
    between the check and the bind)."""
    attempts = 1 if port else 3
    for attempt in range(attempts):
        try:
            return _start(port or free_port(), timeout)
        except _PortTaken:
            if attempt == attempts - 1:
                raise RuntimeError("the sandbox could not bind a free port") from None
    raise AssertionError("unreachable")


class _PortTaken(PostpilotError):
    """The sandbox could not listen on the port: another process holds it."""


def _start(port: int, timeout: float) -> SandboxProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "postpilot.sandbox", "--port", str(port), "--quiet"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise (
                _PortTaken
                if process.returncode == 1
                else RuntimeError(f"the sandbox exited with code {process.returncode}")
            )
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(f"{url}/_sandbox/health", timeout=1)
            # The pid tells our sandbox from another one already listening on that port.
            if answer.status_code == 200 and answer.json().get("pid") == process.pid:
                return SandboxProcess(url=url, process=process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the sandbox did not answer on {url} within {timeout:g} s")
