"""`postpilot compare`: the two schedulers on copies of the same due workload, side by side."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from postpilot.cli import common
from postpilot.core import knobs
from postpilot.settings import Settings
from postpilot.tools import compare as comparing
from postpilot.tools.errors import db_error_line

STAGES = {
    "copy": "copy the due workload",
    "reference": "reference pass",
    "optimized": "optimized pass",
}


def compare(
    limit: int = typer.Option(
        50,
        "--limit",
        min=knobs.BATCH_SIZE.low,
        max=knobs.BATCH_SIZE.high,
        help="Most due deliveries to take.",
    ),
    concurrency: int = typer.Option(
        knobs.CONCURRENCY.default,
        "--concurrency",
        min=knobs.CONCURRENCY.low,
        max=knobs.CONCURRENCY.high,
        help="Parallel publishes (optimized).",
    ),
    latency_ms: float = typer.Option(
        50.0,
        "--latency-ms",
        min=0,
        max=10_000,
        help="Platform latency the sandbox adds to every request.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Run the reference and the optimized scheduler over identical copies of the due workload
    against a sandbox started for the purpose, and compare speed, cost and outcomes. The
    database itself is only read."""
    settings = common.settings(LOG_LEVEL="WARNING")
    try:
        result = run_with_progress(
            settings, limit=limit, concurrency=concurrency, latency_ms=latency_ms
        )
    except SQLAlchemyError as exc:
        common.fail(db_error_line(exc))
    if as_json:
        common.console.print_json(json.dumps(result.to_json(), default=str))
        return
    render(result)


def run_with_progress(
    settings: Settings, *, limit: int, concurrency: int, latency_ms: float
) -> comparing.Comparison:
    """The comparison, with a progress bar per stage on stderr (shared with the report)."""
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=common.errors,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return common.run(
            comparing.compare(
                settings,
                limit=limit,
                concurrency=concurrency,
                latency_ms=latency_ms,
                progress=progress,
            )
        )


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}" + (f" {unit}" if unit else "")
    return f"{value:,.2f}" + (f" {unit}" if unit else "")


def _improvement(row: comparing.MetricRow) -> str:
    value = row.improvement
    if value is None:
        return "n/a"
    if abs(value) < 0.05:
        return "same"
    colour = "green" if value > 0 else "red"
    if row.points:
        return f"[{colour}]{value:+.1f} pts[/{colour}]"
    word = "less" if row.better == "lower" else "more"
    if value < 0:
        word = "more" if row.better == "lower" else "less"
    return f"[{colour}]{abs(value):.1f} % {word}[/{colour}]"


def render(result: comparing.Comparison) -> None:
    say = common.console.print
    table = Table(
        title=(
            f"reference vs optimized on {result.workload.get('deliveries', 0)} due deliveries "
            f"({result.dialect}, concurrency {result.concurrency}, "
            f"sandbox latency {result.latency_ms:g} ms)"
        ),
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("reference", justify="right")
    table.add_column("optimized", justify="right")
    table.add_column("improvement", justify="right")
    for row in result.rows():
        table.add_row(
            row.label,
            _number(row.reference, row.unit),
            _number(row.optimized, row.unit),
            _improvement(row),
        )
    say(table)
    if result.identical:
        say("[green]identical outcomes[/green]: every delivery ended the same way in both runs")
    else:
        diff = Table(title="outcome differences", title_justify="left")
        for column in ("delivery", "account", "field", "reference", "optimized"):
            diff.add_column(column)
        for d in result.differences:
            diff.add_row(
                d.delivery_id,
                f"{d.platform} {d.handle}",
                d.field,
                _show(d.reference),
                _show(d.optimized),
            )
        say(
            f"[red]outcomes differ[/red] for {len({d.delivery_id for d in result.differences})} "
            "deliveries:"
        )
        say(diff)
    for note in result.notes:
        say(f"- {note}", highlight=False)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
