"""The Bluesky PDS peer (../shared/peers/bluesky_pds): where its scripts are, where it installs,
and its first install, which scripts/test starts in the background while lint and types run.

The first install (Node 22, `npm ci`, a native better-sqlite3 build) takes minutes of CPU; done
while the tests run, it slowed every other test on a 2-core machine. The install and the test's
start take one lock on the install folder, so the test waits for an install under way instead
of starting a second one in the same folder.

    python -m tests.peers      install the peer (start it once and stop it), then exit
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import ports

PDS_INSTALL_DIR = Path(os.environ.get("POSTPILOT_PDS_DIR", "/tmp/postpilot-bluesky-pds"))
# The first install with a cold npm cache: a few minutes on a loaded 2-core machine.
INSTALL_TIMEOUT_SECONDS = 900


def pds_peer_dir() -> Path | None:
    """The peers folder beside the repo (CI: ../shared), else the machine's /work/shared."""
    repo = Path(__file__).resolve().parents[1]
    for shared in (repo / ".." / "shared", Path("/work/shared")):
        candidate = (shared / "peers" / "bluesky_pds").resolve()
        if (candidate / "start.sh").is_file():
            return candidate
    return None


@contextmanager
def install_lock() -> Iterator[None]:
    """Held while the peer installs or starts in PDS_INSTALL_DIR; waits while another holds it."""
    PDS_INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with open(PDS_INSTALL_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_pds(folder: Path) -> subprocess.CompletedProcess[str]:
    """start.sh on a fresh data folder and free ports; installs first when not installed yet."""
    env = {**os.environ, "PDS_PORT": str(ports.free_port_pair()), "FRESH": "1"}
    return subprocess.run(
        ["bash", str(folder / "start.sh"), str(PDS_INSTALL_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )


def stop_pds(folder: Path) -> None:
    subprocess.run(
        ["bash", str(folder / "stop.sh"), str(PDS_INSTALL_DIR)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def install() -> int:
    """Install the peer by starting it once and stopping it. A failure is printed and left for
    the test, whose own start then installs again and fails with the reason."""
    folder = pds_peer_dir()
    if folder is None:
        return 0
    with install_lock():
        started = start_pds(folder)
        stop_pds(folder)
    if started.returncode != 0:
        sys.stderr.write(started.stderr[-3000:])
    return started.returncode


if __name__ == "__main__":
    sys.exit(install())
