"""Which cache hit rate `compare` and the migration report show: a comparison's run is one pass
in a fresh process, so a cold start; the report's target and criterion read the steady state,
from the monitor when the comparison cannot give it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from postpilot.tools import compare, report

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def run(scheduler: str, *, hits: int, misses: int) -> compare.RunMetrics:
    child: dict[str, Any] = {
        "claimed": 10,
        "published": 10,
        "failed": 0,
        "retried": 0,
        "rate_limited": 0,
        "unknown": 0,
        "duration_ms": 100.0,
        "db_statements": 10,
        "processing_ms": [10.0] * 10,
        "cache_hits": hits,
        "cache_misses": misses,
        "cpu_user_ms": 1.0,
        "cpu_system_ms": 1.0,
        "peak_rss_bytes": 1,
        "baseline_rss_bytes": 1,
    }
    return compare.RunMetrics.from_child(scheduler, child, sandbox_posts=10)


def test_a_comparison_reports_its_cache_rate_as_a_cold_start() -> None:
    reference, optimized = run("reference", hits=0, misses=10), run("optimized", hits=6, misses=4)
    (row,) = [r for r in compare.metric_rows(reference, optimized) if r.key == "cache_hit_rate"]
    assert (row.label, row.optimized) == ("cache hit rate (cold start)", 0.6)
    assert optimized.to_json()["cache_phase"] == "cold_start"


def figures(source: str, *, cold: float | None, steady: float | None) -> report.Figures:
    found = report.Figures.from_run(run("optimized", hits=6, misses=4), source)
    return dataclasses.replace(found, cache_cold_start=cold, cache_steady_state=steady)


def data(**fields: Any) -> report.ReportData:
    return report.ReportData(
        generated_at=NOW,
        database="sqlite://",
        window=timedelta(hours=1),
        active="optimized",
        monitoring_enabled=True,
        comparison=None,
        **fields,
    )


def test_the_report_reads_the_steady_state_rate_from_the_monitor_beside_a_comparison() -> None:
    compared = report.Figures.from_run(run("optimized", hits=6, misses=4), "compare")
    assert (compared.cache_cold_start, compared.cache_steady_state) == (0.6, None)
    monitored = figures("monitor", cold=0.3, steady=0.9)
    criterion = data(monitor={"optimized": monitored}, after=compared).criteria()[-1]
    assert criterion.label == "Cache hit rate > 85 % (optimized, steady state)"
    assert (criterion.value, criterion.source, criterion.met) == (90.0, "monitor", True)


def test_without_steady_state_passes_the_cache_criterion_is_not_measured() -> None:
    compared = report.Figures.from_run(run("optimized", hits=10, misses=0), "compare")
    criterion = data(monitor={"optimized": None}, after=compared).criteria()[-1]
    assert (criterion.value, criterion.met) == (None, None)
