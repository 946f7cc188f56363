"""Keeps the benchmark scripts working: the main scenario at its smoke size, end to end (sandbox
process, child processes, fresh databases). Asserts structure and exactly-once, never seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import run

pytestmark = pytest.mark.acceptance  # the benchmark runs the sandbox and child processes

SCHEDULER_FIELDS = (
    "wall_s",
    "deliveries_per_s",
    "processing_p50_ms",
    "processing_p95_ms",
    "processing_p99_ms",
    "db_statements",
    "statements_per_pass_max",
    "cache_hit_rate",
    "cpu_s",
    "peak_rss_mb",
    "sandbox_cpu_s",
)


def smoke(tmp_path: Path, db: str) -> dict[str, Any]:
    path = tmp_path / "result.json"
    run.main(["--scenario", "plan", "--smoke", "--db", db, "--output", str(path)])
    saved = json.loads(path.read_text())
    assert set(saved["machine"]) >= {"cores", "memory_gib", "postgresql", "python"}
    assert "### plan" in saved["scenarios"]["plan"]["markdown"]
    return dict(saved["scenarios"]["plan"]["databases"][db])


def assert_exactly_once(result: dict[str, Any]) -> None:
    runs, summary = result["runs"], result["summary"]
    assert set(runs) == {"reference", "optimized", "bare"}
    for mode in ("reference", "optimized"):
        (one,) = runs[mode]
        expected = one["expected"]
        # Every delivery published, once, and the sandbox received each exactly once.
        assert one["check"]["statuses"] == {"published": expected}, one["check"]
        assert one["check"]["sandbox_records"] == expected
        assert one["check"]["duplicates"] == 0
        assert one["check"]["exactly_once"] is True
        assert one["published"] == expected
        for field in SCHEDULER_FIELDS:
            assert one[field] is not None, field
        assert summary[mode]["exactly_once_all_runs"] is True
    (bare,) = runs["bare"]
    assert bare["requests"] == bare["expected"]
    assert bare["check"]["sandbox_records"] == bare["published"]
    assert bare["check"]["duplicates"] == 0
    assert sum(bare["statuses"].values()) == bare["requests"]
    assert set(summary["ratios"]) >= {
        "throughput_optimized_over_reference",
        "throughput_optimized_over_bare",
        "statements_per_delivery_optimized_over_reference",
    }


@pytest.mark.slow
def test_plan_smoke_on_sqlite(tmp_path: Path) -> None:
    assert_exactly_once(smoke(tmp_path, "sqlite"))


@pytest.mark.slow
@pytest.mark.postgres
def test_plan_smoke_on_postgresql(tmp_path: Path) -> None:
    assert_exactly_once(smoke(tmp_path, "postgresql"))


@pytest.mark.slow
@pytest.mark.postgres
def test_peers_smoke_counts_every_mode_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "peers.json"
    run.main(["--scenario", "peers", "--smoke", "--output", str(path)])
    result = json.loads(path.read_text())["scenarios"]["peers"]
    assert set(result["runs"]) == {"optimized", "procrastinate", "bare", "bare_aiohttp"}
    for mode, (one,) in result["runs"].items():
        assert one["published"] == one["expected"], mode
        assert one["check"]["sandbox_records"] == one["expected"], mode
        assert one["check"]["duplicates"] == 0 and one["check"]["exactly_once"] is True, mode
    assert result["summary"]["ratios"]["optimized_over_procrastinate"] is not None
    assert "### peers" in result["markdown"]


def test_client_smoke_measures_every_candidate(tmp_path: Path) -> None:
    path = tmp_path / "client.json"
    run.main(["--scenario", "client", "--smoke", "-n", "20", "--output", str(path)])
    result = json.loads(path.read_text())["scenarios"]["client"]
    assert len(result["summary"]) == 2 * len(result["params"]["candidates"])
    for key, (one,) in result["runs"].items():
        assert one["statuses"] == {"200": 20}, key
        assert one["sandbox_records"] == 20 + one["concurrency"], key  # warm-up included
        assert one["cpu_ms_per_request"] > 0 and one["sandbox_cpu_ms_per_request"] >= 0, key
