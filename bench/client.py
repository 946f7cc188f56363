"""The HTTP client's own cost: the scheduler's httpx client (built as `build_runtime` builds it)
sending N publish requests to the sandbox at several concurrencies, no database, no scheduler.
CPU time per request is the client process's, so it holds even on a busy machine; with
`--profile` the share of httpcore's connection-pool bookkeeping is measured too."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rich.progress import Progress

from bench import common, report
from postpilot.core import figures
from postpilot.runtime import build_runtime

POOL_FUNCTION = "_assign_requests_to_connections"


class _Sniffio:
    """Stands in for the `sniffio` package, which is not installed: httpcore's
    `current_async_library()` tries `import sniffio` on every lock and semaphore it sets up, and a
    failed import is not cached, so each try searches sys.path again. The `+sniffio` runs measure
    the client with that import succeeding (what installing sniffio would do)."""

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
    requests: int = 1000
    concurrencies: tuple[int, ...] = (1, 5, 10, 20, 50)
    latency_ms: float = 20.0
    repeat: int = 3
    profile: bool = False


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
    if args.profile:
        changes["profile"] = True
    return Params(**{**asdict(p), **changes})


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def burst(sandbox_url: str, requests: int, concurrency: int) -> dict[str, Any]:
    settings = common.bench_settings(
        database_url="sqlite+aiosqlite:///./never-opened.db",  # the client needs no database
        sandbox_url=sandbox_url,
        concurrency=concurrency,
    )
    runtime = build_runtime(settings)
    gate = asyncio.Semaphore(concurrency)
    durations: list[float] = []

    async def one(index: int) -> None:
        async with gate:
            began = time.perf_counter()
            response = await runtime.http.post(
                f"{sandbox_url}/mastodon/api/v1/statuses",
                json={"status": f"client probe {index}", "media_ids": [], "visibility": "public"},
                headers={"Authorization": "Bearer bench-client", "Idempotency-Key": str(index)},
            )
            response.raise_for_status()
            durations.append((time.perf_counter() - began) * 1000)

    try:
        cpu_start, started = cpu(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        wall, used = time.perf_counter() - started, cpu() - cpu_start
    finally:
        await runtime.close()
    return {
        "concurrency": concurrency,
        "wall_s": wall,
        "requests_per_s": requests / wall,
        "cpu_ms_per_request": used * 1000 / requests,
        "p50_ms": figures.percentile(durations, 50),
        "p99_ms": figures.percentile(durations, 99),
    }


def run(p: Params, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    keys = [(c, stub) for c in p.concurrencies for stub in (False, True)]
    runs: dict[str, list[dict[str, Any]]] = {label(c, stub): [] for c, stub in keys}
    task = progress.add_task("client", total=p.repeat * len(keys))
    for repeat in range(p.repeat):
        shift = repeat % len(keys)
        for c, stub in keys[shift:] + keys[:shift]:
            sandbox.prepare(latency_ms=p.latency_ms, fault_rate=0, seed=repeat)
            with sniffio_importable(stub):
                runs[label(c, stub)].append(asyncio.run(burst(sandbox.url, p.requests, c)))
            progress.advance(task)
    progress.remove_task(task)
    summary = {
        c: common.medians(rs, ("requests_per_s", "cpu_ms_per_request", "p50_ms", "p99_ms"))
        for c, rs in runs.items()
    }
    result: dict[str, Any] = {"params": asdict(p), "runs": runs, "summary": summary}
    if p.profile:
        result["profile"] = {str(c): profile(sandbox, p, c) for c in p.concurrencies}
    return result


def label(concurrency: int, stub: bool) -> str:
    return f"{concurrency}+sniffio" if stub else str(concurrency)


def profile(sandbox: common.Sandbox, p: Params, concurrency: int) -> dict[str, Any]:
    sandbox.prepare(latency_ms=p.latency_ms, fault_rate=0, seed=0)
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, burst(sandbox.url, p.requests, concurrency))
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    pool = sum(
        row[3]
        for (_, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
        if name == POOL_FUNCTION
    )
    return {"pool_cumulative_s": pool, "total_s": total, "pool_share": pool / total}


def markdown(result: dict[str, Any], command: str) -> str:
    p = result["params"]
    profiled = result.get("profile", {})
    rows = [
        [
            c,
            report.fmt(s["requests_per_s"]),
            report.fmt(s["cpu_ms_per_request"], 2),
            report.fmt(s["p50_ms"]),
            report.fmt(s["p99_ms"]),
            report.fmt(1000 * int(c.split("+")[0]) / p["latency_ms"]),
            report.pct(profiled[c]["pool_share"]) if c in profiled else "-",
        ]
        for c, s in result["summary"].items()
    ]
    return (
        "\n".join(
            [
                "### client",
                "",
                f"`{command}`",
                "",
                f"{p['requests']:,} Mastodon publish requests per run through the scheduler's "
                f"httpx client (as `build_runtime` builds it), sandbox latency "
                f"{report.fmt(p['latency_ms'])} ms, no database; medians of {p['repeat']} runs. "
                "`C+sniffio`: the same with `import sniffio` succeeding (sniffio is not "
                "installed, and httpcore retries that failed import on every lock it sets up).",
                "",
                report.table(
                    [
                        "concurrency",
                        "requests/s",
                        "client CPU ms/request",
                        "p50 ms",
                        "p99 ms",
                        "latency bound C/L per s",
                        "CPU in httpcore pool assignment (profiled)",
                    ],
                    rows,
                ),
            ]
        )
        + "\n"
    )
