"""What every command shares: settings that fail with one clear line, asyncio running, and
one line for what a command may meet without a bug."""

from __future__ import annotations

import socket
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from postpilot import logs, loop
from postpilot.errors import PostpilotError
from postpilot.settings import Settings, SettingsError, load_settings, warn_misspelt

T = TypeVar("T")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

# What a command may meet without a bug: postpilot's own errors, and the system or the network
# refusing. Each ends the command with one line; anything else is a bug and keeps its traceback.
EXPECTED = (PostpilotError, OSError)


def fail(message: str, code: int = 1) -> NoReturn:
    line = escape(" ".join(message.split()))  # a docstring's line breaks included; [x] as typed
    errors.print(f"[red]error:[/red] {line}", highlight=False)
    raise typer.Exit(code)


def print_table(table: Table) -> None:
    """A table with rows, or its title and "none" on one line: an empty grid says nothing."""
    if table.row_count:
        console.print(table)
    else:
        console.print(f"{table.title}: none", highlight=False)


def settings(**overrides: Any) -> Settings:
    try:
        loaded = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        fail(f"bad setting: {exc}")
    logs.configure(loaded.LOG_LEVEL, loaded.LOG_FORMAT)
    warn_misspelt()
    return loaded


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return loop.run(coroutine)
    except (ConnectionError, socket.gaierror) as exc:
        fail(f"could not connect: {exc} (is the server named in DATABASE_URL running?)")
    except EXPECTED as exc:
        fail(str(exc))
