"""`postpilot scheduler`: which scheduler the workers run, and with which knobs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from rich.table import Table

from postpilot.cli import common, usage
from postpilot.core import knobs
from postpilot.core.durations import format_duration, parse_duration
from postpilot.errors import InvalidValue
from postpilot.runtime import open_database
from postpilot.scheduler import control
from postpilot.settings import Settings
from postpilot.store.database import Database

app = usage.group("Switch the active scheduler, tune it at run time, and see who changed what.")

T = TypeVar("T")
ACTOR_HELP = "Who is making the change (default: user@host)."


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_database(settings) as db:
            return await work(db)

    return common.run(go())


def _print_changes(changes: list[control.ChangeRecord], as_json: bool) -> None:
    if as_json:
        common.console.print_json(json.dumps({"changes": [c.to_json() for c in changes]}))
        return
    if not changes:
        common.console.print("nothing changed: the settings already had those values")
        return
    for change in changes:
        common.console.print(
            f"{change.setting}: {change.old_value or 'default'} -> "
            f"{change.new_value or 'default'} (by {change.actor})",
            highlight=False,
        )
    common.console.print("workers follow at their next pass")


@app.command()
def use(
    scheduler: str = typer.Argument(..., help=" or ".join(knobs.SchedulerKind), show_default=False),
    actor: str | None = typer.Option(None, help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the recorded changes as JSON."),
) -> None:
    """Make SCHEDULER the one every worker runs from its next pass (switch or roll back)."""
    try:
        kind = control.check_scheduler(scheduler)
        who = control.check_actor(actor if actor is not None else control.default_actor())
    except InvalidValue as exc:
        common.fail(str(exc))
    settings = common.settings()
    changes = _with_db(
        settings,
        lambda db: control.use(db, scheduler=kind, actor=who, now=datetime.now(UTC)),
    )
    _print_changes(changes, as_json)


@app.command()
def tune(
    concurrency: int | None = typer.Option(None, help=knobs.CONCURRENCY.help),
    batch_size: int | None = typer.Option(None, help=knobs.BATCH_SIZE.help),
    interval: str | None = typer.Option(None, help=knobs.INTERVAL.help),
    reset: bool = typer.Option(False, "--reset", help="Back to the defaults from the settings."),
    actor: str | None = typer.Option(None, help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the recorded changes as JSON."),
) -> None:
    """Change the knobs at run time (e.g. the partial rollback: --concurrency 1 --batch-size 5)."""
    values: dict[str, int | float | None]
    try:
        who = control.check_actor(actor if actor is not None else control.default_actor())
        if reset:
            if concurrency is not None or batch_size is not None or interval is not None:
                raise control.InvalidChange("--reset goes alone: it resets every knob")
            values = dict(control.RESET)
        else:
            values = {}
            if concurrency is not None:
                values[knobs.CONCURRENCY.name] = concurrency
            if batch_size is not None:
                values[knobs.BATCH_SIZE.name] = batch_size
            if interval is not None:
                values[knobs.INTERVAL.name] = parse_duration(interval)
            if not values:
                raise control.InvalidChange(
                    "nothing to change: give --concurrency, --batch-size, --interval or --reset"
                )
            control.check_knobs(
                concurrency=concurrency,
                batch_size=batch_size,
                interval_seconds=values.get(knobs.INTERVAL.name),
            )
    except InvalidValue as exc:
        common.fail(str(exc))
    settings = common.settings()
    changes = _with_db(
        settings,
        lambda db: control.tune(db, actor=who, now=datetime.now(UTC), values=values),
    )
    _print_changes(changes, as_json)


@app.command()
def status(
    changes: int = typer.Option(10, min=0, max=1000, help="How many recent changes to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """The active scheduler, its knobs, recent changes and the running workers."""
    settings = common.settings()
    now = datetime.now(UTC)
    found = _with_db(settings, lambda db: control.status(db, settings, now=now, changes=changes))
    if as_json:
        common.console.print_json(json.dumps(found.to_json()))
        return
    say = common.console.print
    say(f"active scheduler: [bold]{found.active}[/bold]")
    say(f"  concurrency: {_knob(found.concurrency, found.effective_concurrency)}")
    say(f"  batch size:  {_knob(found.batch_size, found.effective_batch_size)}")
    if found.interval_seconds is None:
        interval = (
            f"default (sleep until the next due time, at most "
            f"{format_duration(found.poll_seconds)})"
        )
    else:
        interval = format_duration(found.interval_seconds)
    say(f"  interval:    {interval}")
    if found.updated_at:
        say(f"  last change: {found.updated_at:%Y-%m-%d %H:%M:%S} UTC by {found.updated_by}")
    workers = Table(title="running workers", title_justify="left")
    for column in ("worker", "host", "pid", "started", "last heartbeat"):
        workers.add_column(column)
    for w in found.workers:
        age = (now - w.last_beat_at).total_seconds()
        beat = f"{age:.0f} s ago" + (" [red](stale)[/red]" if w.stale else "")
        workers.add_row(
            w.worker_id, w.hostname, str(w.pid), f"{w.started_at:%Y-%m-%d %H:%M:%S}", beat
        )
    common.print_table(workers)
    history = Table(title="recent changes", title_justify="left")
    for column in ("when (UTC)", "who", "setting", "from", "to"):
        history.add_column(column)
    for c in found.changes:
        history.add_row(
            f"{c.at:%Y-%m-%d %H:%M:%S}",
            c.actor,
            c.setting,
            c.old_value or "default",
            c.new_value or "default",
        )
    common.print_table(history)


def _knob(stored: float | None, effective: float) -> str:
    return f"{effective:g}" if stored is not None else f"{effective:g} (default from settings)"
