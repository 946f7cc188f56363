"""Accounts: connected social accounts with encrypted credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core.states import AccountStatus, DeliveryStatus
from postpilot.store.tables import Account, Delivery, utcnow


async def get_account(session: AsyncSession, workspace_id: str, account_id: str) -> Account | None:
    account = await session.get(Account, account_id)
    if account is None or account.workspace_id != workspace_id or account.deleted_at is not None:
        return None
    return account


async def list_accounts(
    session: AsyncSession, workspace_id: str, *, platform: str | None = None
) -> list[Account]:
    query = select(Account).where(
        Account.workspace_id == workspace_id, Account.deleted_at.is_(None)
    )
    if platform:
        query = query.where(Account.platform == platform)
    return list((await session.execute(query.order_by(Account.created_at))).scalars())


async def accounts_by_ids(
    session: AsyncSession, workspace_id: str, ids: list[str]
) -> dict[str, Account]:
    rows = await session.execute(
        select(Account).where(
            Account.workspace_id == workspace_id,
            Account.id.in_(ids),
            Account.deleted_at.is_(None),
        )
    )
    return {account.id: account for account in rows.scalars()}


def set_credentials(
    account: Account, encrypted: str, token_expires_at: datetime | None, now: datetime
) -> None:
    """New credentials: bump the version (caches key on it) and reactivate the account."""
    account.credentials = encrypted
    account.credentials_version = (account.credentials_version or 0) + 1
    account.token_expires_at = token_expires_at
    account.status = AccountStatus.ACTIVE.value
    account.status_reason = None
    account.updated_at = now


async def delete_account(session: AsyncSession, account: Account) -> int:
    """Soft-delete (history keeps pointing at it), wipe its secrets, cancel what it still owed.
    Returns how many deliveries were cancelled."""
    now = utcnow()
    account.deleted_at = now
    account.status = AccountStatus.DISABLED.value
    account.credentials = ""
    account.credentials_version += 1
    account.updated_at = now
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.account_id == account.id,
            Delivery.status == DeliveryStatus.SCHEDULED.value,
        )
        .values(
            status=DeliveryStatus.CANCELLED.value,
            last_error="the account was deleted",
            updated_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def public_fields(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "platform": account.platform,
        "handle": account.handle,
        "base_url": account.base_url,
        "options": account.options,
        "status": account.status,
        "status_reason": account.status_reason,
        "token_expires_at": account.token_expires_at,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }
