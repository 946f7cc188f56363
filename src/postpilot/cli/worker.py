"""`postpilot worker` (continuous passes, one process or a supervisor of many) and `postpilot
run-once` (one pass). Neither imports the HTTP app: a worker process starts without it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

import typer
from sqlalchemy.engine import make_url

from postpilot import heap
from postpilot.cli import common
from postpilot.core import knobs
from postpilot.monitor import prometheus
from postpilot.runtime import open_runtime
from postpilot.scheduler import processes as supervision
from postpilot.scheduler.passes import cron_pass
from postpilot.scheduler.worker import Worker
from postpilot.settings import Settings

log = logging.getLogger(__name__)


def worker(
    scheduler: knobs.SchedulerKind | None = typer.Option(
        None, help="Pin a scheduler; by default follow `postpilot scheduler use`."
    ),
    processes: int | None = typer.Option(
        None,
        min=1,
        max=256,
        help="Worker processes (PostgreSQL; one on SQLite). Default: WORKER_PROCESSES, else "
        "one per core.",
    ),
    supervisor_pid: int | None = typer.Option(None, hidden=True),
) -> None:
    """Run passes continuously until SIGTERM/SIGINT; finish or release what is held, then stop."""
    settings = common.settings()
    count = process_count(settings, processes)
    if count > 1:
        common.run(check_runtime(settings))
        code = common.run(supervise(settings, count, scheduler))
        raise typer.Exit(code)

    async def go() -> None:
        async with open_runtime(settings) as runtime:
            heap.settle()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            stop_metrics = (
                prometheus.serve(
                    runtime.monitor.prometheus,
                    host=settings.WORKER_METRICS_HOST,
                    port=settings.WORKER_METRICS_PORT,
                )
                if settings.WORKER_METRICS_PORT
                else None
            )
            # Alerts on a timer as well as after passes: the overdue rule fires when none runs.
            monitor = asyncio.create_task(runtime.monitor.run(stop), name="monitor")
            parent = (
                asyncio.create_task(supervision.watch_parent(supervisor_pid, stop), name="parent")
                if supervisor_pid
                else None
            )
            try:
                await Worker(runtime, scheduler=scheduler.value if scheduler else None).run(stop)
            finally:
                stop.set()
                await monitor
                if parent is not None:
                    await parent
                if stop_metrics is not None:
                    stop_metrics()

    common.run(go())


def process_count(settings: Settings, asked: int | None) -> int:
    """How many worker processes: --processes, else WORKER_PROCESSES, else one per core; one on
    SQLite, where more than one asked for is refused."""
    wanted = asked or settings.WORKER_PROCESSES
    if make_url(settings.DATABASE_URL).get_backend_name() == "sqlite":
        if wanted is not None and wanted > 1:
            flag = "--processes" if asked else "WORKER_PROCESSES"
            common.fail(
                f"{flag} {wanted}: SQLite has one writer, so a worker on SQLite runs one "
                "process (use PostgreSQL for more)",
                code=2,
            )
        return 1
    return wanted or os.cpu_count() or 1


async def check_runtime(settings: Settings) -> None:
    """Missing secret or old schema: one line here, not one per process."""
    async with open_runtime(settings):
        pass


async def supervise(settings: Settings, count: int, scheduler: knobs.SchedulerKind | None) -> int:
    """Run `count` single-process workers under a supervisor until SIGTERM/SIGINT."""
    command = [
        sys.executable,
        "-m",
        "postpilot.cli.main",
        "worker",
        "--processes",
        "1",
        "--supervisor-pid",
        str(os.getpid()),
    ]
    if scheduler is not None:
        command += ["--scheduler", scheduler.value]

    def env_for(slot: int) -> dict[str, str] | None:
        if not settings.WORKER_METRICS_PORT:
            return None
        # One port each: process i serves its own /metrics on WORKER_METRICS_PORT + i.
        return {**os.environ, "WORKER_METRICS_PORT": str(settings.WORKER_METRICS_PORT + slot)}

    if not settings.REDIS_URL:
        log.info(
            "account caps hold across this machine's %d worker processes (lock files); "
            "workers on other machines are not counted: set REDIS_URL to share them",
            count,
        )
    supervisor = supervision.Supervisor(
        command=command,
        processes=count,
        grace_seconds=settings.WORKER_SHUTDOWN_GRACE_SECONDS,
        env_for=env_for,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await supervisor.run(stop)


def run_once(
    scheduler: knobs.SchedulerKind = typer.Option(knobs.DEFAULT_SCHEDULER, help="Which scheduler."),
    limit: int | None = typer.Option(
        None, min=knobs.BATCH_SIZE.low, max=knobs.BATCH_SIZE.high, help=knobs.BATCH_SIZE.help
    ),
    concurrency: int | None = typer.Option(
        None, min=knobs.CONCURRENCY.low, max=knobs.CONCURRENCY.high, help=knobs.CONCURRENCY.help
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run one pass of a scheduler and print what it did."""
    settings = common.settings()

    async def go() -> dict[str, object]:
        async with open_runtime(settings) as runtime:
            report = await cron_pass(
                runtime, scheduler=scheduler, limit=limit, concurrency=concurrency
            )
            return report.summary()

    summary = common.run(go())
    if as_json:
        common.console.print_json(json.dumps(summary))
        return
    common.console.print(
        "{scheduler} pass: claimed {claimed}, published {published}, failed {failed}, "
        "retried {retried}, rate-limited {rate_limited}, unknown {unknown} "
        "in {duration_ms} ms with {db_statements} DB statements".format(**summary)
    )
