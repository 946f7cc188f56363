"""One measured run in its own process, so CPU time and peak memory are the run's own:
`python -m bench.child '<json spec>'`. Modes: `reference` or `optimized` (scheduler passes back
to back until nothing is due) and `bare` (the same publish requests with the scheduler's HTTP
client and concurrency, and no scheduler). Prints JSON lines: progress, then the result."""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import pstats
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
from sqlalchemy import select

from bench import client, common, sampling
from postpilot import heap, loop
from postpilot.core import figures
from postpilot.crypto import CredentialCipher
from postpilot.publishers.bluesky import COLLECTION, record_key
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.scheduler.passes import run_pass
from postpilot.store import work
from postpilot.store.tables import Account, Delivery, Post

# A run stops when no pass claims anything and nothing is due within this long.
IDLE_HORIZON = timedelta(seconds=10)


def emit(kind: str, **values: Any) -> None:
    sys.stdout.write(json.dumps({"type": kind, **values}, default=str) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def scheduler_run(spec: dict[str, Any]) -> dict[str, Any]:
    settings = common.bench_settings(
        database_url=spec["database_url"],
        sandbox_url=spec["sandbox_url"],
        batch=spec["batch"],
        concurrency=spec["concurrency"],
        # Shared account slots (and budgets, uploads) in Redis, under keys of the bench's own.
        **(
            {"REDIS_URL": spec["redis_url"], "REDIS_KEY_PREFIX": "postpilot-bench:"}
            if spec.get("redis_url")
            else {}
        ),
    )
    runtime = build_runtime(settings)
    mode, batch, most = spec["mode"], int(spec["batch"]), spec.get("max_deliveries")
    passes: list[dict[str, Any]] = []
    processing: list[float] = []
    done = 0
    try:
        async with runtime.db.engine.connect() as conn:  # connect before the clock starts
            await work.next_due_at(conn)
        heap.settle()  # as `postpilot worker` does once its runtime is open
        rss_start = psutil.Process().memory_info().rss / 2**20
        cpu_start, started = cpu_seconds(), time.perf_counter()
        while True:
            limit = batch if most is None else min(batch, most - done)
            if limit <= 0:
                break
            report = await run_pass(
                runtime, scheduler=mode, limit=limit, concurrency=spec["concurrency"]
            )
            if report.claimed == 0:
                async with runtime.db.engine.connect() as conn:
                    next_due = await work.next_due_at(conn)
                now = runtime.now()
                if next_due is None or next_due - now > IDLE_HORIZON:
                    break
                await asyncio.sleep(max(0.0, (next_due - now).total_seconds()))
                continue
            done += report.claimed
            processing.extend(report.processing_ms)
            passes.append(
                {
                    "claimed": report.claimed,
                    "published": report.published,
                    "failed": report.failed,
                    "retried": report.retried,
                    "rate_limited": report.rate_limited,
                    "unknown": report.unknown,
                    "lost_lease": report.lost_lease,
                    "db_statements": report.db_statements,
                    "duration_ms": round(report.duration_ms, 3),
                    "cache_hits": report.cache_hits,
                    "cache_misses": report.cache_misses,
                    "peak_db_connections": report.peak_db_connections,
                }
            )
            emit("progress", done=sum(p["published"] for p in passes))
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_start
    finally:
        await runtime.close()
    return summarize(mode, passes, processing, wall, cpu, rss_start)


def summarize(
    mode: str,
    passes: list[dict[str, Any]],
    processing: list[float],
    wall: float,
    cpu: float,
    rss_start: float,
) -> dict[str, Any]:
    def total(key: str) -> int:
        return sum(int(p[key]) for p in passes)

    counts = figures.Outcomes(
        published=total("published"),
        failed=total("failed"),
        retried=total("retried"),
        rate_limited=total("rate_limited"),
        unknown=total("unknown"),
    )
    # The run goes on until nothing is due: a retried delivery is decided again, counted once.
    deliveries, statements = figures.finished(counts), total("db_statements")
    full = [p for p in passes if p["claimed"] == max((q["claimed"] for q in passes), default=0)]
    return {
        "mode": mode,
        "wall_s": wall,
        "published": counts.published,
        "claimed": total("claimed"),
        "failed": counts.failed,
        "retried": counts.retried,
        "rate_limited": counts.rate_limited,
        "unknown": counts.unknown,
        "lost_lease": total("lost_lease"),
        **_per_delivery(deliveries, wall=wall, cpu=cpu),
        **_processing(processing),
        "passes": len(passes),
        "db_statements": statements,
        "statements_per_delivery": figures.per_delivery(statements, deliveries),
        "statements_per_pass_max": max((p["db_statements"] for p in passes), default=None),
        "statements_per_full_pass": figures.median([p["db_statements"] for p in full]),
        "full_pass_size": full[0]["claimed"] if full else None,
        "cache_hits": total("cache_hits"),
        "cache_misses": total("cache_misses"),
        "cache_hit_rate": figures.hit_rate(total("cache_hits"), total("cache_misses")),
        "peak_db_connections": max((p["peak_db_connections"] for p in passes), default=None),
        "cpu_s": cpu,
        "rss_start_mb": rss_start,
        "peak_rss_mb": peak_rss_mb(),
        "pass_log": passes,
    }


async def bare_run(spec: dict[str, Any]) -> dict[str, Any]:
    """The physical limit: each delivery's publish request, nothing else."""
    settings = common.bench_settings(
        database_url=spec["database_url"],
        sandbox_url=spec["sandbox_url"],
        batch=spec["batch"],
        concurrency=spec["concurrency"],
    )
    runtime = build_runtime(settings)  # for its HTTP client: the same settings as the scheduler
    try:
        requests = await _publish_requests(runtime, spec)
        heap.settle()  # as the scheduler's modes do
        rss_start = psutil.Process().memory_info().rss / 2**20
        gate = asyncio.Semaphore(int(spec["concurrency"]))
        statuses: dict[str, int] = {}
        durations: list[float] = []
        step = max(1, len(requests) // 50)

        async def send(request: dict[str, Any]) -> None:
            async with gate:
                began = time.perf_counter()
                try:
                    response = await runtime.http.post(
                        request["url"], json=request["json"], headers=request["headers"]
                    )
                    key = str(response.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                durations.append((time.perf_counter() - began) * 1000)
                statuses[key] = statuses.get(key, 0) + 1
                if len(durations) % step == 0:
                    emit("progress", done=len(durations))

        cpu_start, started = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(send(r) for r in requests))
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_start
    finally:
        await runtime.close()
    ok = sum(n for status, n in statuses.items() if status in ("200", "201"))
    return {
        "mode": "bare",
        "wall_s": wall,
        "requests": len(requests),
        "published": ok,
        "statuses": statuses,
        **_per_delivery(ok, wall=wall, cpu=cpu),
        **_processing(durations),
        "cpu_s": cpu,
        "rss_start_mb": rss_start,
        "peak_rss_mb": peak_rss_mb(),
    }


def _per_delivery(deliveries: int, *, wall: float, cpu: float) -> dict[str, float | None]:
    return {
        "deliveries_per_s": figures.throughput(deliveries, wall),
        "ms_per_delivery": figures.per_delivery(wall * 1000, deliveries),
        "cpu_ms_per_delivery": figures.per_delivery(cpu * 1000, deliveries),
    }


def _processing(durations: list[float]) -> dict[str, float | None]:
    return {f"processing_p{q}_ms": figures.percentile(durations, q) for q in (50, 95, 99)}


async def _publish_requests(runtime: ServiceRuntime, spec: dict[str, Any]) -> list[dict[str, Any]]:
    cipher = CredentialCipher(common.SECRET_KEY)
    sandbox = spec["sandbox_url"]
    query = (
        select(
            Delivery.platform,
            Delivery.idempotency_key,
            Delivery.scheduled_at,
            Post.text,
            Account.credentials,
        )
        .join(Post, Post.id == Delivery.post_id)
        .join(Account, Account.id == Delivery.account_id)
        .order_by(Delivery.due_at)
    )
    if spec.get("max_deliveries"):
        query = query.limit(int(spec["max_deliveries"]))
    async with runtime.db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    decrypted: dict[str, dict[str, Any]] = {}
    requests = []
    for platform, key, scheduled_at, text, sealed in rows:
        credentials = decrypted.get(sealed) or decrypted.setdefault(sealed, cipher.decrypt(sealed))
        base = f"{sandbox}/{platform}"
        if platform == "mastodon":
            requests.append(
                {
                    "url": f"{base}/api/v1/statuses",
                    "json": {"status": text, "media_ids": [], "visibility": "public"},
                    "headers": {
                        "Authorization": f"Bearer {credentials['access_token']}",
                        "Idempotency-Key": key,
                    },
                }
            )
        elif platform == "bluesky":
            scheduled = scheduled_at if scheduled_at.tzinfo else scheduled_at.replace(tzinfo=UTC)
            created = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
            requests.append(
                {
                    "url": f"{base}/xrpc/com.atproto.repo.createRecord",
                    "json": {
                        "repo": credentials["did"],
                        "collection": COLLECTION,
                        "rkey": record_key(key, scheduled),
                        "record": {"$type": COLLECTION, "text": text, "createdAt": created},
                    },
                    "headers": {"Authorization": f"Bearer {credentials['access_jwt']}"},
                }
            )
        elif platform == "x":
            requests.append(
                {
                    "url": f"{base}/2/tweets",
                    "json": {"text": text},
                    "headers": {"Authorization": f"Bearer {credentials['access_token']}"},
                }
            )
        else:
            raise SystemExit(f"the bare loop does not know {platform!r}'s publish request yet")
    return requests


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("sniffio_importable"):  # measure the proposed fix: see bench/client.py
        sys.modules.setdefault("sniffio", client._Sniffio)  # type: ignore[arg-type]
    runner = bare_run if spec["mode"] == "bare" else scheduler_run
    # The loop a worker runs on (uvloop where installed): every mode, so the ratios stay fair.
    run = asyncio.run if spec.get("standard_loop") else loop.run
    if spec.get("sample"):
        samples: dict[str, Any] = {}
        with sampling.sampled(samples):
            result = run(runner(spec))
        emit("result", result={**result, **samples})
        return
    if not spec.get("profile"):
        emit("result", result=run(runner(spec)))
        return
    profiler = cProfile.Profile()
    result = profiler.runcall(run, runner(spec))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    result["profile_top"] = text.getvalue().splitlines()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
    result["profile_cumulative"] = text.getvalue().splitlines()
    emit("result", result=result)


if __name__ == "__main__":
    main()
