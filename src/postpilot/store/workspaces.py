"""Workspaces and their API keys (stored hashed; the key itself is shown once)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.store import api_keys
from postpilot.store.tables import Workspace, utcnow


@dataclass(frozen=True, slots=True)
class NewWorkspace:
    workspace: Workspace
    api_key: str  # shown once; only its hash is stored


async def create_workspace(
    session: AsyncSession, *, name: str, key_name: str = "default"
) -> NewWorkspace:
    workspace = Workspace(name=name)
    session.add(workspace)
    await session.flush()
    key = await create_api_key(session, workspace_id=workspace.id, name=key_name)
    return NewWorkspace(workspace=workspace, api_key=key)


async def create_api_key(session: AsyncSession, *, workspace_id: str, name: str) -> str:
    """A key made without an actor (a new workspace's first key, the demo's): no activity."""
    new = api_keys.new_key(workspace_id, name, utcnow())
    session.add(new.key)
    await session.flush()
    return new.secret


async def list_workspaces(session: AsyncSession) -> list[Workspace]:
    return list((await session.execute(select(Workspace).order_by(Workspace.created_at))).scalars())
