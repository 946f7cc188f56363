"""`postpilot db`: schema migrations."""

from __future__ import annotations

import typer

from postpilot.cli import common
from postpilot.store import schema
from postpilot.store.database import Database

app = typer.Typer(help="Database schema: upgrade, current version.", no_args_is_help=True)


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
