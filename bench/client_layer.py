"""CPU of the publishing client's httpx layer alone, with and without its trimmings, in one run:
`python -m bench.client_layer [--requests N] [--concurrency C] [--rounds R]`.

Each round sends N status posts the way the publishers do (a JSON body, an Authorization and an
Idempotency-Key header, the answer's JSON read) to the sandbox's Mastodon, C at a time, once
through `PublishingClient` and once through a plain `httpx.AsyncClient` with a jar that keeps no
cookie (the client before it), both over the same aiohttp transport; the order alternates from
one round to the next so machine noise hits both. Prints the median CPU ms per request of each
and their ratio (JSON). `--only KIND` runs one client alone (for an instruction count: run it
under `valgrind --tool=callgrind` at two request counts; the sandbox, a child process, is not
counted)."""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import httpx

from bench import common
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.client import PublishingClient
from postpilot.publishers.transport_aiohttp import PublicOnlyAiohttpTransport


def _client(kind: str, concurrency: int) -> httpx.AsyncClient:
    transport = PublicOnlyAiohttpTransport(
        AddressPolicy.allowing("127.0.0.1"),
        limits=httpx.Limits(max_connections=max(100, concurrency * 4)),
    )
    headers = {"User-Agent": "bench"}
    if kind == "publishing":
        return PublishingClient(transport=transport, timeout=30.0, headers=headers)
    no_jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(transport=transport, timeout=30.0, headers=headers, cookies=no_jar)


async def _round(kind: str, url: str, requests: int, concurrency: int, tag: str) -> float:
    """CPU ms per request of one round (the client opened and warmed before the clock)."""
    async with _client(kind, concurrency) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(requests):
            queue.put_nowait(number)

        async def post(number: int) -> None:
            response = await client.post(
                url,
                headers={"Authorization": "Bearer bench", "Idempotency-Key": f"{tag}-{number}"},
                json={"status": f"{tag} post {number}", "visibility": "public"},
            )
            response.raise_for_status()
            response.json()

        for number in range(concurrency):  # connections open before the clock
            await post(-1 - number)

        async def worker() -> None:
            while not queue.empty():
                await post(queue.get_nowait())

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - started) * 1000 / requests


async def main(
    requests: int, concurrency: int, rounds: int, only: str | None = None
) -> dict[str, object]:
    with common.running_sandbox() as sandbox:
        sandbox.prepare(latency_ms=0, fault_rate=0, seed=0)
        url = f"{sandbox.url}/mastodon/api/v1/statuses"
        cpu: dict[str, list[float]] = {"plain": [], "publishing": []}
        for number in range(rounds):
            both = ("plain", "publishing") if number % 2 == 0 else ("publishing", "plain")
            order: tuple[str, ...] = (only,) if only else both
            for kind in order:
                tag = f"{kind}{number}"
                cpu[kind].append(await _round(kind, url, requests, concurrency, tag))
                sandbox.prepare(latency_ms=0, fault_rate=0, seed=number)
    if only:
        return {"requests": requests, "client": only, "cpu_ms_per_request": cpu[only]}
    plain, lean = (statistics.median(cpu[kind]) for kind in ("plain", "publishing"))
    return {
        "requests": requests,
        "concurrency": concurrency,
        "rounds": rounds,
        "cpu_ms_per_request": {kind: [round(v, 4) for v in values] for kind, values in cpu.items()},
        "median_plain_ms": round(plain, 4),
        "median_publishing_ms": round(lean, 4),
        "publishing_over_plain": round(lean / plain, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--only", choices=["plain", "publishing"])
    args = parser.parse_args()
    result = asyncio.run(main(args.requests, args.concurrency, args.rounds, args.only))
    print(json.dumps(result, indent=2))
