"""`postpilot migration report`: the plan's tables and criteria from the monitor's stored pass
figures or a fresh comparison, with every source named and every gap listed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postpilot.crypto import CredentialCipher
from postpilot.monitor import store as monitor_store
from postpilot.monitor.figures import PassFigures
from postpilot.store.database import Database
from postpilot.tools import demo
from tests.helpers import TEST_SECRET_KEY
from tests.migration.conftest import assert_one_line_error, run_cli


def _pass(
    scheduler: str,
    *,
    at: datetime,
    claimed: int,
    job_ms: float,
    duration_ms: float,
    statements: int,
    hits: int,
    misses: int,
    failed: int = 0,
    phase: str = "steady_state",
) -> PassFigures:
    samples = [job_ms] * claimed
    return PassFigures(
        pass_id=str(uuid.uuid4()),
        scheduler=scheduler,
        started_at=at,
        duration_ms=duration_ms,
        batch_limit=20,
        concurrency=5,
        claimed=claimed,
        published=claimed - failed,
        failed=failed,
        processing_count=claimed,
        processing_total_ms=sum(samples),
        processing_samples=samples,
        db_statements=statements,
        cache_hits=hits,
        cache_misses=misses,
        cache_phase=phase,
        max_db_connections=20,
    )


async def _store(db: Database, figures: list[PassFigures]) -> None:
    async with db.engine.begin() as conn:
        for item in figures:
            await monitor_store.insert_pass(conn, item)


def _row(markdown: str, label: str) -> list[str]:
    for line in markdown.splitlines():
        if line.startswith(f"| {label} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no row {label!r} in\n{markdown}")


async def test_report_from_the_monitors_pass_figures(any_db: Database, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    # Ten reference passes of one delivery each; two optimized passes of five, the first one
    # its process's cold start (3 hits of 10), the second steady (9 of 10).
    await _store(
        any_db,
        [
            _pass(
                "reference",
                at=now - timedelta(minutes=30 - i),
                claimed=1,
                job_ms=100,
                duration_ms=120,
                statements=5,
                hits=0,
                misses=1,
            )
            for i in range(10)
        ]
        + [
            _pass(
                "optimized",
                at=now - timedelta(minutes=5 - i),
                claimed=5,
                job_ms=110,
                duration_ms=150,
                statements=4,
                hits=3 if i == 0 else 9,
                misses=7 if i == 0 else 1,
                phase="cold_start" if i == 0 else "steady_state",
            )
            for i in range(2)
        ]
        # Outside the window: ignored.
        + [
            _pass(
                "optimized",
                at=now - timedelta(hours=3),
                claimed=5,
                job_ms=9000,
                duration_ms=9000,
                statements=50,
                hits=0,
                misses=5,
                failed=5,
            )
        ],
    )
    output = tmp_path / "report.md"
    result = await run_cli(any_db, "migration", "report", "--window", "1h", "--output", str(output))
    assert result.exit_code == 0, result.output + result.stderr
    assert f"wrote {output}: 4 of 4 success criteria met" in result.stdout
    markdown = output.read_text()

    assert "Current = monitor: 12 stored passes in the last 1h (optimized)." in markdown
    assert _row(markdown, "Processing time per job (mean)")[1:] == ["< 200 ms", "110.0 ms", "met"]
    assert _row(markdown, "Error rate")[1:] == ["< 5 %", "0.0 %", "met"]
    assert _row(markdown, "Success rate")[1:] == ["> 95 %", "100.0 %", "met"]
    assert _row(markdown, "DB queries per batch")[1:] == ["< 5", "4", "met"]
    assert _row(markdown, "Cache hit rate (steady state)")[1:] == ["> 70 %", "90.0 %", "met"]
    assert _row(markdown, "Response time (pass duration, p95)")[1:] == ["< 5 s", "150.0 ms", "met"]

    # Before: 1200 ms of passes for 10 deliveries; after: 300 ms for 10.
    assert _row(markdown, "Average processing time (pass time per delivery)")[1:] == [
        "120.0 ms",
        "30.0 ms",
        "75.0 % lower",
    ]
    assert _row(markdown, "DB queries per delivery")[1:] == ["5", "0.8", "84.0 % lower"]
    assert _row(markdown, "Processing time cut > 50 %")[1:] == ["75.0 % cut", "met"]
    assert _row(markdown, "Processing time cut > 70 %")[1:] == ["75.0 % cut", "met"]
    assert _row(markdown, "DB queries cut > 80 %")[1:] == ["84.0 % cut", "met"]
    assert _row(markdown, "Cache hit rate (cold start)")[1:] == ["not measured", "30.0 %", "n/a"]
    assert _row(markdown, "Cache hit rate > 85 % (optimized, steady state)")[1:] == [
        "90.0 %",
        "met",
    ]
    assert "Before and after come from different workloads" in markdown
    assert "Monitor, reference: 10 passes, 10 outcomes" in markdown


async def test_report_without_data_says_what_is_missing(any_db: Database) -> None:
    result = await run_cli(any_db, "migration", "report")
    assert result.exit_code == 0, result.output + result.stderr
    markdown = result.stdout
    assert _row(markdown, "Error rate")[1:] == ["< 5 %", "not measured", "n/a (not measured)"]
    assert _row(markdown, "Processing time cut > 50 %")[1:] == [
        "not measured",
        "n/a (not measured)",
    ]
    assert "## Missing" in markdown
    assert "The monitor stored no reference passes" in markdown
    assert "add --from-compare" in markdown


async def test_report_bad_input_is_one_line(sqlite_db: Database, tmp_path: Path) -> None:
    assert_one_line_error(
        await run_cli(sqlite_db, "migration", "report", "--window", "soon"), "not a duration"
    )
    assert_one_line_error(
        await run_cli(sqlite_db, "migration", "report", "--window", "0s"), "--window must be"
    )
    assert_one_line_error(
        await run_cli(sqlite_db, "migration", "report", "-o", str(tmp_path / "no" / "r.md")),
        "cannot write",
    )
    assert not (tmp_path / "no").exists()


@pytest.mark.slow
@pytest.mark.acceptance  # the comparison runs child processes and a sandbox process
async def test_report_from_a_fresh_comparison(sqlite_db: Database, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    await demo.seed(
        sqlite_db,
        CredentialCipher(TEST_SECRET_KEY),
        sandbox_url="http://127.0.0.1:9",
        count=6,
        start=now - timedelta(seconds=1),
        spread=timedelta(0),
        now=now,
    )
    output = tmp_path / "report.md"
    result = await run_cli(
        sqlite_db,
        "migration",
        "report",
        "--from-compare",
        "--latency-ms",
        "20",
        "--concurrency",
        "6",
        "-o",
        str(output),
    )
    assert result.exit_code == 0, result.output + result.stderr
    markdown = output.read_text()
    assert (
        "Fresh comparison: 12 due deliveries, concurrency 6, sandbox latency 20 ms; "
        "outcomes identical" in markdown
    )
    assert "Before (reference) = compare: one pass each over the same 12 due deliveries" in (
        markdown
    )
    assert "Current = compare:" in markdown  # no monitor figures: the comparison's optimized run
    total = _row(markdown, "Total DB queries")
    assert total[1] != "not measured" and total[3].endswith("% lower")
    assert _row(markdown, "DB queries cut > 80 %")[2] == "met"
    assert "Comparison (`postpilot compare`): Workload: the 12 deliveries" in markdown
