"""/api/performance and /metrics need the operator secret; bad parameters get the one error
shape; /api/health answers liveness, and readiness that fails when no worker is polling."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta

import pytest

from postpilot.core.states import WorkerState
from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import free_port
from postpilot.scheduler.worker import Worker
from postpilot.store import heartbeats, schema
from postpilot.store.database import Database
from tests.clock import Clock
from tests.helpers import api_server
from tests.monitor.support import OPERATOR, synthetic_pass
from tests.waiting import wait_until


async def test_performance_needs_the_operator_secret(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        as_workspace = await api.client.get("/api/performance")  # a workspace API key
        assert as_workspace.status_code == 401
        assert "CRON_SECRET" in as_workspace.json()["error"]["message"]
        for kind in ("summary", "runs", "alerts", "compare"):
            answer = await api.client.get(f"/api/performance?type={kind}", headers=OPERATOR)
            assert answer.status_code == 200, answer.text
            assert answer.json()["type"] == kind
        metrics = await api.client.get("/metrics")
        assert metrics.status_code == 401
        metrics = await api.client.get("/metrics", headers=OPERATOR)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "postpilot_db_connections_max 20.0" in metrics.text


async def test_without_cron_secret_the_monitor_endpoints_are_off(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox, CRON_SECRET=None) as api:
        answer = await api.client.get("/api/performance", headers=OPERATOR)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "monitor_disabled"


async def test_metrics_can_be_public(sqlite_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(sqlite_db, sandbox, METRICS_PUBLIC=True) as api:
        answer = await api.client.get("/metrics", headers={"Authorization": ""})
        assert answer.status_code == 200
        assert "# HELP postpilot_passes_total Scheduler passes run." in answer.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=everything", "type"),
        ("window=2h", "window"),
        ("type=runs&limit=0", "limit"),
        ("scheduler=fastest", "scheduler"),
    ],
)
async def test_bad_parameters_are_named(
    sqlite_db: Database, sandbox: SandboxClient, query: str, field: str
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        answer = await api.client.get(f"/api/performance?{query}", headers=OPERATOR)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["details"][0]["field"] == f"query.{field}"


async def test_summary_shape_for_a_dashboard(sqlite_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        for window, points in (("1h", 60), ("24h", 96), ("7d", 168)):
            body = (
                await api.client.get(f"/api/performance?window={window}", headers=OPERATOR)
            ).json()
            assert body["window"] == window and body["monitoring"] is True
            assert set(body["schedulers"]) == {"reference", "optimized"}
            assert len(body["series"]["points"]["optimized"]) == points
            assert body["thresholds"]["error_rate"] == 0.05
            assert body["thresholds"]["processing_ms"] == 5000.0
            figures = body["schedulers"]["optimized"]
            for name in (
                "processing_ms",
                "error_rate",
                "success_rate",
                "db_statements_per_pass",
                "cache_hit_rate",
                "response_time_ms",
                "throughput_per_second",
                "lateness_ms",
                "db_connections_ratio",
            ):
                assert name in figures
        only = (
            await api.client.get("/api/performance?scheduler=reference", headers=OPERATOR)
        ).json()
        assert set(only["schedulers"]) == {"reference"}
        assert set(only["series"]["points"]) == {"reference"}
        compared = await api.client.get(
            "/api/performance?type=compare&scheduler=reference", headers=OPERATOR
        )
        assert compared.status_code == 200 and set(compared.json()["passes"]) == {
            "reference",
            "optimized",
        }


async def test_liveness_and_readiness(any_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(any_db, sandbox, HEALTH_HEARTBEAT_SECONDS=2) as api:
        assert (await api.client.get("/api/health")).json() == {"status": "ok"}
        assert (await api.client.get("/api/health/live")).status_code == 200

        no_worker = await api.client.get("/api/health/ready")
        assert no_worker.status_code == 503
        body = no_worker.json()
        assert body["checks"] == {
            "database": "ok",
            "schema": "ok",
            "worker": "no worker has sent a heartbeat and no cron pass has run",
        }
        assert body["info"]["schema_version"] == schema.head_revision()
        assert body["info"]["cache"] == "memory"

        stop = asyncio.Event()
        worker = asyncio.create_task(Worker(api.runtime).run(stop))
        try:

            async def is_ready() -> bool:
                return (await api.client.get("/api/health/ready")).status_code == 200

            await wait_until(is_ready, timeout=5, what="readiness with a worker")
            ready = await api.client.get("/api/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["info"]["workers_alive"] == 1
            assert (await api.client.get("/api/health?ready=true")).status_code == 200
        finally:
            stop.set()
            await worker
        stopped = await api.client.get("/api/health/ready")
        assert stopped.status_code == 503
        assert stopped.json()["checks"]["worker"].startswith("no worker has sent a heartbeat")

        async with any_db.engine.begin() as conn:  # a worker that went silent
            await heartbeats.beat(
                conn,
                worker_id="silent",
                hostname=socket.gethostname(),
                pid=os.getpid(),
                started_at=api.runtime.now() - timedelta(minutes=5),
                now=api.runtime.now() - timedelta(seconds=30),
            )
        silent = (await api.client.get("/api/health/ready")).json()
        assert silent["checks"]["worker"].startswith("last heartbeat 30 s ago (limit 2 s)")
        assert silent["info"]["workers_alive"] == 0

        # A cron-only deployment: no worker, but passes come from /api/cron.
        cron = await api.client.get("/api/cron/scheduler-optimized", headers=api.cron())
        assert cron.status_code == 200, cron.text
        ready = await api.client.get("/api/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["info"]["last_cron_pass_s"] < 5


async def test_readiness_fails_while_a_workers_pass_runs_past_its_bound(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        async with any_db.engine.begin() as conn:  # alive, but its pass no longer ends
            await heartbeats.beat(
                conn,
                worker_id="stuck-1",
                hostname=socket.gethostname(),
                pid=os.getpid(),
                started_at=api.runtime.now() - timedelta(minutes=5),
                now=api.runtime.now(),
                state=WorkerState.STALLED,
            )
        answer = await api.client.get("/api/health/ready")
        assert answer.status_code == 503
        assert (
            "the pass of worker stuck-1 has run past its bound" in answer.json()["checks"]["worker"]
        )


async def test_readiness_reports_an_unreachable_database(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        closed = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
        api.runtime.db = closed  # the database goes away under a running API
        try:
            answer = await api.client.get("/api/health/ready")
        finally:
            api.runtime.db = sqlite_db
            await closed.dispose()
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"].startswith("unreachable: ")
        assert (await api.client.get("/api/health/live")).status_code == 200


async def test_the_summary_gives_cold_start_and_steady_state_cache_rates_apart(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    # No warm-up time: the process's first pass is its cold start, every later one steady.
    async with api_server(sqlite_db, sandbox, ALERT_CACHE_WARMUP_SECONDS=0) as api:
        clock = Clock(api.runtime.monitor.started_at)
        monitor = api.runtime.monitor
        await monitor.record(synthetic_pass(clock, claimed=5, cache_hits=2, cache_misses=8))
        await monitor.record(synthetic_pass(clock, claimed=5, cache_hits=19, cache_misses=1))
        body = (await api.client.get("/api/performance", headers=OPERATOR)).json()
        optimized = body["schedulers"]["optimized"]
        assert optimized["cache_cold_start"] == {"hits": 2, "misses": 8, "hit_rate": 0.2}
        assert optimized["cache_steady_state"] == {"hits": 19, "misses": 1, "hit_rate": 0.95}
        assert optimized["cache_hit_rate"] == 0.7  # both phases together
        assert body["thresholds"]["cache_hit_rate_reads"] == "steady_state"
        compared = (await api.client.get("/api/performance?type=compare", headers=OPERATOR)).json()
        rows = {row["metric"]: row["optimized"] for row in compared["rows"]}
        assert rows["cache_cold_start.hit_rate"] == 0.2
        assert rows["cache_steady_state.hit_rate"] == 0.95
        (_, runs) = (
            (await api.client.get("/api/performance?type=runs", headers=OPERATOR)).json().popitem()
        )
        assert sorted(run["cache_phase"] for run in runs) == ["cold_start", "steady_state"]
