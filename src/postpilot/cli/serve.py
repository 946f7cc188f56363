"""`postpilot serve`: the HTTP API, the web app and, by default, the worker in one process."""

from __future__ import annotations

import typer
import uvicorn

from postpilot import heap, loop
from postpilot.api.app import create_app
from postpilot.cli import common, ports
from postpilot.cli.worker import check_runtime


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    worker: bool = typer.Option(True, "--worker/--no-worker", help="Run the worker in-process."),
) -> None:
    """Run the HTTP API (and, by default, the worker in the same process)."""
    ports.ensure_free(port, flag="--port", host=host)
    settings = common.settings()

    # Missing secret or old schema: one line here rather than a failing lifespan in uvicorn.
    common.run(check_runtime(settings))
    app = create_app(settings, with_worker=worker)
    heap.settle()  # before the lifespan's runtime: the imports and the app are the bulk
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop=loop.name(),
        # The app reads X-Forwarded-For itself, from TRUSTED_PROXIES only (web/auth.py).
        proxy_headers=False,
    )
