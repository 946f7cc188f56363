"""Entry point of the `postpilot` command. Each group lives in its own module."""

from __future__ import annotations

import typer

from postpilot.cli import compare, db, demo, migration, sandbox_cmd, scheduler, service, workspace

app = typer.Typer(
    name="postpilot",
    help="Publishes scheduled social-media posts fast and exactly once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(workspace.app, name="workspace")
app.add_typer(demo.app, name="demo")
app.add_typer(scheduler.app, name="scheduler")
app.add_typer(migration.app, name="migration")
app.command("compare")(compare.compare)
app.command("serve")(service.serve)
app.command("worker")(service.worker)
app.command("run-once")(service.run_once)
app.command("sandbox")(sandbox_cmd.sandbox)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
