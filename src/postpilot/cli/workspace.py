"""`postpilot workspace`: create workspaces and manage their API keys (the first key comes from
here; `keys` lists, creates, revokes and rotates them)."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.cli import common, usage
from postpilot.core.timezones import as_utc
from postpilot.runtime import open_database
from postpilot.store import api_keys, workspaces
from postpilot.store.tables import ApiKey, Workspace

T = TypeVar("T")

app = usage.group("Workspaces and their API keys.")


@app.command()
def create(name: str = typer.Option(..., "--name", help="A name people recognise.")) -> None:
    """Create a workspace and print its first API key (shown once)."""
    settings = common.settings()

    async def go() -> workspaces.NewWorkspace:
        async with open_database(settings) as db, db.transaction() as session:
            return await workspaces.create_workspace(session, name=name)

    created = common.run(go())
    common.console.print(f"workspace {created.workspace.id} ({name})")
    common.console.print(f"API key (shown once, keep it): {created.api_key}", highlight=False)


@app.command("list")
def list_() -> None:
    """List workspaces."""
    settings = common.settings()

    async def go() -> list[tuple[str, str]]:
        async with open_database(settings) as db, db.session() as session:
            return [(w.id, w.name) for w in await workspaces.list_workspaces(session)]

    found = common.run(go())
    if not found:
        common.console.print("workspaces: none (create one with `postpilot workspace create`)")
    for ident, name in found:
        common.console.print(f"{ident}  {name}", highlight=False)


keys = usage.group("List, create, revoke and rotate a workspace's API keys.")
app.add_typer(keys, name="keys")

WORKSPACE = typer.Argument(..., help="The workspace id (see `postpilot workspace list`).")
KEY = typer.Argument(..., help="The key's id (see `postpilot workspace keys list`).")


def _actor() -> str:
    """Activity names who changed a key from the CLI: `cli:user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"[:64]


def _in_workspace(workspace_id: str, change: Callable[[AsyncSession, str], Awaitable[T]]) -> T:
    """Run `change` in one transaction against an existing workspace; refusals become one line."""
    settings = common.settings()

    async def go() -> T:
        async with open_database(settings) as db, db.transaction() as session:
            if await session.get(Workspace, workspace_id) is None:
                common.fail(f"no workspace {workspace_id} (see `postpilot workspace list`)")
            return await change(session, _actor())

    return common.run(go())


def _print_secret(new: api_keys.NewKey, what: str) -> None:
    common.console.print(f"{what} {new.key.id} ({new.key.name}, {new.key.prefix}...)")
    common.console.print(f"API key (shown once, keep it): {new.secret}", highlight=False)


@keys.command("list")
def keys_list(workspace_id: str = WORKSPACE) -> None:
    """List the keys: id, name, prefix, created, last used, revoked (never the secret)."""

    async def go(session: AsyncSession, _actor: str) -> list[ApiKey]:
        return await api_keys.list_keys(session, workspace_id)

    # Plain columns, one key a line: easy to read and to cut in scripts.
    common.console.print("id  name  prefix  created  last_used  revoked", highlight=False)
    for key in _in_workspace(workspace_id, go):
        fields = (key.created_at, key.last_used_at, key.revoked_at)
        common.console.print(
            f"{key.id}  {key.name}  {key.prefix}  " + "  ".join(_when(f) for f in fields),
            highlight=False,
        )


@keys.command("create")
def keys_create(
    workspace_id: str = WORKSPACE,
    name: str = typer.Option("cli", help="A label for the key."),
) -> None:
    """Create a key and print its secret (shown once)."""

    async def go(session: AsyncSession, actor: str) -> api_keys.NewKey:
        return await api_keys.create_key(
            session, workspace_id=workspace_id, name=_label(name), actor=actor, now=_now()
        )

    _print_secret(_in_workspace(workspace_id, go), "created key")


@keys.command("revoke")
def keys_revoke(workspace_id: str = WORKSPACE, key_id: str = KEY) -> None:
    """Revoke a key at once. The workspace's last active key cannot be revoked."""

    async def go(session: AsyncSession, actor: str) -> ApiKey:
        return await api_keys.revoke_key(
            session, workspace_id=workspace_id, key_id=key_id, actor=actor, now=_now()
        )

    key = _in_workspace(workspace_id, go)
    common.console.print(f"revoked key {key.id} ({key.name}, {key.prefix}...)")


@keys.command("rotate")
def keys_rotate(workspace_id: str = WORKSPACE, key_id: str = KEY) -> None:
    """Replace a key with a new secret under the same name; the old one is revoked with it."""

    async def go(session: AsyncSession, actor: str) -> api_keys.NewKey:
        return await api_keys.rotate_key(
            session, workspace_id=workspace_id, key_id=key_id, actor=actor, now=_now()
        )

    _print_secret(_in_workspace(workspace_id, go), f"key {key_id} revoked; new key")


@app.command("add-key", hidden=True)
def add_key(
    workspace_id: str = WORKSPACE,
    name: str = typer.Option("cli", help="A label for the key."),
) -> None:
    """Create another API key (kept for scripts: same as `keys create`)."""
    keys_create(workspace_id, name)


def _label(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        common.fail("--name must be 1-200 printable characters")
    return name


def _now() -> datetime:
    return datetime.now(UTC)


def _when(moment: datetime | None) -> str:
    return as_utc(moment).isoformat(timespec="seconds") if moment else "-"
