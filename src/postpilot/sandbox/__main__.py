"""`python -m postpilot.sandbox --port P`: the sandbox alone, without importing the whole CLI
(tests and benchmarks start it often; `postpilot sandbox` is the same server)."""

from __future__ import annotations

import argparse

import uvicorn

from postpilot.sandbox.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m postpilot.sandbox")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="warning" if args.quiet else "info",
        access_log=not args.quiet,
    )


if __name__ == "__main__":
    main()
