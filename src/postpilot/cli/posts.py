"""`postpilot posts import|export`: posts in bulk as CSV, the same format and checks as
`POST /api/posts/import` and `GET /api/posts/export` (README, "Bulk import and export")."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.exc import IntegrityError

from postpilot.api.errors import ApiError
from postpilot.api.routes import bulk
from postpilot.bulk import export
from postpilot.cli import common, usage
from postpilot.cli.workspace import _actor
from postpilot.core.states import PostStatus
from postpilot.core.timezones import as_utc
from postpilot.runtime import open_database, open_runtime
from postpilot.store.database import Database
from postpilot.store.tables import Workspace

app = usage.group("Posts in bulk: import them from CSV, export them to CSV.")

WORKSPACE = typer.Option(..., "--workspace", help="The workspace id (`postpilot workspace list`).")


async def _check_workspace(db: Database, workspace_id: str) -> None:
    async with db.session() as session:
        if await session.get(Workspace, workspace_id) is None:
            common.fail(f"no workspace {workspace_id} (see `postpilot workspace list`)")


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="The CSV file ('-' reads standard input)."),
    workspace_id: str = WORKSPACE,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row; create nothing."),
) -> None:
    """Create the file's posts: every row is checked first, and either all are created (in one
    transaction) or none. Rows with an external_id imported before are skipped."""
    settings = common.settings()
    data = _read(file, settings.IMPORT_MAX_BYTES)

    async def go() -> dict[str, Any] | ApiError:
        async with open_runtime(settings) as runtime:
            await _check_workspace(runtime.db, workspace_id)
            async with runtime.db.session() as session:
                try:
                    report = await bulk.import_csv(
                        session, runtime, workspace_id, data, dry_run=dry_run, actor=_actor()
                    )
                except ApiError as exc:
                    return exc
                if not dry_run:
                    try:
                        await session.commit()
                    except IntegrityError:
                        common.fail(bulk.conflict().message)
                return report.as_json()

    answer = common.run(go())
    if isinstance(answer, ApiError):
        if answer.code != "import_rows_invalid":
            common.fail(answer.message)
        _print_rows(answer.details, dry_run=dry_run)
        common.fail(answer.message)
    _print_rows(answer["rows"], dry_run=dry_run)
    common.console.print(answer["summary"], highlight=False, markup=False)


def _read(file: Path, max_bytes: int) -> bytes:
    try:
        if str(file) == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            with file.open("rb") as opened:
                data = opened.read(max_bytes + 1)
    except OSError as exc:
        common.fail(f"cannot read {file}: {exc.strerror or exc}")
    if len(data) > max_bytes:
        common.fail(f"{file} is larger than IMPORT_MAX_BYTES ({max_bytes} bytes)")
    return data


def _print_rows(rows: list[dict[str, Any]], *, dry_run: bool) -> None:
    for row in rows:
        number = row["row"]
        if row.get("existing_post_id"):
            line = f"row {number}: imported before as post {row['existing_post_id']}"
        elif row["ok"]:
            post = row.get("post") or {}
            made = "would create a post" if dry_run else f"created post {post.get('id')}"
            line = f"row {number}: ok, {made} at {post.get('scheduled_at')}"
        else:
            for problem in row["problems"]:
                where = f", {problem['column']}" if problem["column"] else ""
                common.console.print(
                    f"row {number}{where}: {problem['message']}", highlight=False, markup=False
                )
            continue
        common.console.print(line, highlight=False, markup=False)


@app.command("export")
def export_command(
    workspace_id: str = WORKSPACE,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (default: standard output)."
    ),
    status: PostStatus | None = typer.Option(None, "--status", help="Only posts in this status."),
    account_id: str | None = typer.Option(None, "--account", help="Only posts to this account."),
    platform: str | None = typer.Option(None, "--platform", help="Only posts to this platform."),
    scheduled_from: datetime | None = typer.Option(
        None, "--from", help="Scheduled at or after this UTC date or date and time."
    ),
    scheduled_to: datetime | None = typer.Option(
        None, "--to", help="Scheduled before this UTC date or date and time."
    ),
) -> None:
    """Write the posts as CSV (the format `posts import` takes back), oldest first. Cells a
    spreadsheet would run as a formula are written with a leading apostrophe."""
    settings = common.settings()
    filters: dict[str, Any] = {
        "status": status,
        "account_id": account_id,
        "platform": platform,
        "scheduled_from": as_utc(scheduled_from) if scheduled_from else None,
        "scheduled_to": as_utc(scheduled_to) if scheduled_to else None,
    }

    async def go() -> int:
        async with open_database(settings) as db:
            await _check_workspace(db, workspace_id)
            written = -1  # the header is not a post
            with (
                output.open("w", encoding="utf-8", newline="")
                if output
                else contextlib.nullcontext(sys.stdout)
            ) as out:
                async for line in export.lines(db.session, workspace_id, filters):
                    out.write(line)
                    written += 1
            return written

    written = common.run(go())
    if output is not None:
        common.console.print(f"wrote {written} posts to {output}", highlight=False, markup=False)
