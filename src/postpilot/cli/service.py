"""`postpilot serve`, `postpilot worker`, `postpilot run-once`."""

from __future__ import annotations

import asyncio
import json
import signal

import typer
import uvicorn

from postpilot.api.app import create_app
from postpilot.cli import common, ports
from postpilot.core import knobs
from postpilot.monitor import prometheus
from postpilot.runtime import open_runtime
from postpilot.scheduler.passes import cron_pass
from postpilot.scheduler.worker import Worker


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    worker: bool = typer.Option(True, "--worker/--no-worker", help="Run the worker in-process."),
) -> None:
    """Run the HTTP API (and, by default, the worker in the same process)."""
    ports.ensure_free(port, flag="--port", host=host)
    settings = common.settings()

    async def check() -> None:
        # Missing secret or old schema: one line here rather than a failing lifespan in uvicorn.
        async with open_runtime(settings):
            pass

    common.run(check())
    uvicorn.run(
        create_app(settings, with_worker=worker),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


def worker(
    scheduler: knobs.SchedulerKind | None = typer.Option(
        None, help="Pin a scheduler; by default follow `postpilot scheduler use`."
    ),
) -> None:
    """Run passes continuously until SIGTERM/SIGINT; finish or release what is held, then stop."""
    settings = common.settings()

    async def go() -> None:
        async with open_runtime(settings) as runtime:
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
            try:
                await Worker(runtime, scheduler=scheduler.value if scheduler else None).run(stop)
            finally:
                stop.set()
                await monitor
                if stop_metrics is not None:
                    stop_metrics()

    common.run(go())


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
