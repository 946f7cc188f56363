"""A taken port ends `serve`, `sandbox` and `demo run` with one line naming the port and the
flag that changes it, before anything is written, seeded or printed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postpilot.cli import ports
from postpilot.cli.main import app
from postpilot.sandbox.process import free_port


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another socket listens on for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["serve", "--port"], "--port"),
        (["sandbox", "--port"], "--port"),
        (["demo", "run", "--port"], "--port"),
        (["demo", "run", "--sandbox-port"], "--sandbox-port"),
    ],
)
def test_a_taken_port_is_one_line_before_anything_happens(
    command: list[str], flag: str, held_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    other = ["--sandbox-port", str(free_port())] if flag == "--port" and "demo" in command else []
    result = CliRunner().invoke(app, [*command, str(held_port), *other])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {held_port} on 127.0.0.1 is not free" in lines[0]
    assert lines[0].endswith(f"choose another with {flag}")
    assert list(tmp_path.iterdir()) == []  # no .env.local, no database


def test_a_free_port_is_free() -> None:
    assert ports.taken("127.0.0.1", free_port()) is None


def test_an_unknown_host_is_named() -> None:
    reason = ports.taken("no-such-host.invalid", 8000)
    assert reason is not None and "no-such-host.invalid" in reason
