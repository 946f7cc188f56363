"""`postpilot compare`: both schedulers on copies of the same due workload, the source only read,
identical outcomes listed delivery by delivery, and honest figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from postpilot.crypto import CredentialCipher
from postpilot.store import posts
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity, Delivery
from postpilot.tools import compare as comparing
from postpilot.tools import demo
from tests.helpers import TEST_SECRET_KEY
from tests.migration.conftest import assert_one_line_error, leftover_compare_databases, run_cli

# compare runs each scheduler in a child process against a sandbox process of its own.
pytestmark = pytest.mark.acceptance


async def _source_state(db: Database) -> tuple[list[tuple[object, ...]], int]:
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    Delivery.id,
                    Delivery.status,
                    Delivery.attempts,
                    Delivery.due_at,
                    Delivery.claimed_by,
                ).order_by(Delivery.id)
            )
        ).all()
        activity = (await conn.execute(select(func.count()).select_from(Activity))).scalar_one()
    return [tuple(row) for row in rows], int(activity)


@pytest.mark.slow
async def test_compare_runs_both_on_copies_with_identical_outcomes(any_db: Database) -> None:
    now = datetime.now(UTC)
    seeded = await demo.seed(
        any_db,
        CredentialCipher(TEST_SECRET_KEY),
        sandbox_url="http://127.0.0.1:9",  # compare points the copies at its own sandbox
        count=8,
        start=now - timedelta(seconds=5),
        spread=timedelta(0),
        now=now,
    )
    # One post each scheduler must fail the same way: too long for Mastodon.
    async with any_db.transaction() as session:
        mastodon = await session.scalar(select(Account).where(Account.platform == "mastodon"))
        await posts.create_post(
            session,
            workspace_id=seeded.workspace_id,
            text_="x" * 600,
            media_urls=[],
            overrides={},
            scheduled_at=now - timedelta(seconds=5),
            timezone="UTC",
            accounts=[mastodon],
            source="demo",
            now=now,
        )
    # Not due yet: stays out of the workload.
    async with any_db.transaction() as session:
        await posts.create_post(
            session,
            workspace_id=seeded.workspace_id,
            text_="later",
            media_urls=[],
            overrides={},
            scheduled_at=now + timedelta(hours=1),
            timezone="UTC",
            accounts=[mastodon],
            now=now,
        )
    due = seeded.deliveries + 1
    before = await _source_state(any_db)

    result = await run_cli(
        any_db, "compare", "--limit", "100", "--concurrency", "4", "--latency-ms", "0", "--json"
    )
    assert result.exit_code == 0, result.output + result.stderr
    found = json.loads(result.stdout)

    assert await _source_state(any_db) == before, "the source database is only read"
    if not any_db.is_sqlite:
        assert await leftover_compare_databases() == []

    assert found["workload"]["deliveries"] == due
    assert found["identical_outcomes"] is True, found["differences"]
    assert found["differences"] == []
    reference, optimized = found["runs"]["reference"], found["runs"]["optimized"]
    for run in (reference, optimized):
        assert run["claimed"] == due
        assert (run["published"], run["failed"]) == (due - 1, 1)
        assert run["sandbox_posts"] == due - 1, "each published delivery reached the sandbox once"
        assert run["cpu_ms"] > 0 and run["peak_rss_bytes"] > run["baseline_rss_bytes"] * 0.5
        assert run["error_rate"] == pytest.approx(1 / due)
    assert optimized["db_statements"] < reference["db_statements"]
    outcomes = found["outcomes"]["optimized"]
    assert len(outcomes) == due
    failed = [o for o in outcomes.values() if o["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["published_text"] is None
    published = [o for o in outcomes.values() if o["status"] == "published"]
    assert all(o["published_text"] and o["events"] == ["published"] for o in published)
    assert sum(o["media"] for o in published) > 0

    metrics = {m["metric"]: m for m in found["metrics"]}
    assert set(metrics) >= {
        "per_delivery_ms",
        "db_statements",
        "throughput",
        "error_rate",
        "success_rate",
        "cpu_ms",
        "peak_rss_mb",
    }
    statements = metrics["db_statements"]
    assert statements["improvement"] == pytest.approx(
        (reference["db_statements"] - optimized["db_statements"]) / reference["db_statements"] * 100
    )
    assert metrics["success_rate"]["improvement"] == 0
    assert any("only read" in note for note in found["notes"])

    if not any_db.is_sqlite:
        return  # the table is the same code on both: render it once
    table = await run_cli(any_db, "compare", "--limit", "3", "--latency-ms", "0")
    assert table.exit_code == 0, table.output + table.stderr
    assert "reference vs optimized on 3 due deliveries" in table.stdout
    assert "identical outcomes" in table.stdout


async def test_nothing_due_is_one_line(any_db: Database) -> None:
    result = await run_cli(any_db, "compare")
    assert_one_line_error(result, "nothing is due")


async def test_bad_options_are_refused_before_anything_runs(sqlite_db: Database) -> None:
    for args in (["--limit", "0"], ["--concurrency", "abc"], ["--latency-ms", "-1"]):
        result = await run_cli(sqlite_db, "compare", *args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output + result.stderr


def _outcome(delivery_id: str, **changes: object) -> comparing.DeliveryOutcome:
    values: dict[str, object] = {
        "delivery_id": delivery_id,
        "platform": "mastodon",
        "handle": "@a",
        "status": "published",
        "attempts": 1,
        "last_error": None,
        "events": ("published",),
        "published_text": "hello",
        "media": 0,
    }
    values.update(changes)
    return comparing.DeliveryOutcome(**values)  # type: ignore[arg-type]


def test_differences_are_listed_delivery_by_delivery() -> None:
    reference = {"a": _outcome("a"), "b": _outcome("b"), "c": _outcome("c")}
    optimized = {
        "a": _outcome("a"),
        "b": _outcome(
            "b",
            status="scheduled",
            attempts=1,
            last_error="boom",
            events=("retried",),
            published_text=None,
            media=None,
        ),
    }
    found = comparing.differences(reference, optimized, ["a", "b", "c"])
    assert [(d.delivery_id, d.field) for d in found] == [
        ("b", "status"),
        ("b", "last_error"),
        ("b", "events"),
        ("b", "published_text"),
        ("b", "media"),
        ("c", "present"),
    ]
    assert found[2].reference == ["published"] and found[2].optimized == ["retried"]
    assert (found[-1].reference, found[-1].optimized) == (True, False)


def test_improvement_is_positive_when_better() -> None:
    lower = comparing.MetricRow("x", "x", "ms", 200.0, 50.0, "lower")
    higher = comparing.MetricRow("y", "y", "", 10.0, 40.0, "higher")
    worse = comparing.MetricRow("z", "z", "ms", 100.0, 150.0, "lower")
    rate = comparing.MetricRow("r", "r", "%", 0.90, 0.99, "higher", points=True)
    error = comparing.MetricRow("e", "e", "%", 0.10, 0.01, "lower", points=True)
    zero = comparing.MetricRow("n", "n", "", 0.0, 5.0, "lower")
    assert lower.improvement == 75 and higher.improvement == 300
    assert worse.improvement == -50
    assert rate.improvement == pytest.approx(9) and error.improvement == pytest.approx(9)
    assert zero.improvement is None
