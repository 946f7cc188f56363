"""Peers, same run: the same N due deliveries on PostgreSQL, the same sandbox and latency, the
same publishers, published by postpilot's optimized scheduler, by procrastinate (a job per
delivery and its own worker at the same concurrency), and by bare loops with no scheduler (the
publishing client, and aiohttp with uvloop: the fastest client of the `client` scenario). Each
counted exactly once at the sandbox; medians of the repeats; modes rotate between repeats.

The procrastinate task is what a user of a generic queue would write: read the delivery, its
post and account; decrypt the credentials; call the platform's publisher (the same code and
`PublishContext` postpilot uses); mark the delivery published, or raise so the job is retried.
Enqueueing is not timed (it happens when posts are written); the worker is.

`python -m bench.peers '<json spec>'` runs one procrastinate or aiohttp measurement in its own
process (its CPU time is the run's own) and prints the result as one JSON line."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import Progress

from bench import common, data, report, throughput
from postpilot.core import figures

MODES = ("optimized", "procrastinate", "bare", "bare_aiohttp")
SUMMARY_KEYS = ("wall_s", "published", "deliveries_per_s", "cpu_ms_per_delivery", "sandbox_cpu_s")


@dataclass(frozen=True)
class Params:
    deliveries: int = 2000
    accounts: int = 50
    platforms: tuple[str, ...] = ("mastodon", "x", "bluesky")
    batch: int = 200
    concurrency: int = 20
    latency_ms: float = 20.0
    repeat: int = 3
    modes: tuple[str, ...] = MODES
    timeout_s: float = 900.0


def params(args: Any) -> Params:
    p = Params(deliveries=60, accounts=6, repeat=1) if args.smoke else Params()
    changes: dict[str, Any] = {}
    for name, value in (
        ("deliveries", args.deliveries),
        ("accounts", args.accounts),
        ("batch", args.batch),
        ("concurrency", args.concurrency),
        ("latency_ms", args.latency_ms),
        ("repeat", args.repeat),
    ):
        if value is not None:
            changes[name] = value
    if args.platforms:
        changes["platforms"] = tuple(args.platforms.split(","))
    return replace(p, **changes)


def run(p: Params, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    shared = throughput.Params(
        deliveries=p.deliveries,
        accounts=p.accounts,
        platforms=p.platforms,
        batch=p.batch,
        concurrency=p.concurrency,
        latency_ms=p.latency_ms,
        databases=("postgresql",),
        timeout_s=p.timeout_s,
    )
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in p.modes}
    template = data.Template("postgresql", Path(tempfile.mkdtemp(prefix="pp-peers-")))
    data.run(template.build())
    try:
        for repeat in range(p.repeat):
            shift = repeat % len(p.modes)
            for mode in p.modes[shift:] + p.modes[:shift]:
                if mode in throughput.MODES:
                    result = throughput.one_run(
                        shared, "postgresql", mode, repeat, template, sandbox, progress
                    )
                else:
                    result = peer_run(shared, mode, repeat, template, sandbox, progress)
                runs[mode].append(result)
    finally:
        data.run(template.close())
    return {"params": asdict(p), "runs": runs, "summary": summarize(runs)}


def peer_run(
    p: throughput.Params,
    mode: str,
    repeat: int,
    template: data.Template,
    sandbox: common.Sandbox,
    progress: Progress,
) -> dict[str, Any]:
    sandbox.prepare(latency_ms=p.latency_ms, fault_rate=0, seed=repeat)
    load = data.due_load(p.deliveries, p.accounts, p.platforms)
    url = data.run(template.copy())
    task = progress.add_task(f"postgresql {mode} #{repeat + 1}", total=None)
    try:
        data.run(data.populate(url, load, sandbox.client))
        spec = {
            "mode": mode,
            "database_url": url,
            "sandbox_url": sandbox.url,
            "batch": p.batch,
            "concurrency": p.concurrency,
        }
        sandbox_cpu = sandbox.cpu_seconds()
        result = spawn(spec, p.timeout_s)
        result["sandbox_cpu_s"] = sandbox.cpu_seconds() - sandbox_cpu
        checked_as = "bare" if mode == "bare_aiohttp" else "optimized"
        result["check"] = throughput.check(url, checked_as, result, sandbox)
        result["expected"] = p.deliveries
    finally:
        progress.remove_task(task)
        data.run(template.drop(url))
    return result


def spawn(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    paths = os.pathsep.join([str(common.ROOT), str(common.ROOT / "src")])
    done = subprocess.run(
        [common.python(), "-m", "bench.peers", json.dumps(spec)],
        cwd=common.ROOT,
        env={**os.environ, "PYTHONPATH": paths},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.peers {spec['mode']} exited {done.returncode}:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for mode, mode_runs in runs.items():
        summary[mode] = common.medians(mode_runs, SUMMARY_KEYS)
        summary[mode]["runs"] = len(mode_runs)
        summary[mode]["exactly_once_all_runs"] = all(r["check"]["exactly_once"] for r in mode_runs)
    rate = {mode: summary.get(mode, {}).get("deliveries_per_s") for mode in MODES}
    summary["ratios"] = {
        "optimized_over_procrastinate": figures.ratio(rate["optimized"], rate["procrastinate"]),
        "optimized_over_bare": figures.ratio(rate["optimized"], rate["bare"]),
        "optimized_over_bare_aiohttp": figures.ratio(rate["optimized"], rate["bare_aiohttp"]),
        "procrastinate_over_bare_aiohttp": figures.ratio(
            rate["procrastinate"], rate["bare_aiohttp"]
        ),
    }
    return summary


LABELS = {
    "optimized": "postpilot optimized scheduler",
    "procrastinate": "procrastinate (a job per delivery, its worker)",
    "bare": "bare loop, the publishing client (httpx + aiohttp transport)",
    "bare_aiohttp": "bare loop, aiohttp + uvloop (the limit)",
}


def markdown(result: dict[str, Any], command: str) -> str:
    p, summary = result["params"], result["summary"]
    rows = [
        [
            LABELS[mode],
            report.fmt(summary[mode]["deliveries_per_s"]),
            report.fmt(summary[mode]["cpu_ms_per_delivery"], 2),
            report.fmt(summary[mode]["sandbox_cpu_s"], 2),
            str(summary[mode]["exactly_once_all_runs"]).lower(),
        ]
        for mode in p["modes"]
    ]
    ratios = summary["ratios"]
    return "\n".join(
        [
            "### peers",
            "",
            f"`{command}`",
            "",
            f"N {p['deliveries']:,} due deliveries on PostgreSQL over {p['accounts']} accounts "
            f"({', '.join(p['platforms'])}), C {p['concurrency']}, sandbox latency "
            f"{report.fmt(p['latency_ms'])} ms (bound C / L = "
            f"{report.fmt(1000 * p['concurrency'] / p['latency_ms'])}/s); medians of "
            f"{p['repeat']} runs, modes rotated, each in its own process.",
            "",
            report.table(
                [
                    "mode",
                    "deliveries/s",
                    "CPU ms/delivery (its process)",
                    "sandbox CPU s",
                    "exactly once at the sandbox",
                ],
                rows,
            ),
            "",
            f"postpilot / procrastinate: {report.fmt(ratios['optimized_over_procrastinate'], 2)}x; "
            f"postpilot / bare aiohttp: {report.fmt(ratios['optimized_over_bare_aiohttp'], 2)}x; "
            "procrastinate / bare aiohttp: "
            f"{report.fmt(ratios['procrastinate_over_bare_aiohttp'], 2)}x.",
            "",
        ]
    )


# --- the child process ---------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def procrastinate_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Enqueue a job per due delivery, then time procrastinate's worker draining them."""
    from bench import peers_task  # procrastinate is a bench-only dependency

    return await peers_task.drain(spec)


async def bare_aiohttp_run(spec: dict[str, Any]) -> dict[str, Any]:
    """The same publish requests as bench.child's bare loop, sent with aiohttp alone."""
    import aiohttp

    from bench import child
    from postpilot.runtime import build_runtime

    settings = common.bench_settings(
        database_url=spec["database_url"], sandbox_url=spec["sandbox_url"]
    )
    runtime = build_runtime(settings)
    try:
        requests = await child._publish_requests(runtime, spec)
    finally:
        await runtime.close()
    gate = asyncio.Semaphore(int(spec["concurrency"]))
    ok = 0
    connector = aiohttp.TCPConnector(limit=max(100, int(spec["concurrency"]) * 4))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(request: dict[str, Any]) -> None:
            nonlocal ok
            async with (
                gate,
                session.post(
                    request["url"], json=request["json"], headers=request["headers"]
                ) as response,
            ):
                await response.read()
                ok += response.status in (200, 201)

        cpu_start, started = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(send(r) for r in requests))
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_start
    return {
        "mode": "bare_aiohttp",
        "wall_s": wall,
        "requests": len(requests),
        "published": ok,
        "deliveries_per_s": figures.throughput(ok, wall),
        "cpu_ms_per_delivery": figures.per_delivery(cpu * 1000, ok),
        "finished_at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    import uvloop

    spec = json.loads(sys.argv[1])
    runner = procrastinate_run if spec["mode"] == "procrastinate" else bare_aiohttp_run
    result = (
        uvloop.run(runner(spec)) if spec["mode"] == "bare_aiohttp" else asyncio.run(runner(spec))
    )
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
