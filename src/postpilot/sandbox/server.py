"""The sandbox's HTTP server, one definition for `postpilot sandbox` and `python -m
postpilot.sandbox`."""

from __future__ import annotations

import uvicorn

from postpilot import heap
from postpilot.sandbox.app import create_app


def serve(*, host: str, port: int, quiet: bool, http: str = "auto") -> None:
    """The sandbox's server, as `postpilot sandbox` and this module run it. Its CPU per request
    is part of every benchmark's figures: uvloop and httptools where installed (uvicorn's
    "auto"), no access log when quiet, no per-response Server/Date headers."""
    app = create_app()
    heap.settle()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="auto",
        http=http,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        server_header=False,
        date_header=False,
    )
