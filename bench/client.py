"""The HTTP client's own cost, candidate by candidate, in one run: N Mastodon publish requests to
the sandbox at each concurrency, no database, no scheduler. Client CPU per request is this
process's, the sandbox's is its process's (psutil), so both hold on a busy machine.

Candidates: httpx over httpcore with the public-only backend (the publishing client before issue
12), httpx over httpx_aiohttp's transport, httpx over postpilot's own aiohttp transport (what
`build_runtime` builds now, with and without uvloop), and aiohttp alone (with and without
uvloop), the floor for any httpx-shaped client."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import httpx
import httpx_aiohttp
import uvloop
from rich.progress import Progress

from bench import common, report
from postpilot.core import figures
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.transport import public_only_transport
from postpilot.runtime import build_runtime

CANDIDATES = (
    "httpx+httpcore",
    "httpx+httpx_aiohttp",
    "httpx+postpilot_aiohttp",
    "httpx+postpilot_aiohttp+uvloop",
    "aiohttp",
    "aiohttp+uvloop",
)
Send = Callable[[int], Awaitable[int]]


class _Sniffio:
    """Stands in for the `sniffio` package where it is not installed: httpcore's
    `current_async_library()` tries `import sniffio` on every lock and semaphore it sets up, and a
    failed import is not cached (bench.child's `sniffio_importable` uses it)."""

    @staticmethod
    def current_async_library() -> str:
        return "asyncio"


@contextlib.contextmanager
def sniffio_importable(enabled: bool) -> Iterator[None]:
    if not enabled or "sniffio" in sys.modules:
        yield
        return
    sys.modules["sniffio"] = _Sniffio  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules["sniffio"]


@dataclass(frozen=True)
class Params:
    requests: int = 3000
    concurrencies: tuple[int, ...] = (10, 50)
    latency_ms: float = 20.0
    repeat: int = 3
    candidates: tuple[str, ...] = CANDIDATES


def params(args: argparse.Namespace) -> Params:
    p = Params(requests=60, repeat=1) if args.smoke else Params()
    changes: dict[str, Any] = {}
    if args.deliveries:
        changes["requests"] = args.deliveries
    if args.latency_ms is not None:
        changes["latency_ms"] = args.latency_ms
    if args.repeat:
        changes["repeat"] = args.repeat
    if args.concurrency:
        changes["concurrencies"] = (args.concurrency,)
    if getattr(args, "clients", None):
        changes["candidates"] = tuple(args.clients.split(","))
    return Params(**{**asdict(p), **changes})


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _request(index: int) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"status": f"client probe {index}", "media_ids": [], "visibility": "public"}
    return body, {"Authorization": "Bearer bench-client", "Idempotency-Key": f"probe-{index}"}


@contextlib.asynccontextmanager
async def sender(candidate: str, sandbox_url: str, concurrency: int) -> Any:
    """A function that sends publish request `index` and returns its status, through
    `candidate`'s client (built, and closed after)."""
    url = f"{sandbox_url}/mastodon/api/v1/statuses"
    limits = httpx.Limits(
        max_connections=max(100, concurrency * 4),
        max_keepalive_connections=max(20, concurrency * 2),
    )
    if candidate.startswith("aiohttp"):
        connector = aiohttp.TCPConnector(limit=limits.max_connections or 0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def bare(index: int) -> int:
                body, headers = _request(index)
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    return response.status

            yield bare
        return
    if candidate.startswith("httpx+postpilot_aiohttp"):  # exactly what the scheduler uses
        settings = common.bench_settings(
            database_url="sqlite+aiosqlite:///./never-opened.db",
            sandbox_url=sandbox_url,
            concurrency=concurrency,
        )
        runtime = build_runtime(settings)
        http = runtime.http
    else:
        runtime = None
        policy = AddressPolicy.allowing(sandbox_url.removeprefix("http://"))
        transport: httpx.AsyncBaseTransport = (
            public_only_transport(policy, limits=limits)
            if candidate == "httpx+httpcore"
            else httpx_aiohttp.AiohttpTransport(limits=limits, trust_env=False)
        )
        http = httpx.AsyncClient(transport=transport, timeout=15.0)

    async def through_httpx(index: int) -> int:
        body, headers = _request(index)
        response = await http.post(url, json=body, headers=headers)
        return response.status_code

    try:
        yield through_httpx
    finally:
        await (runtime.close() if runtime else http.aclose())


async def burst(
    candidate: str, sandbox_url: str, requests: int, concurrency: int
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    durations: list[float] = []
    statuses: dict[int, int] = {}
    async with sender(candidate, sandbox_url, concurrency) as send:

        async def one(index: int) -> None:
            async with gate:
                began = time.perf_counter()
                status = await send(index)
                durations.append((time.perf_counter() - began) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(one(-i - 1) for i in range(concurrency)))  # warm the pool
        statuses.clear()
        durations.clear()
        cpu_start, started = cpu(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        wall, used = time.perf_counter() - started, cpu() - cpu_start
    return {
        "candidate": candidate,
        "concurrency": concurrency,
        "wall_s": wall,
        "statuses": {str(k): v for k, v in statuses.items()},
        "requests_per_s": requests / wall,
        "cpu_ms_per_request": used * 1000 / requests,
        "p50_ms": figures.percentile(durations, 50),
        "p99_ms": figures.percentile(durations, 99),
    }


def run_loop(candidate: str, coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    return uvloop.run(coroutine) if candidate.endswith("+uvloop") else asyncio.run(coroutine)


def run(p: Params, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    keys = [(name, c) for c in p.concurrencies for name in p.candidates]
    runs: dict[str, list[dict[str, Any]]] = {label(n, c): [] for n, c in keys}
    task = progress.add_task("client", total=p.repeat * len(keys))
    for repeat in range(p.repeat):
        shift = repeat % len(keys)
        for name, c in keys[shift:] + keys[:shift]:
            sandbox.prepare(latency_ms=p.latency_ms, fault_rate=0, seed=repeat)
            sandbox_cpu = sandbox.cpu_seconds()
            result = run_loop(name, burst(name, sandbox.url, p.requests, c))
            result["sandbox_cpu_ms_per_request"] = (
                (sandbox.cpu_seconds() - sandbox_cpu) * 1000 / (p.requests + c)
            )
            result["sandbox_records"] = len(sandbox.client.records("mastodon"))
            runs[label(name, c)].append(result)
            progress.advance(task)
    progress.remove_task(task)
    keys_summed = (
        "requests_per_s",
        "cpu_ms_per_request",
        "sandbox_cpu_ms_per_request",
        "p50_ms",
        "p99_ms",
    )
    summary = {key: common.medians(rs, keys_summed) for key, rs in runs.items()}
    return {"params": asdict(p), "runs": runs, "summary": summary}


def label(candidate: str, concurrency: int) -> str:
    return f"{candidate} C={concurrency}"


def markdown(result: dict[str, Any], command: str) -> str:
    p = result["params"]
    rows = []
    for key, s in result["summary"].items():
        candidate, c = key.rsplit(" C=", 1)
        rows.append(
            [
                candidate,
                c,
                report.fmt(s["requests_per_s"]),
                report.fmt(s["cpu_ms_per_request"], 2),
                report.fmt(s["sandbox_cpu_ms_per_request"], 2),
                report.fmt(s["p50_ms"]),
                report.fmt(s["p99_ms"]),
                report.fmt(1000 * int(c) / p["latency_ms"]),
            ]
        )
    headers = [
        "client",
        "C",
        "requests/s",
        "client CPU ms/request",
        "sandbox CPU ms/request",
        "p50 ms",
        "p99 ms",
        "bound C/L per s",
    ]
    return (
        "\n".join(
            [
                "### client",
                "",
                f"`{command}`",
                "",
                f"{p['requests']:,} Mastodon publish requests per run and client, sandbox "
                f"latency {report.fmt(p['latency_ms'])} ms, no database; medians of "
                f"{p['repeat']} runs, candidates interleaved in one run. "
                "`httpx+postpilot_aiohttp` is the publishing client `build_runtime` builds.",
                "",
                report.table(headers, rows),
            ]
        )
        + "\n"
    )
