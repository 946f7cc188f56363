"""Claim cost against table size: `store.work.claim` timed on PostgreSQL with 10,000 and with
1,000,000 scheduled rows, at batch 20 and 500, each claim rolled back so every repetition sees the
same table; plus EXPLAIN (ANALYZE, BUFFERS) of the exact statement the claim sends.

Contention: 1, 2 and 8 processes draining one table with the same claim, committed, to show the
claim stays cheap with many workers on one database and where that database's ceiling is."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.progress import Progress
from sqlalchemy import event, update

from bench import common, data, report
from postpilot import loop
from postpilot.core import figures
from postpilot.store import database, tables, work
from postpilot.store.database import Database

LEASE = timedelta(seconds=120)


@dataclass(frozen=True)
class Params:
    rows: tuple[int, ...] = (10_000, 1_000_000)
    batches: tuple[int, ...] = (20, 500)
    repeat: int = 30
    warmup: int = 3
    accounts: int = 100
    # Share of the rows already due; the rest are scheduled over the next 30 days.
    due_fraction: float = 1.0


def params(args: argparse.Namespace) -> Params:
    p = Params()
    if args.smoke:
        p = Params(rows=(1_000, 5_000), repeat=3, warmup=1, accounts=6)
    if args.rows:
        p = Params(**{**asdict(p), "rows": tuple(int(r) for r in args.rows.split(","))})
    if args.repeat:
        p = Params(**{**asdict(p), "repeat": args.repeat})
    return p


def run(p: Params, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    template = data.Template("postgresql", Path(tempfile.mkdtemp(prefix="pp-bench-")))
    data.run(template.build())
    results: dict[str, Any] = {"params": asdict(p), "sizes": {}}
    try:
        for rows in p.rows:
            sandbox.prepare(latency_ms=0, fault_rate=0, seed=0)
            url = data.run(template.copy())
            try:
                task = progress.add_task(f"claim: generating {rows:,} rows", total=None)
                began = time.perf_counter()
                load = data.due_load(rows, p.accounts, ("mastodon",), spread=timedelta(days=1))
                data.run(data.populate(url, load, sandbox.client))
                generated = time.perf_counter() - began
                progress.remove_task(task)
                entry = data.run(measure(url, p, progress, rows))
                entry["generate_s"] = generated
                results["sizes"][str(rows)] = entry
            finally:
                data.run(template.drop(url))
    finally:
        data.run(template.close())
    ratios = {}
    if len(p.rows) >= 2:
        small, big = (results["sizes"][str(r)] for r in (min(p.rows), max(p.rows)))
        for batch in p.batches:
            ratios[str(batch)] = figures.ratio(
                big["batches"][str(batch)]["median_ms"], small["batches"][str(batch)]["median_ms"]
            )
    results["ratio_big_over_small"] = ratios
    return results


async def measure(url: str, p: Params, progress: Progress, rows: int) -> dict[str, Any]:
    db = Database(url)
    captured: list[tuple[str, Any]] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    entry: dict[str, Any] = {"rows": rows, "batches": {}}
    try:
        async with db.engine.connect() as conn:
            entry["table_mb"] = (
                await conn.exec_driver_sql(
                    "SELECT pg_total_relation_size('deliveries')::float8 / 1048576"
                )
            ).scalar_one()
            await conn.rollback()
            for batch in p.batches:
                task = progress.add_task(f"claim {rows:,} rows, batch {batch}", total=p.repeat)
                timings = []
                for index in range(p.warmup + p.repeat):
                    transaction = await conn.begin()
                    captured.clear()
                    began = time.perf_counter()
                    items = await work.claim(
                        conn, now=datetime.now(UTC), limit=batch, claimer="bench", lease=LEASE
                    )
                    elapsed = (time.perf_counter() - began) * 1000
                    await transaction.rollback()
                    if index >= p.warmup:
                        timings.append(elapsed)
                        progress.advance(task)
                progress.remove_task(task)
                statement, parameters = captured[-1]
                entry["batches"][str(batch)] = {
                    "claimed": len(items),
                    "statements": len(captured),
                    "median_ms": common.median(timings),
                    "p95_ms": figures.percentile(timings, 95),
                    "min_ms": min(timings),
                    "timings_ms": timings,
                    "statement": statement,
                    "plan": await explain(url, statement, parameters),
                }
    finally:
        await db.dispose()
    return entry


async def explain(url: str, statement: str, parameters: Any) -> list[str]:
    """EXPLAIN ANALYZE the claim as sent (it updates rows: inside a transaction rolled back)."""
    conn = await asyncpg.connect(common.pg_dsn(url.rsplit("/", 1)[1]))
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ()))
        finally:
            await transaction.rollback()
        return [str(row[0]) for row in rows]
    finally:
        await conn.close()


def markdown(result: dict[str, Any], command: str) -> str:
    p = result["params"]
    rows = []
    for size, entry in result["sizes"].items():
        for batch, b in entry["batches"].items():
            execution = next((line for line in b["plan"] if "Execution Time" in line), "")
            rows.append(
                [
                    f"{int(size):,}",
                    report.fmt(entry["table_mb"]),
                    batch,
                    report.fmt(b["claimed"]),
                    report.fmt(b["statements"]),
                    report.fmt(b["median_ms"], 2),
                    report.fmt(b["p95_ms"], 2),
                    execution.strip().removeprefix("Execution Time: "),
                ]
            )
    out = [
        "### claim",
        "",
        f"`{command}`",
        "",
        f"`store.work.claim` (the PostgreSQL claim-and-load statement) timed {p['repeat']} times "
        f"after {p['warmup']} warm-ups, each in a transaction rolled back; every row due.",
        "",
        report.table(
            [
                "scheduled rows",
                "deliveries table MB",
                "batch",
                "claimed",
                "statements",
                "median ms",
                "p95 ms",
                "EXPLAIN ANALYZE execution",
            ],
            rows,
        ),
        "",
    ]
    for batch, value in result["ratio_big_over_small"].items():
        out.append(f"- batch {batch}: largest / smallest table = {report.times(value)}")
    biggest = max(result["sizes"], key=int)
    plan = result["sizes"][biggest]["batches"][str(p["batches"][0])]["plan"]
    out += [
        "",
        f"Plan at {int(biggest):,} rows, batch {p['batches'][0]}:",
        "",
        "```",
        *plan,
        "```",
    ]
    return "\n".join(out) + "\n"


# --- contention: many worker processes claiming from one table ---------------------------------


@dataclass(frozen=True)
class ContentionParams:
    rows: int = 20_000
    processes: tuple[int, ...] = (1, 2, 8)
    batch: int = 100
    repeat: int = 3
    accounts: int = 100


def contention_params(args: argparse.Namespace) -> ContentionParams:
    p = ContentionParams()
    if args.smoke:
        p = ContentionParams(rows=2_000, processes=(1, 8), repeat=1, accounts=6)
    changes: dict[str, Any] = {}
    if args.deliveries:
        changes["rows"] = args.deliveries
    if args.batch:
        changes["batch"] = args.batch
    if args.repeat:
        changes["repeat"] = args.repeat
    if args.workers:
        changes["processes"] = tuple(int(n) for n in args.workers.split(","))
    return replace(p, **changes)


def run_contention(
    p: ContentionParams, sandbox: common.Sandbox, progress: Progress
) -> dict[str, Any]:
    """For each process count: a fresh table of `rows` due deliveries, drained by that many
    processes, each claiming `batch` at a time (`store.work.claim`, committed) and then marking
    what it claimed done in one UPDATE (an outcome write's shape), until nothing is left."""
    template = data.Template("postgresql", Path(tempfile.mkdtemp(prefix="pp-bench-")))
    data.run(template.build())
    runs: dict[str, list[dict[str, Any]]] = {str(n): [] for n in p.processes}
    sandbox.prepare(latency_ms=0, fault_rate=0, seed=0)
    context = multiprocessing.get_context("spawn")
    try:
        for repeat in range(p.repeat):
            shift = repeat % len(p.processes)
            for count in p.processes[shift:] + p.processes[:shift]:
                url = data.run(template.copy())
                try:
                    load = data.due_load(
                        p.rows, p.accounts, ("mastodon",), spread=timedelta(days=1)
                    )
                    data.run(data.populate(url, load, sandbox.client))
                    task = progress.add_task(f"contention: {count} process(es)", total=None)
                    with (
                        context.Manager() as manager,
                        concurrent.futures.ProcessPoolExecutor(count, mp_context=context) as pool,
                    ):
                        # Every process imported, connected and waiting before the first claim.
                        barrier = manager.Barrier(count)
                        results = list(
                            pool.map(
                                _drain_process,
                                [url] * count,
                                [p.batch] * count,
                                [barrier] * count,
                                [f"bench-{i}" for i in range(count)],
                            )
                        )
                    progress.remove_task(task)
                    runs[str(count)].append(_combine(results, p.rows))
                finally:
                    data.run(template.drop(url))
    finally:
        data.run(template.close())
    summary = {
        count: {
            key: common.median([r[key] for r in rs])
            for key in (
                "claims_per_s",
                "rows_per_s",
                "claim_p50_ms",
                "claim_p95_ms",
                "claim_p99_ms",
                "statements_per_claim",
                "empty_claims",
            )
        }
        | {"exactly_once_all_runs": all(r["exactly_once"] for r in rs)}
        for count, rs in runs.items()
    }
    return {"params": asdict(p), "runs": runs, "summary": summary}


def _drain_process(url: str, batch: int, barrier: Any, claimer: str) -> dict[str, Any]:
    return loop.run(_drain(url, batch, barrier, claimer))


async def _drain(url: str, batch: int, barrier: Any, claimer: str) -> dict[str, Any]:
    db = Database(url, max_connections=2)
    timings: list[float] = []
    claimed: list[str] = []
    statements = 0
    empty = 0
    try:
        async with db.engine.connect() as conn:  # connected before the start
            await conn.exec_driver_sql("SELECT 1")
        await asyncio.to_thread(barrier.wait)
        started_at = time.time()
        while True:
            with database.counting() as counter:
                began = time.perf_counter()
                async with db.engine.begin() as conn:
                    items = await work.claim(
                        conn, now=datetime.now(UTC), limit=batch, claimer=claimer, lease=LEASE
                    )
                timings.append((time.perf_counter() - began) * 1000)
            statements += counter.count
            if not items:
                # Empty: done, unless rows are still held by others' uncommitted claims.
                empty += 1
                async with db.engine.connect() as conn:
                    left = (
                        await conn.exec_driver_sql(
                            "SELECT count(*) FROM deliveries WHERE status = 'scheduled'"
                        )
                    ).scalar_one()
                if not left:
                    break
                continue
            ids = [item.delivery.id for item in items]
            claimed.extend(ids)
            async with db.engine.begin() as conn:
                await conn.execute(
                    update(tables.Delivery)
                    .where(tables.Delivery.id.in_(ids), tables.Delivery.claimed_by == claimer)
                    .values(status="published", claimed_by=None, claimed_until=None)
                )
        return {
            "timings_ms": timings,
            "claimed": claimed,
            "statements": statements,
            "empty_claims": empty,
            "started_at": started_at,
            "finished_at": time.time(),
        }
    finally:
        await db.dispose()


def _combine(results: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    timings = [t for r in results for t in r["timings_ms"]]
    claimed = [i for r in results for i in r["claimed"]]
    seconds = max(r["finished_at"] for r in results) - min(r["started_at"] for r in results)
    claims = len(timings)
    return {
        "processes": len(results),
        "seconds": seconds,
        "claims": claims,
        "claims_per_s": figures.throughput(claims, seconds),
        "rows_per_s": figures.throughput(len(claimed), seconds),
        "claim_p50_ms": figures.percentile(timings, 50),
        "claim_p95_ms": figures.percentile(timings, 95),
        "claim_p99_ms": figures.percentile(timings, 99),
        "statements_per_claim": sum(r["statements"] for r in results) / max(1, claims),
        "empty_claims": sum(r["empty_claims"] for r in results),
        "exactly_once": len(claimed) == len(set(claimed)) == rows,
    }


def contention_markdown(result: dict[str, Any], command: str) -> str:
    p = result["params"]
    one = result["summary"].get("1", {}).get("rows_per_s")
    rows = [
        [
            count,
            report.fmt(s["claims_per_s"]),
            report.fmt(s["rows_per_s"]),
            report.times(figures.ratio(s["rows_per_s"], one)),
            report.fmt(s["claim_p50_ms"], 2),
            report.fmt(s["claim_p95_ms"], 2),
            report.fmt(s["claim_p99_ms"], 2),
            report.fmt(s["statements_per_claim"], 2),
            report.fmt(s["empty_claims"]),
            report.fmt(s["exactly_once_all_runs"]),
        ]
        for count, s in result["summary"].items()
    ]
    return (
        "\n".join(
            [
                "### contention",
                "",
                f"`{command}`",
                "",
                f"{p['rows']:,} due deliveries drained by N processes on one PostgreSQL, each "
                f"claiming {p['batch']} at a time (`store.work.claim`, committed) and marking "
                "them done in one UPDATE, until none is left; no publishing, so this is the "
                "database's ceiling for claims and outcome writes. Claim latency is one claim "
                f"transaction as its process saw it; medians of {p['repeat']} runs, process "
                "counts interleaved.",
                "",
                report.table(
                    [
                        "processes",
                        "claims/s",
                        "deliveries/s",
                        "vs 1 process",
                        "claim p50 ms",
                        "claim p95 ms",
                        "claim p99 ms",
                        "statements per claim",
                        "empty claims",
                        "each claimed once",
                    ],
                    rows,
                ),
            ]
        )
        + "\n"
    )
