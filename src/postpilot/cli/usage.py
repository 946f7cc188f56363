"""How the command line looks: plain help (a flag without a `<bool>` type after it) and usage
errors (an unknown option, a bad value, a missing argument) in the one-line style of ours."""

from __future__ import annotations

from typing import Any, NoReturn

import typer

# Typer carries its own copy of click: its errors and contexts are these, not click's.
from typer._click import Context
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from postpilot.cli import common

USAGE_EXIT_CODE = 2  # click's, and the shell's convention for a usage error


def group(help: str) -> typer.Typer:
    """A command group with plain help, showing its help when given no command."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


def _one_line(error: UsageError) -> NoReturn:
    path = error.ctx.command_path if error.ctx else "postpilot"
    common.fail(f"{error.format_message()} (see `{path} --help`)", USAGE_EXIT_CODE)


class Commands(TyperGroup):
    """The root group: every usage error below it, parsed here or in a subcommand, is one line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _one_line(exc)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _one_line(exc)
