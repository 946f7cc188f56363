"""`postpilot media purge`: remove library media no post has used for MEDIA_RETENTION_DAYS."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from postpilot.cli import common, usage
from postpilot.media import library
from postpilot.media.purge import Purged, purge
from postpilot.runtime import open_database

app = usage.group("The media library: retention.")


@app.command("purge")
def purge_command(
    days: int | None = typer.Option(
        None, "--days", min=1, max=36_500, help="Retention in days (default MEDIA_RETENTION_DAYS)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
) -> None:
    """Remove media (rows, then files) unused by any post for the retention period. Media an
    unfinished delivery (scheduled, being published, or unknown) needs is always kept."""
    settings = common.settings()
    retention = days or settings.MEDIA_RETENTION_DAYS

    async def go() -> Purged:
        async with open_database(settings) as db:
            return await purge(
                db,
                library.open_storage(settings),
                now=datetime.now(UTC),
                retention_days=retention,
                dry_run=dry_run,
            )

    purged = common.run(go())
    verb = "would remove" if dry_run else "removed"
    common.console.print(
        f"{verb} {len(purged.ids)} media unused for {retention} days ({purged.bytes_freed} bytes)",
        highlight=False,
    )
    for media_id in purged.ids:
        common.console.print(f"  {media_id}", highlight=False)
