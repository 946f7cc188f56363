"""`postpilot migration`: the migration report."""

from __future__ import annotations

import typer

app = typer.Typer(help="The migration plan's report.", no_args_is_help=True)


@app.command()
def report() -> None:
    """Not finished yet."""
