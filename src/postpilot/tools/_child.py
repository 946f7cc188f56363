"""Run one scheduler pass in this process and print its measurements as JSON on stdout.

`postpilot compare` starts one of these per scheduler, so each run has a process of its own: a
cold in-process cache, its own connection pool and HTTP client, and resource figures that belong
to that run alone. Input (stdin, JSON): `settings`, `scheduler`, `limit`, `concurrency` and
`clock` (ISO time; the clock stays stopped there for the whole pass, so the workload is exactly
what was due at that moment and no retry comes due during the pass).

CPU time is `getrusage(RUSAGE_SELF)` user + system across the pass (all threads, including the
SQLite driver's). Peak memory is the process's `ru_maxrss` high-water mark after the pass; the
resident size before the pass (interpreter, imports, open runtime) is reported beside it.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import datetime
from typing import Any

import psutil

from postpilot import logs
from postpilot.runtime import open_runtime
from postpilot.scheduler.passes import run_pass
from postpilot.settings import load_settings


async def measure(job: dict[str, Any]) -> dict[str, Any]:
    settings = load_settings(_env_file=None, **job["settings"])
    logs.configure(settings.LOG_LEVEL, settings.LOG_FORMAT)
    frozen = datetime.fromisoformat(job["clock"])
    # The copy is of a database whose schema the parent checked.
    async with open_runtime(settings, clock=lambda: frozen, check_schema=False) as runtime:
        process = psutil.Process()
        baseline_rss = process.memory_info().rss
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter()
        report = await run_pass(
            runtime,
            scheduler=job["scheduler"],
            limit=job["limit"],
            concurrency=job["concurrency"],
        )
        wall_ms = (time.perf_counter() - wall) * 1000
        after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **report.summary(),
        "wall_ms": wall_ms,
        "processing_ms": report.processing_ms,
        "cache_hits": report.cache_hits,
        "cache_misses": report.cache_misses,
        "peak_db_connections": report.peak_db_connections,
        "cpu_user_ms": (after.ru_utime - before.ru_utime) * 1000,
        "cpu_system_ms": (after.ru_stime - before.ru_stime) * 1000,
        # Linux reports kilobytes, macOS bytes.
        "peak_rss_bytes": after.ru_maxrss * (1 if sys.platform == "darwin" else 1024),
        "baseline_rss_bytes": baseline_rss,
    }


def main() -> None:
    job = json.load(sys.stdin)
    result = asyncio.run(measure(job))
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
