"""Worker processes for the integration tests, killed at the end of each test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    """Start `postpilot worker` processes; whatever is left is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "postpilot.cli.main", "worker", "--processes", "1"],
            env=env,
            cwd=tmp_path,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
