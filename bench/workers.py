"""Scenarios through a real `postpilot worker --processes N` on one PostgreSQL: throughput with
1, 2 and 4 worker processes, lateness (`published_at - scheduled_at`) of posts due at one instant
or spread over a minute, and a worker's memory with 100,000 scheduled posts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from rich.progress import Progress
from sqlalchemy.engine import make_url

from bench import common, data, pooler, report
from postpilot.core import figures
from postpilot.settings import Settings
from postpilot.store.database import Database

PG_USER = make_url(common.PG_ADMIN_DSN).username or "postgres"
POOL_SIZE = 20  # PgBouncer's server connections per database, for every worker process at once
WORKER_COMMAND = (common.python(), "-m", "postpilot.cli.main", "worker", "--scheduler", "optimized")
# Beyond a drain's grace, how long stopping the supervisor may take before it is killed.
STOP_SECONDS = 60
LEAD = timedelta(seconds=4)  # workers are up and the rows inserted before the first is due


@dataclass(frozen=True)
class Fleet:
    batch: int
    concurrency: int
    latency_ms: float
    accounts: int = 50
    platforms: tuple[str, ...] = ("bluesky", "mastodon", "x")
    # Workers reach PostgreSQL through a PgBouncer in transaction mode (LISTEN direct).
    pgbouncer: bool = False


class Workers:
    """One `postpilot worker --scheduler optimized --processes N` (a supervisor and its N worker
    processes), its log in a scratch folder."""

    def __init__(
        self, settings: Settings, count: int, logdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.count = count
        self.logdir = logdir
        self.env = env or {}
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.peak_rss_mb: list[float] = [0.0] * count

    def start(self) -> None:
        env = common.worker_env(self.settings) | self.env
        log = (self.logdir / "worker.log").open("wb")
        self.supervisor = subprocess.Popen(
            [*WORKER_COMMAND, "--processes", str(self.count)],
            cwd=self.logdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.supervisor is None or self.supervisor.poll() is not None:
                raise RuntimeError(f"the workers exited early: see {self.logdir}")
            running = await scalar(
                url, "SELECT count(*) FROM worker_heartbeats WHERE state = 'running'"
            )
            if running >= self.count:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"workers not up within {timeout} s: see {self.logdir}")

    def sample(self) -> list[float]:
        """Each worker process's RSS now (MB), and the peaks so far."""
        now = []
        with contextlib.suppress(psutil.Error):
            assert self.supervisor is not None
            top = psutil.Process(self.supervisor.pid)
            # One process runs in place; more run under the supervisor.
            children = top.children() if self.count > 1 else [top]
            for index, child in enumerate(children[: self.count]):
                with contextlib.suppress(psutil.Error):
                    rss = child.memory_info().rss / 2**20
                    self.peak_rss_mb[index] = max(self.peak_rss_mb[index], rss)
                    now.append(rss)
        return now

    def stop(self) -> None:
        if self.supervisor is None or self.supervisor.poll() is not None:
            return
        self.supervisor.send_signal(signal.SIGTERM)  # it forwards it: each process drains
        try:
            self.supervisor.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.supervisor.kill()  # its processes notice within a second and stop
            self.supervisor.wait()


async def scalar(url: str, sql: str) -> Any:
    """One statement, committed."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            return (await conn.exec_driver_sql(sql)).scalar_one()
    finally:
        await db.dispose()


async def drain(
    url: str,
    *,
    timeout: float,
    on_poll: Callable[[int], None],
    until: float | None = None,
) -> bool:
    """Wait until no delivery is pending (or `until`, a monotonic deadline); True if drained."""
    db = Database(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < min(deadline, until or deadline):
            async with db.engine.connect() as conn:
                rows = dict(
                    (
                        await conn.exec_driver_sql(
                            "SELECT status, count(*) FROM deliveries GROUP BY status"
                        )
                    ).all()
                )
            on_poll(int(rows.get("published", 0)))
            if not rows.get("scheduled") and not rows.get("claimed") and sum(rows.values()):
                return True
            await asyncio.sleep(0.25)
        return False
    finally:
        await db.dispose()


def check(url: str, sandbox: common.Sandbox) -> dict[str, Any]:
    texts = Counter(record["text"] for record in sandbox.client.records())
    published = Counter(data.run(data.published_texts(url)))
    duplicates = sum(count - 1 for count in texts.values() if count > 1)
    return {
        "sandbox_records": sum(texts.values()),
        "db_published": sum(published.values()),
        "duplicates": duplicates,
        "statuses": data.run(data.status_counts(url)),
        "exactly_once": duplicates == 0 and texts == published,
    }


def lateness_stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": figures.percentile(values, 50),
        "p95_ms": figures.percentile(values, 95),
        "p99_ms": figures.percentile(values, 99),
        "max_ms": max(values) if values else None,
    }


def fleet_run(
    fleet: Fleet,
    *,
    workers: int,
    deliveries: int,
    spread: timedelta,
    repeat: int,
    template: data.Template,
    sandbox: common.Sandbox,
    progress: Progress,
    label: str,
) -> dict[str, Any]:
    """Start the workers, schedule the deliveries from now + LEAD over `spread`, wait until every
    one is final; lateness and drain time come from the rows the workers wrote."""
    sandbox.prepare(latency_ms=fleet.latency_ms, fault_rate=0, seed=repeat)
    url = data.run(template.copy())
    logdir = Path(tempfile.mkdtemp(prefix="pp-bench-workers-"))
    with contextlib.ExitStack() as stack:
        worker_url, env = url, {}
        if fleet.pgbouncer:
            bouncer = stack.enter_context(pooler.running(user=PG_USER, pool_size=POOL_SIZE))
            worker_url, env = bouncer.url(url), {"DATABASE_LISTEN_URL": url}
        settings = common.bench_settings(
            database_url=worker_url,
            sandbox_url=sandbox.url,
            batch=fleet.batch,
            concurrency=fleet.concurrency,
        )
        return _fleet_run(
            Workers(settings, workers, logdir, env),
            fleet,
            url=url,
            deliveries=deliveries,
            spread=spread,
            template=template,
            sandbox=sandbox,
            progress=progress,
            label=label,
        )


def _fleet_run(
    group: Workers,
    fleet: Fleet,
    *,
    url: str,
    deliveries: int,
    spread: timedelta,
    template: data.Template,
    sandbox: common.Sandbox,
    progress: Progress,
    label: str,
) -> dict[str, Any]:
    """`fleet_run` once its workers are configured."""
    workers, logdir = group.count, group.logdir
    try:
        group.start()
        data.run(group.ready(url))
        start = datetime.now(UTC) + LEAD
        load = data.Load(
            deliveries=deliveries,
            accounts=fleet.accounts,
            platforms=fleet.platforms,
            start=start,
            step=spread / max(1, deliveries),
        )
        data.run(data.populate(url, load, sandbox.client))
        inserted_early = datetime.now(UTC) < start
        task = progress.add_task(label, total=deliveries)

        def poll(published: int) -> None:
            group.sample()
            progress.update(task, completed=published)

        timeout = LEAD.total_seconds() + spread.total_seconds() + 600
        drained = data.run(drain(url, timeout=timeout, on_poll=poll))
        progress.remove_task(task)
        late = data.run(data.lateness_ms(url))
        result = {
            "workers": workers,
            "deliveries": deliveries,
            "spread_s": spread.total_seconds(),
            "drained": drained,
            "inserted_before_due": inserted_early,
            "lateness": lateness_stats(late),
            "peak_rss_mb": group.peak_rss_mb,
            "check": check(url, sandbox),
        }
        if late and spread.total_seconds() == 0:
            result["drain_s"] = max(late) / 1000
            result["deliveries_per_s"] = figures.throughput(len(late), max(late) / 1000)
        shutil.rmtree(logdir, ignore_errors=True)  # kept when something failed
        return result
    finally:
        group.stop()
        data.run(template.drop(url))


def through(fleet: dict[str, Any]) -> str:
    """How the workers reached PostgreSQL, when not directly."""
    if not fleet.get("pgbouncer"):
        return ""
    return (
        f", the workers through PgBouncer (transaction mode, {POOL_SIZE} server connections; "
        "LISTEN on a direct connection)"
    )


# --- 1, 2, 4 workers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkersParams:
    fleet: Fleet
    counts: tuple[int, ...] = (1, 2, 4)
    deliveries: int = 4000
    repeat: int = 3


def workers_params(args: argparse.Namespace) -> WorkersParams:
    p = WorkersParams(fleet=Fleet(batch=100, concurrency=20, latency_ms=20))
    if args.smoke:
        p = replace(p, deliveries=60, repeat=1, fleet=replace(p.fleet, accounts=6))
    return _apply(p, args)


def _apply(p: Any, args: argparse.Namespace) -> Any:
    fleet = p.fleet
    if getattr(args, "pgbouncer", False):
        fleet = replace(fleet, pgbouncer=True)
    for name, value in (
        ("batch", args.batch),
        ("concurrency", args.concurrency),
        ("latency_ms", args.latency_ms),
        ("accounts", args.accounts),
    ):
        if value is not None:
            fleet = replace(fleet, **{name: value})
    if args.platforms:
        fleet = replace(fleet, platforms=tuple(args.platforms.split(",")))
    p = replace(p, fleet=fleet)
    if args.repeat and hasattr(p, "repeat"):
        p = replace(p, repeat=args.repeat)
    if args.deliveries and hasattr(p, "deliveries"):
        p = replace(p, deliveries=args.deliveries)
    if getattr(args, "workers", None) and hasattr(p, "counts"):
        p = replace(p, counts=tuple(int(c) for c in args.workers.split(",")))
    return p


def run_workers(p: WorkersParams, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    template = data.Template("postgresql", Path(tempfile.mkdtemp(prefix="pp-bench-")))
    data.run(template.build())
    runs: dict[str, list[dict[str, Any]]] = {str(c): [] for c in p.counts}
    try:
        for repeat in range(p.repeat):
            shift = repeat % len(p.counts)
            for count in p.counts[shift:] + p.counts[:shift]:
                runs[str(count)].append(
                    fleet_run(
                        p.fleet,
                        workers=count,
                        deliveries=p.deliveries,
                        spread=timedelta(0),
                        repeat=repeat,
                        template=template,
                        sandbox=sandbox,
                        progress=progress,
                        label=f"{count} worker(s) #{repeat + 1}",
                    )
                )
    finally:
        data.run(template.close())
    summary = {
        count: {
            "deliveries_per_s": common.median([r.get("deliveries_per_s") for r in rs]),
            "drain_s": common.median([r.get("drain_s") for r in rs]),
            "lateness_p99_ms": common.median([r["lateness"]["p99_ms"] for r in rs]),
            "peak_rss_mb_per_worker": common.median([max(r["peak_rss_mb"]) for r in rs]),
            "exactly_once_all_runs": all(r["check"]["exactly_once"] for r in rs),
            "drained_all_runs": all(r["drained"] for r in rs),
        }
        for count, rs in runs.items()
    }
    return {"params": asdict(p), "runs": runs, "summary": summary}


def workers_markdown(result: dict[str, Any], command: str) -> str:
    p, f = result["params"], result["params"]["fleet"]
    one = result["summary"].get("1", {}).get("deliveries_per_s")
    rows = [
        [
            count,
            report.fmt(s["deliveries_per_s"]),
            report.times(figures.ratio(s["deliveries_per_s"], one)),
            report.fmt(s["drain_s"], 2),
            report.fmt(s["lateness_p99_ms"]),
            report.fmt(s["peak_rss_mb_per_worker"]),
            report.fmt(s["exactly_once_all_runs"] and s["drained_all_runs"]),
        ]
        for count, s in result["summary"].items()
    ]
    return (
        "\n".join(
            [
                "### workers",
                "",
                f"`{command}`",
                "",
                f"{p['deliveries']:,} deliveries due at one instant over {f['accounts']} accounts"
                f" ({', '.join(f['platforms'])}){through(f)}; `postpilot worker --scheduler "
                "optimized "
                f"--processes N` with batch {f['batch']}, concurrency {f['concurrency']} per "
                "process; "
                f"sandbox latency {report.fmt(f['latency_ms'])} ms; throughput = N / (last "
                f"published_at - scheduled_at); medians of {p['repeat']} runs, worker counts "
                "interleaved.",
                "",
                report.table(
                    [
                        "workers",
                        "deliveries/s",
                        "vs 1 worker",
                        "drain s",
                        "lateness p99 ms",
                        "peak RSS MB per worker",
                        "exactly once, all final",
                    ],
                    rows,
                ),
            ]
        )
        + "\n"
    )


# --- lateness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatenessParams:
    fleet: Fleet
    deliveries: int = 1000
    spread_s: float = 60.0
    workers: int = 1
    repeat: int = 3


def lateness_params(args: argparse.Namespace) -> LatenessParams:
    p = LatenessParams(fleet=Fleet(batch=20, concurrency=5, latency_ms=20))
    if args.smoke:
        p = replace(p, deliveries=30, spread_s=3.0, repeat=1, fleet=replace(p.fleet, accounts=6))
    p = _apply(p, args)
    if args.workers:
        p = replace(p, workers=int(args.workers.split(",")[0]))
    return p


def run_lateness(p: LatenessParams, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    template = data.Template("postgresql", Path(tempfile.mkdtemp(prefix="pp-bench-")))
    data.run(template.build())
    shapes = {"instant": timedelta(0), "spread": timedelta(seconds=p.spread_s)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in shapes}
    try:
        for repeat in range(p.repeat):
            order = list(shapes) if repeat % 2 == 0 else list(reversed(shapes))
            for name in order:
                runs[name].append(
                    fleet_run(
                        p.fleet,
                        workers=p.workers,
                        deliveries=p.deliveries,
                        spread=shapes[name],
                        repeat=repeat,
                        template=template,
                        sandbox=sandbox,
                        progress=progress,
                        label=f"lateness {name} #{repeat + 1}",
                    )
                )
    finally:
        data.run(template.close())
    summary = {
        name: {
            key: common.median([r["lateness"][key] for r in rs])
            for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
        }
        | {
            "exactly_once_all_runs": all(r["check"]["exactly_once"] for r in rs),
            "drained_all_runs": all(r["drained"] for r in rs),
        }
        for name, rs in runs.items()
    }
    return {"params": asdict(p), "runs": runs, "summary": summary}


def lateness_markdown(result: dict[str, Any], command: str) -> str:
    p, f = result["params"], result["params"]["fleet"]
    rows = [
        [
            name,
            report.fmt(s["p50_ms"]),
            report.fmt(s["p95_ms"]),
            report.fmt(s["p99_ms"]),
            report.fmt(s["max_ms"]),
            report.status(s["p99_ms"] is not None and s["p99_ms"] < 1000),
            report.fmt(s["exactly_once_all_runs"] and s["drained_all_runs"]),
        ]
        for name, s in result["summary"].items()
    ]
    return (
        "\n".join(
            [
                "### lateness",
                "",
                f"`{command}`",
                "",
                f"{p['deliveries']:,} posts due at one instant, and {p['deliveries']:,} spread "
                f"evenly over {report.fmt(p['spread_s'])} s, through `postpilot worker "
                f"--processes {p['workers']}`{through(f)} (batch {f['batch']}, concurrency "
                f"{f['concurrency']}, sandbox latency {report.fmt(f['latency_ms'])} ms); "
                f"lateness = published_at - scheduled_at; medians of {p['repeat']} runs.",
                "",
                report.table(
                    [
                        "load",
                        "p50 ms",
                        "p95 ms",
                        "p99 ms",
                        "max ms",
                        "p99 < 1 s",
                        "exactly once, all final",
                    ],
                    rows,
                ),
            ]
        )
        + "\n"
    )


# --- memory ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryParams:
    fleet: Fleet
    deliveries: int = 100_000
    idle_s: float = 15.0
    busy_s: float = 90.0


def memory_params(args: argparse.Namespace) -> MemoryParams:
    p = MemoryParams(fleet=Fleet(batch=500, concurrency=50, latency_ms=20, accounts=100))
    if args.smoke:
        p = replace(p, deliveries=500, idle_s=2, busy_s=5, fleet=replace(p.fleet, accounts=6))
    p = _apply(p, args)
    if args.seconds:
        p = replace(p, busy_s=args.seconds)
    return p


def run_memory(p: MemoryParams, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    template = data.Template("postgresql", Path(tempfile.mkdtemp(prefix="pp-bench-")))
    data.run(template.build())
    sandbox.prepare(latency_ms=p.fleet.latency_ms, fault_rate=0, seed=0)
    url = data.run(template.copy())
    logdir = Path(tempfile.mkdtemp(prefix="pp-bench-workers-"))
    settings = common.bench_settings(
        database_url=url,
        sandbox_url=sandbox.url,
        batch=p.fleet.batch,
        concurrency=p.fleet.concurrency,
    )
    group = Workers(settings, 1, logdir)
    phases: dict[str, Any] = {}

    def watch(name: str, seconds: float) -> None:
        samples: list[float] = []
        task = progress.add_task(f"memory: {name}", total=None)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            samples.extend(group.sample())
            time.sleep(0.25)
        progress.remove_task(task)
        phases[name] = {"seconds": seconds, "rss_max_mb": max(samples), "rss_last_mb": samples[-1]}

    try:
        group.start()
        data.run(group.ready(url))
        watch("empty database", p.idle_s)
        load = data.Load(
            deliveries=p.deliveries,
            accounts=p.fleet.accounts,
            platforms=p.fleet.platforms,
            start=datetime.now(UTC) + timedelta(days=2),
            step=timedelta(seconds=1),
        )
        data.run(data.populate(url, load, sandbox.client))
        watch(f"{p.deliveries:,} scheduled, none due", p.idle_s)
        # All of them due now (keeping distinct seconds), and wake the worker.
        data.run(
            scalar(
                url,
                "WITH moved AS (UPDATE deliveries SET scheduled_at = scheduled_at - "
                "interval '3 days', due_at = due_at - interval '3 days' RETURNING 1) "
                "SELECT count(*) FROM moved",
            )
        )
        data.run(scalar(url, "SELECT pg_notify('postpilot_due', '')::text"))
        task = progress.add_task(f"memory: publishing {p.deliveries:,}", total=p.deliveries)
        published = 0
        started = time.monotonic()

        def poll(done: int) -> None:
            nonlocal published
            published = done
            group.sample()
            progress.update(task, completed=done)

        group.peak_rss_mb = [0.0]
        drained = data.run(drain(url, timeout=p.busy_s, on_poll=poll, until=started + p.busy_s))
        elapsed = time.monotonic() - started
        progress.remove_task(task)
        phases[f"{p.deliveries:,} due, publishing"] = {
            "seconds": elapsed,
            "rss_max_mb": group.peak_rss_mb[0],
            "published": published,
            "drained": drained,
            "deliveries_per_s": figures.throughput(published, elapsed),
            "statuses": data.run(data.status_counts(url)),
        }
    finally:
        group.stop()
        data.run(template.drop(url))
        data.run(template.close())
    shutil.rmtree(logdir, ignore_errors=True)
    peak = max(phase["rss_max_mb"] for phase in phases.values())
    return {"params": asdict(p), "phases": phases, "peak_rss_mb": peak, "under_150_mb": peak < 150}


def memory_markdown(result: dict[str, Any], command: str) -> str:
    p, f = result["params"], result["params"]["fleet"]
    rows = [
        [
            name,
            report.fmt(phase["seconds"]),
            report.fmt(phase["rss_max_mb"]),
            report.fmt(phase.get("published")),
            report.fmt(phase.get("deliveries_per_s")),
        ]
        for name, phase in result["phases"].items()
    ]
    return (
        "\n".join(
            [
                "### memory",
                "",
                f"`{command}`",
                "",
                f"One `postpilot worker --scheduler optimized --processes 1` (batch {f['batch']}, "
                f"concurrency {f['concurrency']}, sandbox latency {report.fmt(f['latency_ms'])} "
                f"ms); RSS sampled every 0.25 s in each phase: an empty database, "
                f"{p['deliveries']:,} posts scheduled for later, then all of them due "
                f"(publishing for at most {report.fmt(p['busy_s'])} s).",
                "",
                report.table(["phase", "seconds", "max RSS MB", "published", "deliveries/s"], rows),
                "",
                f"Peak RSS {report.fmt(result['peak_rss_mb'])} MB: under 150 MB "
                f"{report.status(result['under_150_mb'])}.",
            ]
        )
        + "\n"
    )
