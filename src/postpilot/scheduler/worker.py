"""The long-running worker: passes back to back while work is due, asleep until the next due
time otherwise, woken at once by a new or rescheduled post (PostgreSQL LISTEN/NOTIFY, or an
in-process event on SQLite). It follows `postpilot scheduler use/tune` at its next pass, writes
a heartbeat, and on stop finishes or releases what it holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from postpilot.core.states import WorkerState
from postpilot.scheduler import reconcile, recurring
from postpilot.scheduler.passes import run_pass
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.summary import PassReport
from postpilot.store import database, heartbeats, scheduler_config, work
from postpilot.store.posts import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        worker_id: str | None = None,
        scheduler: str | None = None,  # pin a scheduler; None follows the stored setting
        max_passes: int | None = None,  # for tests and benchmarks: stop after this many
    ) -> None:
        self.runtime = runtime
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.pinned = scheduler
        self.max_passes = max_passes
        self.started_at: datetime = runtime.now()
        self.passes = 0
        self.last_report: PassReport | None = None
        # While a pass runs: when it started and the longest it may take (its settings' bound).
        self._pass_started: float | None = None
        self._pass_bound = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started", extra={"worker_id": self.worker_id})
        await asyncio.to_thread(self.runtime.journal.sweep)
        async with self._heartbeat(stop), self._listen(), reconcile.running(self.runtime, stop):
            plans = recurring.PlanStep(self.runtime)
            while not stop.is_set():
                await plans.maybe_run()  # recurring and evergreen posts, once a minute
                try:
                    sleep = await self._one_pass(stop)
                except Exception as exc:
                    _log_failure("pass", exc, self.worker_id)
                    sleep = self.runtime.settings.WORKER_POLL_SECONDS
                if self.max_passes is not None and self.passes >= self.max_passes:
                    break
                if sleep > 0:
                    await self._sleep(sleep, stop)
        log.info("worker stopped", extra={"worker_id": self.worker_id, "passes": self.passes})

    async def _one_pass(self, stop: asyncio.Event) -> float:
        """Run a pass; return how long to sleep before the next one."""
        async with self.runtime.db.engine.connect() as conn:
            config = await scheduler_config.read(conn)
        self.runtime.wakeup.clear()
        settings = self.runtime.settings
        self._pass_bound = pass_bound(
            self.runtime,
            config.batch_size or settings.SCHEDULER_BATCH_SIZE,
            config.concurrency or settings.SCHEDULER_CONCURRENCY,
        )
        self._pass_started = time.monotonic()
        try:
            report = await run_pass(
                self.runtime,
                scheduler=self.pinned or config.active,
                limit=config.batch_size,
                concurrency=config.concurrency,
                stop=stop,
            )
        finally:
            self._pass_started = None
        self.passes += 1
        self.last_report = report
        if report.claimed >= report.limit and not stop.is_set():
            return 0.0  # a full batch: more is probably due
        cap = config.interval_seconds or self.runtime.settings.WORKER_POLL_SECONDS
        async with self.runtime.db.engine.connect() as conn:
            next_due = await work.next_due_at(conn)
        if next_due is None:
            return cap
        return max(0.0, min(cap, (next_due - self.runtime.now()).total_seconds()))

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        waits = [
            asyncio.create_task(self.runtime.wakeup.wait()),
            asyncio.create_task(stop.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    def stalled_for(self) -> float | None:
        """Seconds the current pass has run beyond its bound, or None while it is within it."""
        if self._pass_started is None:
            return None
        over = time.monotonic() - self._pass_started - self._pass_bound
        return over if over > 0 else None

    @contextlib.asynccontextmanager
    async def _heartbeat(self, stop: asyncio.Event) -> AsyncIterator[None]:
        async def beat(state: WorkerState | None = None) -> None:
            if state is None:
                # A beat says the worker makes progress, not only that its process is alive.
                stalled = self.stalled_for() is not None
                state = WorkerState.STALLED if stalled else WorkerState.RUNNING
            async with self.runtime.db.engine.begin() as conn:
                await heartbeats.beat(
                    conn,
                    worker_id=self.worker_id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=self.started_at,
                    now=self.runtime.now(),
                    state=state,
                )

        async def loop() -> None:
            while not stop.is_set():
                try:
                    await beat()
                except Exception as exc:
                    _log_failure("heartbeat", exc, self.worker_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), heartbeats.HEARTBEAT_SECONDS)

        task = asyncio.create_task(loop(), name=f"heartbeat-{self.worker_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await beat(WorkerState.STOPPED)

    @contextlib.asynccontextmanager
    async def _listen(self) -> AsyncIterator[None]:
        """On PostgreSQL, a dedicated connection LISTENs for new or rescheduled posts: to
        DATABASE_LISTEN_URL when set, else to DATABASE_URL unless that goes through a pooler in
        transaction mode (which would hand the LISTEN's session to other clients)."""
        if self.runtime.db.is_sqlite:
            yield
            return
        dsn = listen_dsn(self.runtime)
        if dsn is None:
            log.warning(
                "DATABASE_URL goes through a pooler in transaction mode, where LISTEN cannot "
                "work, and DATABASE_LISTEN_URL is not set: polling every %g s for new posts",
                self.runtime.settings.WORKER_POLL_SECONDS,
                extra={"worker_id": self.worker_id},
            )
            yield
            return
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(dsn)

            def wake(*_args: object) -> None:
                self.runtime.wakeup.set()

            await connection.add_listener(NOTIFY_CHANNEL, wake)
        except (OSError, asyncpg.PostgresError):
            log.warning("LISTEN unavailable: falling back to polling", exc_info=True)
        try:
            yield
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()


def listen_dsn(runtime: Runtime) -> str | None:
    """Where this worker LISTENs, or None when it must poll."""
    if runtime.settings.DATABASE_LISTEN_URL:
        return database.asyncpg_dsn(runtime.settings.DATABASE_LISTEN_URL)
    if runtime.db.pooled:
        return None
    return database.asyncpg_dsn(runtime.db.url)


def _log_failure(what: str, exc: Exception, worker_id: str) -> None:
    """An unreachable database is one warning line (it recurs every poll until it is back);
    anything else is a bug worth its traceback."""
    if database.unreachable(exc):
        log.warning(
            "%s failed: the database is unreachable (%s); trying again",
            what,
            type(exc).__name__,
            extra={"worker_id": worker_id},
        )
    else:
        log.exception("%s failed", what, extra={"worker_id": worker_id})


def pass_bound(runtime: Runtime, limit: int, concurrency: int) -> float:
    """The longest a pass with these settings can take when nothing is wrong with it: each wave
    of deliveries within its timeout, then the outcome write's retries, with a lease of slack."""
    settings = runtime.settings
    waves = math.ceil(limit / max(1, concurrency))
    return (
        waves * settings.SCHEDULER_DELIVERY_TIMEOUT_SECONDS
        + settings.SCHEDULER_WRITE_RETRY_SECONDS
        + settings.SCHEDULER_LEASE_SECONDS
    )
