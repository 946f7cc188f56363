"""`postpilot db`: schema migrations, backup and restore."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from postpilot.cli import common, usage
from postpilot.store import rows, schema
from postpilot.store.database import Database
from postpilot.tools import backup as backups
from postpilot.tools.errors import db_error_line

T = TypeVar("T")

app = usage.group("Database schema (upgrade, current version), backup and restore.")


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = common.settings()

    async def go() -> str | None:
        db = Database(settings.DATABASE_URL)
        try:
            await schema.upgrade(db, revision)
            return await schema.current_revision(db)
        finally:
            await db.dispose()

    current = common.run(go())
    common.console.print(f"schema at {current}")


@app.command()
def current() -> None:
    """Print the schema version of the database and the version this code needs."""
    settings = common.settings()

    async def go() -> str | None:
        db = Database(settings.DATABASE_URL)
        try:
            return await schema.current_revision(db)
        finally:
            await db.dispose()

    found = common.run(go())
    head = schema.head_revision()
    state = "up to date" if found == head else "run `postpilot db upgrade`"
    common.console.print(f"database: {found or 'empty'}; code needs: {head} ({state})")


@app.command()
def backup(
    path: Path = typer.Argument(..., help="File to write.", show_default=False),
    force: bool = typer.Option(False, "--force", help="Replace PATH if it exists."),
) -> None:
    """Back up the database to PATH (SQLite: online backup; PostgreSQL: pg_dump custom format),
    consistent while workers run, and print its rows per table."""
    settings = common.settings()

    async def go() -> backups.BackupResult:
        db = Database(settings.DATABASE_URL)
        try:
            return await backups.backup(db, path, force=force)
        finally:
            await db.dispose()

    result = _db_run(go)
    common.console.print(_counts_table(f"backed up to {result.path}", result.counts))
    common.console.print(
        f"{result.dialect} backup, schema {result.revision or 'none'}, {result.size_bytes:,} bytes",
        highlight=False,
    )


@app.command()
def restore(
    path: Path = typer.Argument(..., help="A file written by `postpilot db backup`."),
    force: bool = typer.Option(
        False, "--force", help="Replace a database that already holds rows."
    ),
) -> None:
    """Restore PATH into the database, then check every table's row count against the backup.
    Refuses a database that holds any row unless --force. Stop the workers first."""
    settings = common.settings()

    async def go() -> backups.RestoreResult:
        db = Database(settings.DATABASE_URL)
        try:
            return await backups.restore(db, path, force=force)
        finally:
            await db.dispose()

    result = _db_run(go)
    table = _counts_table(f"restored from {result.path}", result.counts, result.expected)
    common.console.print(table)
    if result.replaced:
        replaced = ", ".join(f"{name} {count}" for name, count in result.replaced.items())
        common.console.print(f"replaced the rows that were there ({replaced})", highlight=False)
    if result.mismatches:
        common.fail(
            "row counts differ from the backup: "
            + ", ".join(f"{n} {want} -> {got}" for n, (want, got) in result.mismatches.items())
        )
    head = schema.head_revision()
    note = "" if result.revision == head else f": run `postpilot db upgrade` (code needs {head})"
    common.console.print(
        f"row counts match the backup; schema {result.revision or 'none'}{note}", highlight=False
    )


def _db_run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return common.run(work())
    except SQLAlchemyError as exc:
        common.fail(db_error_line(exc))


def _counts_table(
    title: str, counts: dict[str, int], expected: dict[str, int] | None = None
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    if expected is not None:
        table.add_column("in backup", justify="right")
    for name in rows.TABLES:
        if name not in counts and (expected is None or name not in expected):
            continue
        row = [name, f"{counts.get(name, 0):,}"]
        if expected is not None:
            want = expected.get(name, 0)
            row.append(f"{want:,}" if want == counts.get(name, 0) else f"[red]{want:,}[/red]")
        table.add_row(*row)
    return table
