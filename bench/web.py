"""Web pages' server time with a full month: 10,000 posts in the current month (bulk SQL, as the
other scenarios seed), a week of pass figures (one pass a minute, alternating schedulers, 20
deliveries each), 100 unknown and 100 failed deliveries; then each page requested R times by a
signed-in owner through httpx's ASGI transport (the app in this process, no socket: the time is
the server's, plus a few hundred microseconds of in-process client). Medians and p95 per page,
on SQLite and/or PostgreSQL; the target is a median under 200 ms."""

from __future__ import annotations

import argparse
import calendar as month_days
import random
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.progress import Progress
from sqlalchemy import select, update

from bench import common, data
from postpilot import passwords
from postpilot.api.app import create_app
from postpilot.core.roles import Role
from postpilot.monitor import store as monitor_store
from postpilot.monitor.figures import PassFigures
from postpilot.runtime import build_runtime
from postpilot.store import users, web_sessions
from postpilot.store.database import Database
from postpilot.store.tables import Delivery

PAGES: tuple[tuple[str, str], ...] = (
    ("calendar month", "/calendar?view=month"),
    ("calendar week", "/calendar?view=week"),
    ("calendar month, one status", "/calendar?view=month&status=scheduled"),
    ("calendar list", "/calendar?view=list"),
    ("dashboard 1h", "/dashboard?window=1h"),
    ("dashboard 24h", "/dashboard?window=24h"),
    ("dashboard poll 1h", "/dashboard/live?window=1h"),
    ("dashboard 7d", "/dashboard?window=7d"),
    ("accounts", "/accounts"),
    ("attention", "/attention"),
)
TARGET_MS = 200.0


@dataclass(frozen=True)
class Params:
    posts: int = 10_000
    accounts: int = 20
    pass_minutes: int = 7 * 24 * 60  # one pass a minute for a week
    deliveries_per_pass: int = 20
    stuck: int = 100  # unknown deliveries, and as many failed
    repeat: int = 30
    warmup: int = 3
    databases: tuple[str, ...] = ("sqlite",)


def params(args: argparse.Namespace) -> Params:
    p = Params()
    if args.smoke:
        p = Params(posts=1_000, accounts=6, pass_minutes=600, stuck=10, repeat=3, warmup=1)
    if args.repeat:
        p = replace(p, repeat=args.repeat)
    if args.dbs:
        p = replace(p, databases=tuple(args.dbs))
    return p


def _month_load(p: Params, now: datetime) -> data.Load:
    """The posts spread over the current month, to the second."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = month_days.monthrange(now.year, now.month)[1]
    step = timedelta(days=days) / p.posts
    return data.Load(
        deliveries=p.posts,
        accounts=p.accounts,
        platforms=("mastodon", "x", "bluesky"),
        start=first,
        step=step,
    )


def _pass(index: int, at: datetime, p: Params, rng: random.Random) -> PassFigures:
    scheduler = "optimized" if index % 2 else "reference"
    n = p.deliveries_per_pass
    processing = [rng.uniform(20, 400) for _ in range(n)]
    lateness = [rng.uniform(50, 3_000) for _ in range(n)]
    hits = rng.randint(n // 2, n)
    return PassFigures(
        pass_id=str(uuid.uuid4()),
        scheduler=scheduler,
        started_at=at,
        duration_ms=rng.uniform(200, 2_000),
        batch_limit=n,
        concurrency=5,
        claimed=n,
        published=n - 1,
        failed=1,
        processing_count=n,
        processing_total_ms=sum(processing),
        processing_samples=processing,
        db_statements=rng.randint(4, 3 * n),
        cache_hits=hits,
        cache_misses=n - hits,
        cache_phase="steady_state",
        peak_db_connections=2,
        max_db_connections=10,
        lateness_count=n,
        lateness_samples=lateness,
    )


async def _seed(url: str, p: Params, sandbox: common.Sandbox) -> tuple[str, str]:
    """The month's posts, a week of passes, the stuck deliveries and a signed-in owner;
    returns the workspace id and the session's secret."""
    now = datetime.now(UTC)
    workspace_id = await data.populate(url, _month_load(p, now), sandbox.client)
    db = Database(url)
    try:
        rng = random.Random(14)
        async with db.engine.begin() as conn:
            start = now - timedelta(minutes=p.pass_minutes)
            for minute in range(p.pass_minutes):
                figures = _pass(minute, start + timedelta(minutes=minute), p, rng)
                await monitor_store.insert_pass(conn, figures)
        async with db.transaction() as session:
            ids = list((await session.scalars(select(Delivery.id).limit(2 * p.stuck))).all())
            await session.execute(
                update(Delivery).where(Delivery.id.in_(ids[: p.stuck])).values(status="unknown")
            )
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids[p.stuck :]))
                .values(status="failed", last_error="bench: refused")
            )
            user = await users.create_user(
                session,
                email="bench@example.com",
                password_hash=passwords.hash_password("bench password 14"),
                now=now,
            )
            await users.add_membership(
                session,
                user=user,
                workspace_id=workspace_id,
                role=Role.OWNER,
                actor="bench",
                now=now,
            )
            secret = await web_sessions.start(
                session,
                user_id=user.id,
                workspace_id=workspace_id,
                now=now,
                lifetime=timedelta(hours=2),
            )
    finally:
        await db.dispose()
    return workspace_id, secret


async def _measure(url: str, p: Params, sandbox: common.Sandbox, secret: str) -> dict[str, Any]:
    settings = common.bench_settings(database_url=url, sandbox_url=sandbox.url)
    runtime = build_runtime(settings)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime  # what the lifespan sets; the pages need nothing else of it
    results: dict[str, Any] = {}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", cookies={"pp_session": secret}
        ) as client:
            for label, path in PAGES:
                times = []
                for index in range(p.warmup + p.repeat):
                    began = time.perf_counter()
                    answer = await client.get(path)
                    elapsed = (time.perf_counter() - began) * 1000
                    if answer.status_code != 200:
                        break  # a page not there yet (another part's) is reported, not timed
                    if index >= p.warmup:
                        times.append(elapsed)
                if not times:
                    results[label] = {"path": path, "status": answer.status_code}
                    continue
                times.sort()
                results[label] = {
                    "path": path,
                    "median_ms": round(common.median(times) or 0.0, 1),
                    "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                    "bytes": len(answer.content),
                }
    finally:
        await runtime.close()
    return results


def run(p: Params, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    results: dict[str, Any] = {"params": asdict(p), "databases": {}}
    task = progress.add_task("web pages", total=len(p.databases))
    for kind in p.databases:
        template = data.Template(kind, Path(tempfile.mkdtemp(prefix="pp-bench-web-")))
        data.run(template.build())
        try:
            url = data.run(template.copy())
            _workspace, secret = data.run(_seed(url, p, sandbox))
            results["databases"][kind] = data.run(_measure(url, p, sandbox, secret))
        finally:
            data.run(template.close())
        progress.advance(task)
    return results


def markdown(result: dict[str, Any], command: str) -> str:
    p = result["params"]
    lines = [
        "### Web pages' server time with a full month",
        "",
        f"`{command}`: {p['posts']:,} posts in the current month over {p['accounts']} accounts, "
        f"{p['pass_minutes']:,} stored passes (one a minute), {p['stuck']} unknown and "
        f"{p['stuck']} failed deliveries; {p['repeat']} requests per page after "
        f"{p['warmup']} warm-up, a signed-in owner, through httpx's ASGI transport. "
        f"Target: median < {TARGET_MS:.0f} ms.",
        "",
        "| page | database | median ms | p95 ms | KiB | under target |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for kind, pages in result["databases"].items():
        for label, row in pages.items():
            if "median_ms" not in row:
                lines.append(f"| {label} | {kind} | answered {row['status']} | | | |")
                continue
            ok = "yes" if row["median_ms"] < TARGET_MS else "**no**"
            lines.append(
                f"| {label} | {kind} | {row['median_ms']} | {row['p95_ms']} | "
                f"{row['bytes'] / 1024:.0f} | {ok} |"
            )
    return "\n".join(lines) + "\n"
