"""Claim cost against table size: `store.work.claim` timed on PostgreSQL with 10,000 and with
1,000,000 scheduled rows, at batch 20 and 500, each claim rolled back so every repetition sees the
same table; plus EXPLAIN (ANALYZE, BUFFERS) of the exact statement the claim sends."""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.progress import Progress
from sqlalchemy import event

from bench import common, data, report
from postpilot.core import figures
from postpilot.store import work
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
