"""A known workload through real passes (sandbox, real database, the real app over HTTP): the
stored figures, the summary, the runs, the comparison and /metrics equal what the workload
implies, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from postpilot.core import figures
from postpilot.monitor import store
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.monitor.support import OPERATOR, api_for


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def runtime(
    any_db: Database, sandbox: SandboxClient, clock: Clock
) -> AsyncIterator[ServiceRuntime]:
    settings = make_settings(any_db, sandbox, SCHEDULER_RETRY_BASE_SECONDS=60)
    rt = build_runtime(settings, db=any_db, clock=clock)
    yield rt
    await rt.close()


def _sample(values: list[float], q: float) -> float:
    result = figures.percentile([round(v, 3) for v in values], q)
    assert result is not None
    return result


async def test_known_workload_figures(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock
) -> None:
    db = runtime.db
    workspace, accounts = await workspace_with_accounts(db, sandbox, count=2)
    # Optimized: 10 deliveries due at T; two are refused (permanent), one hits a 500 (retried);
    # the pass runs 2.5 s after T, so every published delivery is exactly 2.5 s late.
    due = clock()
    await due_posts(db, workspace, accounts, count=5, at=due)
    sandbox.inject("bad_media", "mastodon", remaining=2)
    sandbox.inject("server_error", "mastodon", remaining=1)
    clock.advance(seconds=2.5)
    optimized = await run_pass(runtime, scheduler="optimized", limit=10, concurrency=4)
    assert (optimized.published, optimized.failed, optimized.retried) == (7, 2, 1)

    # Reference: 4 more deliveries, 1 s late. The retried one is not due again yet.
    clock.advance(seconds=1)
    await due_posts(db, workspace, accounts, count=2, at=clock(), text="second")
    clock.advance(seconds=1)
    reference = await run_pass(runtime, scheduler="reference", limit=10)
    assert (reference.claimed, reference.published) == (4, 4)

    async with db.engine.connect() as conn:
        stored = {f.scheduler: f for f in await store.recent_passes(conn, limit=10)}
    row = stored["optimized"]
    assert (row.claimed, row.published, row.failed, row.retried, row.unknown) == (10, 7, 2, 1, 0)
    assert row.pass_id == optimized.pass_id and row.started_at == due + timedelta(seconds=2.5)
    assert row.db_statements == optimized.db_statements
    assert row.processing_count == 10
    assert row.processing_p50_ms == pytest.approx(_sample(optimized.processing_ms, 50))
    assert row.processing_p95_ms == pytest.approx(_sample(optimized.processing_ms, 95))
    assert row.processing_p99_ms == pytest.approx(_sample(optimized.processing_ms, 99))
    assert row.lateness_samples == [2500.0] * 7
    assert row.lateness_p50_ms == 2500.0 and row.lateness_p99_ms == 2500.0
    assert (row.cache_hits, row.cache_misses) == (optimized.cache_hits, optimized.cache_misses)
    assert row.max_db_connections == runtime.settings.DATABASE_MAX_CONNECTIONS
    assert row.peak_db_connections == optimized.peak_db_connections >= 1
    assert stored["reference"].lateness_samples == [1000.0] * 4

    async with api_for(runtime) as client:
        answer = await client.get("/api/performance?type=summary&window=1h", headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        opt, ref = body["schedulers"]["optimized"], body["schedulers"]["reference"]
        assert opt["passes"] == 1 and opt["outcomes"] == 10
        assert opt["error_rate"] == pytest.approx(0.3) and opt["success_rate"] == pytest.approx(0.7)
        assert opt["processing_ms"]["count"] == 10
        assert opt["processing_ms"]["mean"] == pytest.approx(
            round(sum(round(v, 3) for v in optimized.processing_ms) / 10, 3), abs=1e-3
        )
        assert opt["db_statements_per_pass"] == optimized.db_statements
        assert opt["lateness_ms"] == {
            "count": 7,
            "mean": 2500.0,
            "p50": 2500.0,
            "p95": 2500.0,
            "p99": 2500.0,
            "max": 2500.0,
        }
        assert opt["published_per_minute"] == pytest.approx(round(7 / 60, 3))
        assert opt["throughput_per_second"] == pytest.approx(
            10 / (round(optimized.duration_ms, 3) / 1000), rel=1e-3
        )
        assert ref["outcomes"] == 4 and ref["success_rate"] == 1.0 and ref["error_rate"] == 0.0
        assert ref["lateness_ms"]["p99"] == 1000.0
        assert ref["db_statements_total"] == reference.db_statements
        points = body["series"]["points"]["optimized"]
        assert body["series"]["bucket_seconds"] == 60 and len(points) == 60
        assert sum(p["published"] for p in points) == 7
        assert body["cache"]["backend"] == "memory"
        assert {"credentials", "media", "uploads"} <= set(body["cache"]["process"])

        runs = (await client.get("/api/performance?type=runs", headers=OPERATOR)).json()["runs"]
        assert [r["scheduler"] for r in runs] == ["reference", "optimized"]  # newest first
        assert runs[1]["pass_id"] == optimized.pass_id and "lateness_samples" not in runs[1]

        table = (await client.get("/api/performance?type=compare", headers=OPERATOR)).json()
        rows = {r["metric"]: r for r in table["rows"]}
        assert rows["success_rate"]["reference"] == 1.0
        assert rows["success_rate"]["optimized"] == pytest.approx(0.7)
        assert rows["success_rate"]["improvement"] == "-30.0 pp"
        assert rows["success_rate"]["improved"] is False
        assert rows["lateness_ms.p50"]["improvement"] == "2.5x higher (worse)"
        assert table["passes"] == {"reference": 1, "optimized": 1}

        metrics = (await client.get("/metrics", headers=OPERATOR)).text
    assert 'postpilot_passes_total{scheduler="optimized"} 1.0' in metrics
    assert 'postpilot_delivery_outcomes_total{result="published",scheduler="optimized"} 7.0' in (
        metrics
    )
    assert 'postpilot_delivery_outcomes_total{result="failed",scheduler="optimized"} 2.0' in metrics
    assert 'postpilot_delivery_lateness_seconds_count{scheduler="optimized"} 7.0' in metrics
    assert 'postpilot_delivery_lateness_seconds_sum{scheduler="optimized"} 17.5' in metrics
    assert 'postpilot_delivery_lateness_seconds_sum{scheduler="reference"} 4.0' in metrics
    assert 'postpilot_delivery_processing_seconds_count{scheduler="optimized"} 10.0' in metrics
    assert f"postpilot_db_connections_max {float(runtime.db.max_connections)}" in metrics
    assert 'postpilot_cache_requests_total{cache="credentials",result="miss"}' in metrics


async def test_passes_that_claim_nothing_are_not_stored(runtime: ServiceRuntime) -> None:
    report = await run_pass(runtime, scheduler="optimized")
    assert report.claimed == 0
    async with runtime.db.engine.connect() as conn:
        assert await store.recent_passes(conn, limit=5) == []


async def test_monitoring_off_stores_nothing(
    any_db: Database, sandbox: SandboxClient, clock: Clock
) -> None:
    settings = make_settings(any_db, sandbox, ENABLE_PERFORMANCE_MONITORING=False)
    runtime = build_runtime(settings, db=any_db, clock=clock)
    try:
        workspace, accounts = await workspace_with_accounts(any_db, sandbox)
        await due_posts(any_db, workspace, accounts, count=1, at=clock())
        report = await run_pass(runtime, scheduler="optimized")
        assert report.published == 1
        async with any_db.engine.connect() as conn:
            assert await store.recent_passes(conn, limit=5) == []
        # Prometheus still counts (in memory, no database writes).
        assert b'postpilot_passes_total{scheduler="optimized"} 1.0' in (
            runtime.monitor.prometheus.exposition()
        )
    finally:
        await runtime.close()
