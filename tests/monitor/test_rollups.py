"""Rollups of passes per bucket: the summaries and chart points they give equal the ones made
from the passes themselves (percentiles within a histogram bin), in pure code and through the
store on SQLite and PostgreSQL (the upsert adds passes up in the database, concurrent passes of
one bucket included); they outlive the passes' retention; the migration fills them from the
passes already stored."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from postpilot.core import figures
from postpilot.monitor import rollups, summary
from postpilot.monitor import store as monitor_store
from postpilot.monitor.figures import PassFigures
from postpilot.store import schema
from postpilot.store.database import Database
from postpilot.web.dashboard import rollup_start, window_figures

NOW = datetime(2026, 11, 30, 17, 40, 12, tzinfo=UTC)
PERCENTILES = ("p50", "p95", "p99")


def fixed_passes(count: int = 400, *, seed: int = 15) -> list[PassFigures]:
    """Passes over the week before NOW: both schedulers, both cache phases and none, some with
    no deliveries, the same time twice, a few in the current bucket."""
    rng = random.Random(seed)
    passes = []
    for index in range(count):
        at = NOW - timedelta(minutes=rng.uniform(0, 7 * 24 * 60))
        if index % 50 == 0:
            at = NOW - timedelta(minutes=rng.uniform(0, 30))
        n = 0 if index % 37 == 0 else rng.randint(1, 30)
        processing = [round(rng.lognormvariate(3.5, 0.6), 3) for _ in range(n)]
        lateness = [round(rng.uniform(0, 5_000), 3) for _ in range(n)]
        hits = rng.randint(0, 3 * n)
        passes.append(
            PassFigures(
                pass_id=str(uuid.uuid4()),
                scheduler="optimized" if rng.random() < 0.6 else "reference",
                started_at=at,
                duration_ms=round(rng.uniform(5, 3_000), 3),
                batch_limit=50,
                concurrency=10,
                claimed=n + rng.randint(0, 2),
                published=max(0, n - 3),
                failed=min(n, 1),
                retried=min(max(0, n - 1), 1),
                rate_limited=min(max(0, n - 2), 1),
                released=rng.randint(0, 2),
                lost_lease=rng.randint(0, 1),
                processing_count=n,
                processing_total_ms=round(sum(processing), 3),
                processing_samples=processing,
                db_statements=rng.randint(2, 40),
                cache_hits=hits,
                cache_misses=rng.randint(0, n),
                cache_phase=rng.choice(["cold_start", "steady_state", None]),
                peak_db_connections=rng.randint(1, 9),
                max_db_connections=rng.choice([10, 20]),
                lateness_count=n,
                lateness_samples=lateness,
            )
        )
    passes.append(replace(passes[1], pass_id=str(uuid.uuid4())))  # the same instant twice
    return passes


def added_up(passes: list[PassFigures], size: timedelta) -> list[rollups.Rollup]:
    """What the store's upsert should hold: the passes merged per bucket in Python."""
    found: dict[tuple[str, datetime], rollups.Rollup] = {}
    for one in sorted(passes, key=lambda p: p.started_at):
        part = rollups.Rollup.of_pass(one, size)
        key = (part.scheduler, part.bucket_start)
        found[key] = found[key].merge(part) if key in found else part
    return list(found.values())


def within_a_bin(approximate: float | None, exact: float | None) -> bool:
    if approximate is None or exact is None:
        return approximate is exact
    return abs(approximate - exact) <= exact * rollups.HALF_BIN + 0.002


def assert_same_summary(from_rollups: dict[str, Any], from_passes: dict[str, Any]) -> None:
    assert from_rollups.keys() == from_passes.keys()
    for name, exact in from_passes.items():
        approximate = from_rollups[name]
        if isinstance(exact, dict) and "p95" in exact:  # a Distribution
            for q in PERCENTILES:
                assert within_a_bin(approximate[q], exact[q]), (name, q, approximate, exact)
            assert approximate["count"] == exact["count"], name
            assert approximate["max"] == exact["max"], name
            assert approximate["mean"] == pytest.approx(exact["mean"], abs=0.002), name
        elif isinstance(exact, float):
            assert approximate == pytest.approx(exact, rel=1e-6, abs=0.002), name
        else:
            assert approximate == exact, name


def assert_same_points(
    from_rollups: dict[str, list[dict[str, Any]]], from_passes: dict[str, list[dict[str, Any]]]
) -> None:
    assert from_rollups.keys() == from_passes.keys()
    for name, points in from_passes.items():
        assert len(from_rollups[name]) == len(points)
        for approximate, exact in zip(from_rollups[name], points, strict=True):
            assert approximate.keys() == exact.keys()
            for key, value in exact.items():
                if key in ("processing_p95_ms", "lateness_p99_ms"):
                    assert within_a_bin(approximate[key], value), (name, key, exact["at"])
                elif isinstance(value, float):
                    assert approximate[key] == pytest.approx(value, rel=1e-6, abs=0.002), key
                else:
                    assert approximate[key] == value, (name, key, exact["at"])


def from_passes(passes: list[PassFigures], window: str) -> tuple[Any, Any]:
    """The figures `summary` makes from the passes of the window's buckets."""
    start = rollup_start(window, NOW)
    shown = [p for p in passes if p.started_at >= start]
    return (
        summary.by_scheduler(shown, window=NOW - start),
        summary.series(shown, start=start, end=NOW, bucket=summary.BUCKETS[window]),
    )


def as_dicts(per_scheduler: dict[str, summary.SchedulerSummary]) -> dict[str, dict[str, Any]]:
    return {name: s.as_dict() for name, s in per_scheduler.items()}


# --- pure ---------------------------------------------------------------------------------


def test_a_histograms_percentiles_are_within_a_bin_of_the_exact_ones() -> None:
    rng = random.Random(3)
    for values in (
        [42.0],
        [0.0, 0.0, 1.5],
        [rng.lognormvariate(4, 1) for _ in range(1_000)],
        [rng.uniform(20, 400) for _ in range(37)],
    ):
        bins = rollups.histogram(values)
        for q in (0, 50, 95, 99, 100):
            exact = figures.percentile(values, q)
            found = rollups.percentile(bins, q, top=max(values))
            assert within_a_bin(found, exact), (q, found, exact)
    assert rollups.percentile({}, 50, top=0.0) is None
    assert rollups.HALF_BIN < 0.02


def test_rollups_give_the_figures_of_their_passes() -> None:
    passes = fixed_passes()
    for window in ("24h", "7d"):
        size = summary.BUCKETS[window]
        start = rollup_start(window, NOW)
        held = [r for r in added_up(passes, size) if r.bucket_start >= start]
        per_scheduler, points = from_passes(passes, window)
        assert_same_summary(
            as_dicts(rollups.by_scheduler(held, window=NOW - start))["optimized"],
            as_dicts(per_scheduler)["optimized"],
        )
        assert_same_summary(
            as_dicts(rollups.by_scheduler(held, window=NOW - start))["reference"],
            as_dicts(per_scheduler)["reference"],
        )
        assert_same_points(rollups.series(held, start=start, end=NOW, bucket=size), points)
        assert len(points["optimized"]) == int(summary.WINDOWS[window] / size)


def test_merging_in_any_order_gives_the_same_rollup() -> None:
    passes = [p for p in fixed_passes(60) if p.scheduler == "optimized"]
    size = timedelta(days=30)  # one bucket holds them all
    forward = rollups.total("optimized", [rollups.Rollup.of_pass(p, size) for p in passes])
    backward = rollups.total("optimized", [rollups.Rollup.of_pass(p, size) for p in passes[::-1]])
    for name in (*rollups.HISTOGRAMS, *rollups.MAXIMA, *rollups.MINIMA, "passes", "published"):
        assert getattr(forward, name) == getattr(backward, name), name
    assert (
        forward.peak_ratio
        == backward.peak_ratio
        == max(p.peak_db_connections / p.max_db_connections for p in passes)
    )
    assert math.isclose(forward.processing_total_ms, backward.processing_total_ms)


def test_an_empty_window_summarises_as_no_passes() -> None:
    start = rollup_start("7d", NOW)
    empty = rollups.by_scheduler([], window=NOW - start)
    assert as_dicts(empty) == as_dicts(summary.by_scheduler([], window=NOW - start))


# --- through the store --------------------------------------------------------------------


async def store_passes(db: Database, passes: list[PassFigures]) -> None:
    """As the monitor records them: a transaction per pass, a few at the same moment."""

    async def record(one: PassFigures) -> None:
        async with db.engine.begin() as conn:
            await monitor_store.insert_pass(conn, one)

    for start in range(0, len(passes), 8):
        await asyncio.gather(*(record(p) for p in passes[start : start + 8]))


def same_rollups(stored: list[rollups.Rollup], expected: list[rollups.Rollup]) -> None:
    by_key = {(r.scheduler, r.bucket_start): r for r in expected}
    assert len(stored) == len(by_key)
    for one in stored:
        wanted = by_key[(one.scheduler, one.bucket_start)]
        for name, value in wanted.row().items():
            if isinstance(value, float):
                assert getattr(one, name) == pytest.approx(value), name
            else:
                assert getattr(one, name) == value, name


async def test_the_store_adds_passes_up_and_the_dashboard_reads_them(any_db: Database) -> None:
    passes = fixed_passes(240)
    await store_passes(any_db, passes)
    async with any_db.engine.connect() as conn:
        for window in ("24h", "7d"):
            size = summary.BUCKETS[window]
            start = rollup_start(window, NOW)
            stored = await monitor_store.rollups_since(conn, size, start)
            same_rollups(stored, [r for r in added_up(passes, size) if r.bucket_start >= start])
            per_scheduler, points = await window_figures(conn, window, NOW)
            expected_summaries, expected_points = from_passes(passes, window)
            for name in summary.SCHEDULERS:
                assert_same_summary(
                    as_dicts(per_scheduler)[name], as_dicts(expected_summaries)[name]
                )
            assert_same_points(points, expected_points)
        # The last hour still reads its passes: exact.
        exact = await window_figures(conn, "1h", NOW)
        recent = [p for p in passes if p.started_at >= NOW - timedelta(hours=1)]
        assert as_dicts(exact[0]) == as_dicts(
            summary.by_scheduler(recent, window=timedelta(hours=1))
        )


async def test_rollups_outlive_the_passes_retention(any_db: Database) -> None:
    passes = fixed_passes(40)
    await store_passes(any_db, passes)
    async with any_db.engine.begin() as conn:
        await monitor_store.prune(conn, before=NOW, rollups_before=NOW - timedelta(days=3))
    async with any_db.engine.connect() as conn:
        assert await monitor_store.passes_since(conn, NOW - timedelta(days=30)) == []
        kept = await monitor_store.rollups_since(conn, timedelta(hours=1), NOW - timedelta(days=30))
    oldest = rollups.bucket_start(NOW - timedelta(days=3), timedelta(hours=1))
    expected = [r for r in added_up(passes, timedelta(hours=1)) if r.bucket_start >= oldest]
    same_rollups(kept, expected)
    assert kept and len(kept) < len(added_up(passes, timedelta(hours=1)))


async def test_the_migration_adds_up_the_passes_already_stored(any_db: Database) -> None:
    def down(connection: Connection) -> None:
        config = schema.alembic_config(any_db.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0014_user_timezone")

    async with any_db.engine.begin() as conn:
        await conn.run_sync(down)
    passes = fixed_passes(300)
    async with any_db.engine.begin() as conn:
        await conn.execute(insert(monitor_store.pass_metrics), [p.row() for p in passes])
    await schema.upgrade(any_db)
    async with any_db.engine.connect() as conn:
        for size in rollups.SIZES:
            stored = await monitor_store.rollups_since(conn, size, NOW - timedelta(days=30))
            same_rollups(stored, added_up(passes, size))
        total = await conn.execute(select(monitor_store.monitor_rollups.c.passes))
        assert sum(total.scalars()) == len(passes) * len(rollups.SIZES)
