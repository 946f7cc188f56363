"""A PgBouncer in transaction mode in front of the local PostgreSQL, on a free port, for the
benchmark's `--pgbouncer` runs and the PgBouncer tests: Debian's `pgbouncer` binary, a scratch
folder for its configuration and log, stopped on the way out."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from postpilot.sandbox.process import free_port

BINARY = shutil.which("pgbouncer") or next(
    (path for path in ("/usr/sbin/pgbouncer",) if os.access(path, os.X_OK)), None
)


class Missing(RuntimeError):
    """pgbouncer is not installed (Debian: apt-get install pgbouncer; scripts/services does)."""


@dataclass(frozen=True)
class PgBouncer:
    port: int
    log: Path

    def url(self, direct_url: str) -> str:
        """The same database through the pooler, marked so (`?pooler=transaction`)."""
        return str(make_url(direct_url).set(port=self.port)) + "?pooler=transaction"


@contextlib.contextmanager
def running(*, user: str, pool_size: int, timeout: float = 20) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode for every database of 127.0.0.1:5432, trusting `user`;
    `pool_size` server connections per database (fewer than the clients: transactions then
    really move between server sessions)."""
    if BINARY is None:
        raise Missing(Missing.__doc__)
    folder = Path(tempfile.mkdtemp(prefix="pp-pgbouncer-"))
    folder.chmod(0o755)  # it drops root for an unprivileged user, who must read its files
    port = free_port()
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                "* = host=127.0.0.1 port=5432",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {folder / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 1000",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
    log = folder / "pgbouncer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BINARY, *as_user, str(folder / "pgbouncer.ini")], stdout=out, stderr=out
        )
    try:
        _wait_listening(process, port, log, timeout)
        yield PgBouncer(port, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    """Until it accepts connections; its log in the error if it exits or never does."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer not listening within {timeout} s") from None
            time.sleep(0.05)
