"""`python -m postpilot.sandbox --port P`: the sandbox alone, without importing the whole CLI
(tests and benchmarks start it often; `postpilot sandbox` is the same server)."""

from __future__ import annotations

import argparse

from postpilot.sandbox.server import serve


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
    serve(host=args.host, port=args.port, quiet=args.quiet, http=args.http)


if __name__ == "__main__":
    main()
