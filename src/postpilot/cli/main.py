"""Entry point of the `postpilot` command. Each group or command lives in its own module, imported
only when that command runs: a worker process (the supervisor starts one per core) then loads the
scheduler, not the HTTP app, the connect flows and every other command's dependencies."""

from __future__ import annotations

import importlib
from functools import cache

import typer
from typer._click import Command, Context
from typer.core import TyperGroup

from postpilot import __version__
from postpilot.cli import usage

# name -> (module, attribute): a typer.Typer for a group, a function for a single command. In the
# order `postpilot --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "compare": ("postpilot.cli.compare", "compare"),
    "serve": ("postpilot.cli.serve", "serve"),
    "worker": ("postpilot.cli.worker", "worker"),
    "run-once": ("postpilot.cli.worker", "run_once"),
    "sandbox": ("postpilot.cli.sandbox_cmd", "sandbox"),
    "db": ("postpilot.cli.db", "app"),
    "workspace": ("postpilot.cli.workspace", "app"),
    "accounts": ("postpilot.cli.accounts", "app"),
    "demo": ("postpilot.cli.demo", "app"),
    "scheduler": ("postpilot.cli.scheduler", "app"),
    "migration": ("postpilot.cli.migration", "app"),
    "config": ("postpilot.cli.config", "app"),
    "cache": ("postpilot.cli.cache", "app"),
    "user": ("postpilot.cli.users", "app"),
    "media": ("postpilot.cli.media", "app"),
    "posts": ("postpilot.cli.posts", "app"),
}


@cache
def load(name: str) -> Command:
    """The command as typer would have built it from `add_typer` or `command` on the root."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(rich_markup_mode=None)
    holder.callback()(_nothing)  # a callback keeps the holder a group even with one command
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    built = typer.main.get_command(holder)
    assert isinstance(built, TyperGroup)
    return built.commands[name]


def _nothing() -> None:
    pass


class LazyCommands(usage.Commands):
    """The root group: knows its commands by name and imports one when it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None


app = typer.Typer(
    name="postpilot",
    help="Publishes scheduled social-media posts fast and exactly once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=LazyCommands,
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


def run() -> None:
    app()


if __name__ == "__main__":
    run()
