"""Which non-idempotent deliveries a pass began sending, kept durably on this machine.

A pass that dies leaves its claimed deliveries to be recovered when the lease ends. Where the
platform cannot deduplicate a repeat, recovery must know whether an attempt may have reached it.
Writing that to the database before every send would cost a statement per delivery, so the pass
appends each id to a local file (fsynced) before sending instead:

- the file exists and lists the delivery: it may have been sent, so it becomes `unknown`;
- the file exists and does not list it: it was never sent, so it is published normally;
- no file (the pass ran on another machine, or before this journal): `unknown`, to be safe.

The file is created (with a begin line) before the pass sends anything, and removed once the
pass has written its outcomes. Files older than a day are swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

BEGIN = "begin"
SWEEP_AFTER_SECONDS = 86_400.0


class InFlightJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def begin(self, pass_id: str) -> None:
        await asyncio.to_thread(self._append, pass_id, BEGIN)

    async def mark(self, pass_id: str, delivery_id: str) -> None:
        """Returns only once the mark is on disk: the caller sends after it."""
        await asyncio.to_thread(self._append, pass_id, delivery_id)

    async def may_have_sent(self, pass_id: str | None, delivery_id: str) -> bool:
        if not pass_id:
            return True
        started = await asyncio.to_thread(self._read, pass_id)
        return started is None or delivery_id in started

    async def end(self, pass_id: str) -> None:
        await asyncio.to_thread(self._path(pass_id).unlink, True)

    def sweep(self) -> None:
        if not self.directory.is_dir():
            return
        cutoff = time.time() - SWEEP_AFTER_SECONDS
        for path in self.directory.glob("*.log"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def _path(self, pass_id: str) -> Path:
        if not pass_id.replace("-", "").isalnum():
            raise ValueError(f"not a pass id: {pass_id!r}")
        return self.directory / f"{pass_id}.log"

    def _append(self, pass_id: str, line: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(pass_id)
        created = not path.exists()
        with path.open("a", encoding="utf-8") as journal:
            journal.write(f"{line}\n")
            journal.flush()
            os.fsync(journal.fileno())
        if created:  # make the new directory entry itself durable
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _read(self, pass_id: str) -> set[str] | None:
        try:
            lines = self._path(pass_id).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        if not lines or lines[0] != BEGIN:
            return None
        return set(lines[1:])
