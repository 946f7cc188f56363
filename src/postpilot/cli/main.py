"""Entry point of the `postpilot` command. Each group lives in its own module."""

from __future__ import annotations

import typer

from postpilot import __version__
from postpilot.cli import (
    accounts,
    cache,
    compare,
    config,
    db,
    demo,
    media,
    migration,
    posts,
    sandbox_cmd,
    scheduler,
    service,
    usage,
    users,
    workspace,
)

app = typer.Typer(
    name="postpilot",
    help="Publishes scheduled social-media posts fast and exactly once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=usage.Commands,
    add_completion=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"postpilot {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Publishes scheduled social-media posts fast and exactly once."""


app.add_typer(db.app, name="db")
app.add_typer(workspace.app, name="workspace")
app.add_typer(accounts.app, name="accounts")
app.add_typer(demo.app, name="demo")
app.add_typer(scheduler.app, name="scheduler")
app.add_typer(migration.app, name="migration")
app.add_typer(config.app, name="config")
app.add_typer(cache.app, name="cache")
app.add_typer(users.app, name="user")
app.add_typer(media.app, name="media")
app.add_typer(posts.app, name="posts")
app.command("compare")(compare.compare)
app.command("serve")(service.serve)
app.command("worker")(service.worker)
app.command("run-once")(service.run_once)
app.command("sandbox")(sandbox_cmd.sandbox)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
