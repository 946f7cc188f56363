"""Pure figures: one pass's figures, windowed summaries, series and the comparison, each checked
against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postpilot.monitor import summary
from postpilot.monitor.figures import PassFigures
from tests.clock import Clock
from tests.monitor.support import synthetic_pass

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _figures(**values: object) -> PassFigures:
    report = synthetic_pass(Clock(T0), **values)
    return PassFigures.from_report(report, max_connections=20)


def test_one_pass_figures_from_its_report() -> None:
    figures = _figures(
        claimed=10,
        published=7,
        failed=2,
        retried=1,
        duration_ms=400.0,
        db_statements=3,
        cache_hits=15,
        cache_misses=5,
        peak_db_connections=2,
        processing_ms=[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0],
        lateness_ms=[100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0],
    )
    assert figures.processing_count == 10 and figures.processing_total_ms == 550.0
    assert figures.processing_p50_ms == pytest.approx(55.0)
    assert figures.processing_p95_ms == pytest.approx(95.5)
    assert figures.processing_p99_ms == pytest.approx(99.1)
    assert figures.lateness_p50_ms == pytest.approx(400.0)
    assert figures.lateness_p99_ms == pytest.approx(694.0)
    assert (figures.outcomes, figures.errors) == (10, 3)
    public = figures.public()
    assert "processing_samples" not in public
    assert public["cache_hit_rate"] == 0.75 and public["db_connections_ratio"] == 0.1


def test_summary_of_a_known_workload() -> None:
    clock = Clock(T0)
    first = PassFigures.from_report(
        synthetic_pass(
            clock,
            claimed=10,
            published=8,
            failed=1,
            unknown=1,
            duration_ms=500.0,
            db_statements=3,
            cache_hits=6,
            cache_misses=4,
            peak_db_connections=4,
            processing_ms=[100.0] * 10,
            lateness_ms=[1000.0] * 8,
        ),
        max_connections=20,
    )
    clock.advance(minutes=10)
    second = PassFigures.from_report(
        synthetic_pass(
            clock,
            claimed=10,
            published=6,
            retried=2,
            rate_limited=2,
            duration_ms=1500.0,
            db_statements=5,
            cache_hits=10,
            cache_misses=0,
            peak_db_connections=10,
            processing_ms=[300.0] * 10,
            lateness_ms=[3000.0] * 6,
        ),
        max_connections=20,
    )
    result = summary.summarize("optimized", [second, first], window=timedelta(hours=1))
    assert result.passes == 2 and result.claimed == 20 and result.outcomes == 20
    assert result.published == 14
    assert result.error_rate == pytest.approx(4 / 20)  # failed 1 + unknown 1 + retried 2
    assert result.success_rate == pytest.approx(14 / 20)
    assert result.processing_ms.mean == pytest.approx(200.0)
    assert result.processing_ms.p50 == pytest.approx(200.0)  # halfway between 100 and 300
    assert result.processing_ms.p95 == pytest.approx(300.0)
    assert result.response_time_ms.mean == pytest.approx(1000.0)
    assert result.db_statements_per_pass == pytest.approx(4.0)
    assert result.db_statements_per_delivery == pytest.approx(8 / 20)
    assert result.cache_hit_rate == pytest.approx(16 / 20)
    assert result.busy_seconds == pytest.approx(2.0)
    assert result.throughput_per_second == pytest.approx(10.0)  # 20 outcomes in 2 s of work
    assert result.published_per_minute == pytest.approx(round(14 / 60, 3))
    assert result.lateness_ms.count == 14
    assert result.lateness_ms.p50 == pytest.approx(1000.0)  # 8 at 1 s, 6 at 3 s
    assert result.lateness_ms.p99 == pytest.approx(3000.0)
    assert (result.db_connections_peak, result.db_connections_max) == (10, 20)
    assert result.db_connections_ratio == pytest.approx(0.5)
    assert (result.first_pass_at, result.last_pass_at) == (T0, T0 + timedelta(minutes=10))


def test_every_scheduler_is_present_even_without_passes() -> None:
    both = summary.by_scheduler([], window=timedelta(hours=1))
    assert set(both) == {"reference", "optimized"}
    empty = both["reference"]
    assert empty.passes == 0 and empty.error_rate is None and empty.processing_ms.p95 is None


def test_series_has_one_point_per_bucket_and_places_passes() -> None:
    clock = Clock(T0)
    passes = []
    for minute, published in ((0, 1), (0, 2), (5, 3), (59, 4)):
        clock.at = T0 + timedelta(minutes=minute, seconds=30)
        passes.append(
            PassFigures.from_report(
                synthetic_pass(clock, claimed=published, published=published, duration_ms=10.0),
                max_connections=20,
            )
        )
    points = summary.series(
        passes, start=T0, end=T0 + timedelta(hours=1), bucket=timedelta(minutes=1)
    )
    optimized = points["optimized"]
    assert len(optimized) == 60 and len(points["reference"]) == 60
    assert optimized[0]["published"] == 3 and optimized[0]["passes"] == 2
    assert optimized[5]["published"] == 3 and optimized[59]["published"] == 4
    assert optimized[1]["published"] == 0 and optimized[1]["error_rate"] is None
    assert optimized[0]["at"] == T0.isoformat()


def test_compare_reads_like_the_before_after_table() -> None:
    clock = Clock(T0)
    reference = summary.summarize(
        "reference",
        [
            PassFigures.from_report(
                synthetic_pass(
                    clock,
                    scheduler="reference",
                    claimed=10,
                    published=9,
                    failed=1,
                    duration_ms=10_000.0,
                    db_statements=50,
                    cache_hits=0,
                    cache_misses=10,
                    processing_ms=[1000.0] * 10,
                ),
                max_connections=20,
            )
        ],
    )
    optimized = summary.summarize(
        "optimized",
        [
            PassFigures.from_report(
                synthetic_pass(
                    clock,
                    claimed=10,
                    published=10,
                    duration_ms=500.0,
                    db_statements=3,
                    cache_hits=9,
                    cache_misses=1,
                    processing_ms=[200.0] * 10,
                ),
                max_connections=20,
            )
        ],
    )
    rows = {row.metric: row for row in summary.compare(reference, optimized)}
    processing = rows["processing_ms.mean"]
    assert (processing.reference, processing.optimized) == (1000.0, 200.0)
    assert processing.change_pct == pytest.approx(-80.0)
    assert processing.improved and processing.improvement == "5.0x lower"
    queries = rows["db_statements_per_pass"]
    assert queries.improvement == "16.7x lower" and queries.improved
    errors = rows["error_rate"]
    assert (errors.reference, errors.optimized) == (0.1, 0.0)
    assert errors.improved and errors.improvement == "-10.0 pp"
    cache = rows["cache_hit_rate"]
    assert cache.improved and cache.improvement == "+90.0 pp"
    throughput = rows["throughput_per_second"]
    assert (throughput.reference, throughput.optimized) == (1.0, 20.0)
    assert throughput.improvement == "20.0x higher" and throughput.improved
    lateness = rows["lateness_ms.p99"]
    assert lateness.reference is None and lateness.improvement is None


def test_compare_marks_a_regression() -> None:
    clock = Clock(T0)

    def one(scheduler: str, duration: float) -> summary.SchedulerSummary:
        figures = PassFigures.from_report(
            synthetic_pass(
                clock, scheduler=scheduler, claimed=1, published=1, duration_ms=duration
            ),
            max_connections=20,
        )
        return summary.summarize(scheduler, [figures])

    row = {r.metric: r for r in summary.compare(one("reference", 100), one("optimized", 125))}[
        "response_time_ms.mean"
    ]
    assert row.improved is False and row.improvement == "25.0 % higher (worse)"
