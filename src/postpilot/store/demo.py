"""Rows the demo made, found and removed by their marks only: posts carry `source = 'demo'`,
accounts `options.demo = true`, and they live in the workspace named `demo`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Delete, delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.store.tables import Account, Activity, Delivery, Post, Workspace

SOURCE = "demo"
WORKSPACE = "demo"
ACCOUNT_FLAG = "demo"


@dataclass(frozen=True, slots=True)
class Removed:
    posts: int
    deliveries: int
    activity: int
    accounts: int
    workspaces: int
    kept_accounts: list[str]  # demo accounts that a non-demo post still targets


async def workspace(session: AsyncSession) -> Workspace | None:
    """The demo workspace (the oldest, should there be several)."""
    found = await session.execute(
        select(Workspace).where(Workspace.name == WORKSPACE).order_by(Workspace.id)
    )
    return found.scalars().first()


async def accounts(session: AsyncSession, *, workspace_id: str) -> list[Account]:
    """The workspace's demo accounts that are not deleted."""
    found = await session.execute(
        select(Account).where(
            Account.workspace_id == workspace_id,
            Account.options[ACCOUNT_FLAG].as_boolean().is_(True),
            Account.deleted_at.is_(None),
        )
    )
    return list(found.scalars())


async def remove(session: AsyncSession) -> Removed:
    """Delete demo posts with their deliveries and activity, demo accounts nothing else targets,
    and demo workspaces left empty; nothing else."""
    post_ids = select(Post.id).where(Post.source == SOURCE)
    activity = await _delete(session, delete(Activity).where(Activity.post_id.in_(post_ids)))
    deliveries = await _delete(session, delete(Delivery).where(Delivery.post_id.in_(post_ids)))
    posts = await _delete(session, delete(Post).where(Post.source == SOURCE))
    flagged = list(
        (
            await session.execute(
                select(Account).where(Account.options[ACCOUNT_FLAG].as_boolean().is_(True))
            )
        ).scalars()
    )
    still_used = set(
        (
            await session.execute(
                select(Delivery.account_id)
                .where(Delivery.account_id.in_([a.id for a in flagged]))
                .distinct()
            )
        ).scalars()
    )
    removable = [a.id for a in flagged if a.id not in still_used]
    kept = [f"{a.platform} {a.handle} ({a.id})" for a in flagged if a.id in still_used]
    removed_accounts = 0
    if removable:
        removed_accounts = await _delete(session, delete(Account).where(Account.id.in_(removable)))
    removed_workspaces = 0
    for found in (
        await session.execute(select(Workspace).where(Workspace.name == WORKSPACE))
    ).scalars():
        if not await _holds_rows(session, found.id):
            await session.delete(found)  # its API keys go with it (ON DELETE CASCADE)
            removed_workspaces += 1
    return Removed(
        posts=posts,
        deliveries=deliveries,
        activity=activity,
        accounts=removed_accounts,
        workspaces=removed_workspaces,
        kept_accounts=kept,
    )


async def _delete(session: AsyncSession, statement: Delete) -> int:
    result = await session.execute(statement)
    assert isinstance(result, CursorResult)  # what a DELETE answers: it carries the row count
    return result.rowcount


async def _holds_rows(session: AsyncSession, workspace_id: str) -> bool:
    posts = await session.execute(
        select(func.count()).select_from(Post).where(Post.workspace_id == workspace_id)
    )
    accounts = await session.execute(
        select(func.count()).select_from(Account).where(Account.workspace_id == workspace_id)
    )
    return bool(posts.scalar_one() + accounts.scalar_one())
