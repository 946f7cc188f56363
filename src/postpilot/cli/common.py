"""What every command shares: settings that fail with one clear line, and asyncio running."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from postpilot import logs
from postpilot.crypto import CredentialsError
from postpilot.scheduler.runtime import MissingSecretKey
from postpilot.settings import Settings, SettingsError, load_settings
from postpilot.store.schema import SchemaOutOfDate

T = TypeVar("T")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

# Expected failures: shown as one line, never as a traceback.
EXPECTED = (SettingsError, SchemaOutOfDate, MissingSecretKey, CredentialsError, ValueError, OSError)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def settings(**overrides: Any) -> Settings:
    try:
        loaded = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        fail(f"bad setting: {exc}")
    logs.configure(loaded.LOG_LEVEL, loaded.LOG_FORMAT)
    return loaded


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except (ConnectionError, socket.gaierror) as exc:
        fail(f"could not connect: {exc} (is the server named in DATABASE_URL running?)")
    except EXPECTED as exc:
        fail(str(exc))
