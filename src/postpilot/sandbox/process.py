"""Start the sandbox as a separate process on a free loopback port (tests, demo, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


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
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "postpilot.cli.main", "sandbox", "--port", str(port), "--quiet"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with code {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_sandbox/health", timeout=1).status_code == 200:
                return SandboxProcess(url=url, process=process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the sandbox did not answer on {url} within {timeout:g} s")


@contextlib.contextmanager
def running_sandbox(port: int | None = None) -> Iterator[SandboxProcess]:
    sandbox = start_sandbox(port)
    try:
        yield sandbox
    finally:
        sandbox.stop()
