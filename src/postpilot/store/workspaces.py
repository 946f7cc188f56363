"""Workspaces and their API keys (stored hashed; the key itself is shown once)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot import crypto
from postpilot.store.tables import ApiKey, Workspace


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
    key = crypto.new_api_key()
    session.add(
        ApiKey(
            workspace_id=workspace_id,
            name=name,
            prefix=crypto.api_key_lookup_prefix(key),
            key_hash=crypto.hash_api_key(key),
        )
    )
    await session.flush()
    return key


async def workspace_for_key(session: AsyncSession, key: str) -> Workspace | None:
    row = (
        await session.execute(
            select(Workspace)
            .join(ApiKey, ApiKey.workspace_id == Workspace.id)
            .where(
                ApiKey.key_hash == crypto.hash_api_key(key),
                ApiKey.revoked_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    return row


async def list_workspaces(session: AsyncSession) -> list[Workspace]:
    return list((await session.execute(select(Workspace).order_by(Workspace.created_at))).scalars())
