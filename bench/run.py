"""The benchmark command: `python bench/run.py --scenario NAME [--smoke] [--repeat R]`.

Scenarios (each runs alone; `--scenario all` runs them in turn):
  plan      the plan's settings: batch 20, concurrency 5, media on every 3rd post, 1 % faults
  c10       concurrency 10 (the 10x bar): N 1,000, L 20 ms, batch 100
  c20       N 2,000, C 20, L 20 ms on PostgreSQL (latency bound C / L = 1,000/s), batch 1,000
  c50       N 10,000, C 50, L 50 ms, batch 2,500
            (the streaming pass claims 4·C at a time as slots free up, so its batch is a pass's
            budget, not a group that waits for its slowest send: 50·C per pass, where the fixed
            cost of a pass's end is spread thin; batches 200 and 500 were the earlier runs')
  claim     the claim statement with 10,000 and 1,000,000 scheduled rows in PostgreSQL
  contention  1, 2 and 8 processes draining 20,000 due rows with the claim (the database's ceiling)
  workers   1, 2 and 4 `postpilot worker` processes on one PostgreSQL
  lateness  1,000 posts due at one instant and 1,000 over one minute, through the worker
  memory    RSS of a worker process with 100,000 scheduled posts
  client    HTTP clients side by side (httpx/httpcore, httpx+aiohttp transports, aiohttp, uvloop):
            requests/s, client and sandbox CPU per request at C 10 and 50
  peers     the optimized scheduler, procrastinate (a job per delivery) and bare loops on the same
            N 2,000 deliveries, C 20, L 20 ms, PostgreSQL: deliveries/s, CPU, ratios
  web       server time of the calendar month page, the dashboard, accounts and attention pages
            with 10,000 posts in the month and a week of stored passes (median, target 200 ms)

Results: JSON under bench/results/ and a Markdown section for BENCHMARKS.md on stdout."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `postpilot` importable
    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import claim, client, common, peers, report, throughput, web, workers
from postpilot.publishers.registry import supported_platforms

console = Console(stderr=True)

BARE_PLATFORMS = ("mastodon", "x", "bluesky")  # platforms whose publish request bench.child knows


def default_platforms() -> tuple[str, ...]:
    return tuple(p for p in supported_platforms() if p in BARE_PLATFORMS)


def throughput_params(name: str, smoke: bool) -> throughput.Params:
    platforms = default_platforms()
    both = ("sqlite", "postgresql")
    presets = {
        "plan": throughput.Params(
            deliveries=500,
            accounts=20,
            platforms=platforms,
            batch=20,
            concurrency=5,
            latency_ms=20,
            fault_rate=0.01,
            media_every=3,
            databases=both,
        ),
        "c10": throughput.Params(
            deliveries=1000,
            accounts=50,
            platforms=platforms,
            batch=100,
            concurrency=10,
            latency_ms=20,
            databases=both,
            reference_deliveries=500,
        ),
        "c20": throughput.Params(
            deliveries=2000,
            accounts=50,
            platforms=platforms,
            batch=1000,
            concurrency=20,
            latency_ms=20,
            databases=("postgresql",),
            reference_deliveries=500,
        ),
        "c50": throughput.Params(
            deliveries=10_000,
            accounts=100,
            platforms=platforms,
            batch=2500,
            concurrency=50,
            latency_ms=50,
            databases=both,
            reference_deliveries=500,
        ),
    }
    params = presets[name]
    if smoke:
        params = replace(
            params,
            deliveries=min(params.deliveries, 60),
            accounts=min(params.accounts, 6),
            repeat=1,
            reference_deliveries=None,
        )
    return params


THROUGHPUT = ("plan", "c10", "c20", "c50")
SCENARIOS = (
    *THROUGHPUT,
    "claim",
    "contention",
    "workers",
    "lateness",
    "memory",
    "client",
    "peers",
    "web",
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="plan")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: finishes in seconds")
    parser.add_argument("--repeat", type=int, help="runs per mode (medians are reported)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append", dest="dbs")
    parser.add_argument("-n", "--deliveries", type=int, help="N due deliveries")
    parser.add_argument("--accounts", type=int, help="M accounts")
    parser.add_argument("--platforms", help="K platforms, comma-separated")
    parser.add_argument("--batch", type=int, help="deliveries per pass")
    parser.add_argument("--concurrency", type=int, help="publishes in flight")
    parser.add_argument("--latency-ms", type=float, help="sandbox latency per request")
    parser.add_argument("--fault-rate", type=float, help="sandbox random 500s on publish")
    parser.add_argument("--media-every", type=int, help="every k-th post carries an image")
    parser.add_argument("--reference-n", type=int, help="deliveries the reference publishes")
    parser.add_argument("--workers", help="worker counts for `workers`, comma-separated")
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="workers/lateness: workers reach PostgreSQL through a PgBouncer in transaction mode",
    )
    parser.add_argument("--rows", help="table sizes for `claim`, comma-separated")
    parser.add_argument("--seconds", type=float, help="busy phase length for `memory`")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each measured child (top 25 in the JSON)"
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="sample each measured child's CPU with py-spy (bench-only dependency): the "
        "functions with most samples, own and inclusive, in the JSON; far less distortion than "
        "--profile",
    )
    parser.add_argument("--modes", help="throughput modes to run, comma-separated (default all)")
    parser.add_argument(
        "--sniffio-importable",
        action="store_true",
        help="measure with `import sniffio` succeeding in each child (see `--scenario client`)",
    )
    parser.add_argument("--clients", help="candidates for `client`, comma-separated")
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="throughput scenarios: also run the optimized pass with REDIS_URL=URL "
        "(account slots shared through Redis), as mode optimized-redis",
    )
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    return parser.parse_args(argv)


def overrides(params: throughput.Params, args: argparse.Namespace) -> throughput.Params:
    changes: dict[str, Any] = {}
    for field, value in (
        ("deliveries", args.deliveries),
        ("accounts", args.accounts),
        ("batch", args.batch),
        ("concurrency", args.concurrency),
        ("latency_ms", args.latency_ms),
        ("fault_rate", args.fault_rate),
        ("media_every", args.media_every),
        ("repeat", args.repeat),
        ("reference_deliveries", args.reference_n),
    ):
        if value is not None:
            changes[field] = value
    if args.platforms:
        changes["platforms"] = tuple(args.platforms.split(","))
    if args.profile:
        changes["profile"] = True
    if args.sample:
        changes["sample"] = True
    if args.modes:
        changes["modes"] = tuple(args.modes.split(","))
    if args.sniffio_importable:
        changes["sniffio_importable"] = True
    if args.dbs:
        changes["databases"] = tuple(args.dbs)
    if args.redis:
        changes["redis_url"] = args.redis
        changes["modes"] = (*params.modes[:2], throughput.REDIS_MODE, *params.modes[2:])
    return replace(params, **changes)


def run_scenario(
    name: str, args: argparse.Namespace, sandbox: common.Sandbox, progress: Progress, command: str
) -> tuple[dict[str, Any], str]:
    if name in THROUGHPUT:
        params = overrides(throughput_params(name, args.smoke), args)
        result = throughput.run(params, sandbox, progress)
        return result, report.throughput(name, result, command)
    if name == "client":
        result = client.run(client.params(args), sandbox, progress)
        return result, client.markdown(result, command)
    if name == "peers":
        result = peers.run(peers.params(args), sandbox, progress)
        return result, peers.markdown(result, command)
    if name == "web":
        result = web.run(web.params(args), sandbox, progress)
        return result, web.markdown(result, command)
    if name == "claim":
        result = claim.run(claim.params(args), sandbox, progress)
        return result, claim.markdown(result, command)
    if name == "contention":
        result = claim.run_contention(claim.contention_params(args), sandbox, progress)
        return result, claim.contention_markdown(result, command)
    if name == "workers":
        result = workers.run_workers(workers.workers_params(args), sandbox, progress)
        return result, workers.workers_markdown(result, command)
    if name == "lateness":
        result = workers.run_lateness(workers.lateness_params(args), sandbox, progress)
        return result, workers.lateness_markdown(result, command)
    result = workers.run_memory(workers.memory_params(args), sandbox, progress)
    return result, workers.memory_markdown(result, command)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    command = "python bench/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output: dict[str, Any] = {
        "command": command,
        "started_at": stamp,
        "machine": common.machine(),
        "scenarios": {},
    }
    sections = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with common.running_sandbox() as sandbox, Progress(*columns, console=console) as progress:
        for name in names:
            load_before = common.load_average()
            result, markdown = run_scenario(name, args, sandbox, progress, command)
            result["load_average"] = {"before": load_before, "after": common.load_average()}
            markdown += (
                f"\nLoad average (1/5/15 min) before {load_before}, after "
                f"{result['load_average']['after']} on {output['machine']['cores']} cores.\n"
            )
            result["markdown"] = markdown
            output["scenarios"][name] = result
            sections.append(markdown)
    suffix = "-smoke" if args.smoke else ""
    path = args.output or common.RESULTS / f"{args.scenario}{suffix}-{stamp}.json"
    common.write_json(path, output)
    m = output["machine"]
    header = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; PostgreSQL "
        f"{m['postgresql']}; SQLite {m['sqlite']}; Python {m['python']}; commit {m['git_commit']}."
    )
    print("\n".join([header, "", *sections]))
    console.print(f"results: {path}")
    output["path"] = str(path)
    return output


if __name__ == "__main__":
    main()
