"""`postpilot migration report`: the migration's metric tables and success criteria, measured."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from postpilot.cli import common, usage
from postpilot.cli.compare import run_with_progress
from postpilot.core import knobs
from postpilot.core.durations import InvalidDuration, parse_duration
from postpilot.runtime import open_database
from postpilot.settings import Settings
from postpilot.tools import compare as comparing
from postpilot.tools import report as reporting
from postpilot.tools.errors import db_error_line

app = usage.group("The migration's report, from measured data.")

MAX_WINDOW = timedelta(days=366)


@app.command()
def report(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the Markdown here (default: print it)."
    ),
    window: str = typer.Option(
        "24h", help="How far back to read stored pass figures: 1h, 24h, 7d."
    ),
    from_compare: bool = typer.Option(
        False, "--from-compare", help="Also run `postpilot compare` now and use its figures."
    ),
    limit: int = typer.Option(
        50,
        min=knobs.BATCH_SIZE.low,
        max=knobs.BATCH_SIZE.high,
        help="With --from-compare: most deliveries.",
    ),
    concurrency: int = typer.Option(
        knobs.CONCURRENCY.default,
        min=knobs.CONCURRENCY.low,
        max=knobs.CONCURRENCY.high,
        help="With --from-compare.",
    ),
    latency_ms: float = typer.Option(50.0, min=0, max=10_000, help="With --from-compare."),
) -> None:
    """Write the migration report: during-migration targets (current, met or not), the
    before/after table (reference vs optimized) and the success criteria, each with its source."""
    try:
        span = timedelta(seconds=parse_duration(window))
    except InvalidDuration as exc:
        common.fail(str(exc))
    if not timedelta(seconds=1) <= span <= MAX_WINDOW:
        common.fail("--window must be between 1s and 366d")
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        common.fail(f"cannot write {output}: give a file in an existing directory")
    settings = common.settings(LOG_LEVEL="WARNING")
    comparison: comparing.Comparison | None = None
    try:
        if from_compare:
            comparison = _compare(
                settings, limit=limit, concurrency=concurrency, latency_ms=latency_ms
            )
        data = common.run(_gather(settings, span, comparison))
    except SQLAlchemyError as exc:
        common.fail(db_error_line(exc))
    markdown = reporting.render(data)
    if output is None:
        common.console.print(markdown, markup=False, highlight=False)
        return
    with tempfile.NamedTemporaryFile(
        "w", dir=output.parent, prefix=f".{output.name}.", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(markdown)
    os.replace(handle.name, output)
    met = [c for c in data.criteria() if c.met]
    common.console.print(
        f"wrote {output}: {len(met)} of {len(data.criteria())} success criteria met"
        + (f"; {len(data.missing)} gaps listed under Missing" if data.missing else ""),
        highlight=False,
    )


async def _gather(
    settings: Settings, span: timedelta, comparison: comparing.Comparison | None
) -> reporting.ReportData:
    async with open_database(settings) as db:
        return await reporting.gather(
            db, settings, now=datetime.now(UTC), window=span, comparison=comparison
        )


def _compare(
    settings: Settings, *, limit: int, concurrency: int, latency_ms: float
) -> comparing.Comparison:
    return run_with_progress(settings, limit=limit, concurrency=concurrency, latency_ms=latency_ms)
