"""`postpilot workspace`: create workspaces and API keys (the first key comes from here)."""

from __future__ import annotations

import typer

from postpilot.cli import common
from postpilot.store import schema, workspaces
from postpilot.store.database import Database

app = typer.Typer(help="Workspaces and their API keys.", no_args_is_help=True)


@app.command()
def create(name: str = typer.Option(..., "--name", help="A name people recognise.")) -> None:
    """Create a workspace and print its first API key (shown once)."""
    settings = common.settings()

    async def go() -> workspaces.NewWorkspace:
        db = Database(settings.DATABASE_URL)
        try:
            await schema.ensure_current(db)
            async with db.transaction() as session:
                return await workspaces.create_workspace(session, name=name)
        finally:
            await db.dispose()

    created = common.run(go())
    common.console.print(f"workspace {created.workspace.id} ({name})")
    common.console.print(f"API key (shown once, keep it): {created.api_key}", highlight=False)


@app.command("list")
def list_() -> None:
    """List workspaces."""
    settings = common.settings()

    async def go() -> list[tuple[str, str]]:
        db = Database(settings.DATABASE_URL)
        try:
            await schema.ensure_current(db)
            async with db.session() as session:
                return [(w.id, w.name) for w in await workspaces.list_workspaces(session)]
        finally:
            await db.dispose()

    for ident, name in common.run(go()):
        common.console.print(f"{ident}  {name}", highlight=False)


@app.command("add-key")
def add_key(
    workspace_id: str = typer.Argument(..., help="The workspace id."),
    name: str = typer.Option("cli", help="A label for the key."),
) -> None:
    """Create another API key for a workspace."""
    settings = common.settings()

    async def go() -> str:
        db = Database(settings.DATABASE_URL)
        try:
            await schema.ensure_current(db)
            async with db.transaction() as session:
                return await workspaces.create_api_key(
                    session, workspace_id=workspace_id, name=name
                )
        finally:
            await db.dispose()

    common.console.print(f"API key (shown once): {common.run(go())}", highlight=False)
