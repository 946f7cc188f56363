"""`postpilot sandbox`: run the platform sandbox server."""

from __future__ import annotations

import typer

from postpilot.cli import ports
from postpilot.sandbox.server import serve


def sandbox(
    port: int = typer.Option(8765, help="Port to listen on (loopback only)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    quiet: bool = typer.Option(False, help="Do not log each request."),
) -> None:
    """Run the sandbox that speaks the platforms' publishing contracts, offline."""
    ports.ensure_free(port, flag="--port", host=host)
    serve(host=host, port=port, quiet=quiet)
