"""Every core: `postpilot worker --processes N` runs N worker processes, each its own event loop,
database pool and heartbeat, under a supervisor that

- forwards SIGTERM/SIGINT to them, each then drains as a single worker does (hands back what it
  has not started, gives what is in flight WORKER_SHUTDOWN_GRACE_SECONDS), and kills one that
  outlives that grace by DRAIN_SLACK_SECONDS;
- restarts one that exits unasked, after a delay that doubles while it keeps dying young;
- gives up, stopping the others and exiting non-zero, when one keeps dying.

Processes rather than threads or one bigger loop: a worker is CPU-bound in Python (encoding
requests, parsing answers), so one process uses one core. Each child watches that its
supervisor is alive and drains if it is gone, so a killed supervisor leaves no workers behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# Beyond the grace, what a draining worker needs to hand back its deliveries and say stopped.
DRAIN_SLACK_SECONDS = 15.0
PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Restarts:
    """When a child that exited unasked is started again, and when to stop trying."""

    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    # A child that ran this long before it died was healthy: its next restart is quick again.
    healthy_after_seconds: float = 60.0
    # Deaths in a row, each younger than healthy_after_seconds, before the supervisor gives up.
    give_up_after: int = 5

    def delay(self, deaths: int) -> float:
        """Seconds before the restart that follows `deaths` young deaths in a row (>= 1)."""
        return min(self.max_delay_seconds, self.first_delay_seconds * 2.0 ** (deaths - 1))


@dataclass
class Supervisor:
    """Keeps `processes` copies of `command` running until `stop` is set."""

    command: Sequence[str]
    processes: int
    grace_seconds: float
    restarts: Restarts = field(default_factory=Restarts)
    # The environment of child `slot` (0 .. processes - 1); None inherits ours.
    env_for: Callable[[int], Mapping[str, str] | None] = lambda _slot: None
    gave_up: bool = False
    exit_codes: list[int] = field(default_factory=list)  # of children stopped on request

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` (or until a child keeps dying); 0 when every child stopped cleanly
        on request."""
        slots = [
            asyncio.create_task(self._keep(slot, stop), name=f"worker-process-{slot}")
            for slot in range(self.processes)
        ]
        try:
            await asyncio.gather(*slots)
        finally:
            stop.set()  # a slot that failed unexpectedly still drains the others
            await asyncio.gather(*slots, return_exceptions=True)
        if self.gave_up:
            return 1
        return 0 if all(code == 0 for code in self.exit_codes) else 1

    async def _keep(self, slot: int, stop: asyncio.Event) -> None:
        deaths = 0
        while not stop.is_set():
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(*self.command, env=self.env_for(slot))
            log.info("worker process %d started (pid %d)", slot, process.pid)
            code = await self._until_exit_or_stop(slot, process, stop)
            if code is None:
                return  # stopped on request
            lived = time.monotonic() - started
            deaths = 1 if lived >= self.restarts.healthy_after_seconds else deaths + 1
            if deaths >= self.restarts.give_up_after:
                log.error(
                    "worker process %d (pid %d) exited with code %d, %d times in a row within "
                    "%g s of starting: stopping every worker process",
                    slot,
                    process.pid,
                    code,
                    deaths,
                    self.restarts.healthy_after_seconds,
                )
                self.gave_up = True
                stop.set()
                return
            delay = self.restarts.delay(deaths)
            log.warning(
                "worker process %d (pid %d) exited unasked with code %d after %.1f s; "
                "restarting it in %g s",
                slot,
                process.pid,
                code,
                lived,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _until_exit_or_stop(
        self, slot: int, process: asyncio.subprocess.Process, stop: asyncio.Event
    ) -> int | None:
        """The exit code of a child that exited unasked; None once it was stopped on request."""
        exited = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if exited.done():
            return exited.result()
        # Drain: the child hands back what it has not started and finishes what is in flight.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(exited, self.grace_seconds + DRAIN_SLACK_SECONDS)
        except TimeoutError:
            log.error(
                "worker process %d (pid %d) did not stop within %g s: killing it",
                slot,
                process.pid,
                self.grace_seconds + DRAIN_SLACK_SECONDS,
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
        self.exit_codes.append(code)
        return None


async def watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Set `stop` once the process that started us is gone (we were re-parented): a killed
    supervisor leaves no worker running unsupervised."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.warning("the supervisor (pid %d) is gone: stopping", parent_pid)
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
