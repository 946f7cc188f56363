"""`python -m postpilot.sandbox --port P`: the sandbox alone, without importing the whole CLI
(tests and benchmarks start it often; `postpilot sandbox` is the same server)."""

from __future__ import annotations

import argparse

import uvicorn

from postpilot import heap
from postpilot.sandbox.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m postpilot.sandbox")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument(
        "--http",
        choices=["auto", "httptools", "h11"],
        default="auto",
        help="HTTP parser (auto: httptools when installed, as it is with postpilot)",
    )
    args = parser.parse_args()
    # The sandbox's CPU per request is part of every benchmark's figures: uvloop and httptools
    # where installed (uvicorn's "auto"), no access log, no per-response Server/Date headers.
    app = create_app()
    heap.settle()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="auto",
        http=args.http,
        log_level="warning" if args.quiet else "info",
        access_log=not args.quiet,
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
