"""Accounts: connected social accounts with encrypted credentials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from postpilot.core.states import AccountStatus, DeliveryStatus
from postpilot.core.timezones import as_utc
from postpilot.core.transitions import Event
from postpilot.store.tables import Account, Activity, Delivery, table_of


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


async def connected_on(session: AsyncSession, platform: str, *, besides: str) -> list[Account]:
    """Every account of `platform` not deleted, in any workspace, except `besides`."""
    query = select(Account).where(
        Account.platform == platform, Account.deleted_at.is_(None), Account.id != besides
    )
    return list((await session.execute(query)).scalars())


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


@dataclass(frozen=True, slots=True)
class Deleted:
    cancelled: list[str]  # deliveries that will not be attempted
    in_flight: list[str]  # held by a pass under a lease: that pass records how they end


ACCOUNT_CREATED = "account_created"
ACCOUNT_UPDATED = "account_updated"
# For the account, and for each of its deliveries in flight when it was deleted.
ACCOUNT_DELETED = "account_deleted"


async def delete_account(
    session: AsyncSession, account: Account, *, now: datetime, actor: str, note: str = ""
) -> Deleted:
    """Soft-delete (history keeps pointing at it), wipe its secrets, and cancel every delivery it
    still owed that no pass holds: waiting, due, or waiting to retry. A claimed delivery is left
    to its pass, which may be sending it right now: cancelling it would drop the outcome that
    pass writes (published or unknown), so it ends as the engine decides. Each delivery gets an
    activity entry saying why; the account's own entry starts with `note` (a revoke's outcome)."""
    account.deleted_at = now
    account.status = AccountStatus.DISABLED.value
    account.status_reason = "the account was deleted"
    account.credentials = ""
    account.credentials_version += 1
    account.updated_at = now
    why = f"the account {account.handle} on {account.platform} was deleted"
    # A pass claims with a row lock (PostgreSQL) or as the one writer (SQLite): a row it took
    # first is no longer `scheduled` here, and a row cancelled here is no longer due there.
    cancelled = (
        await session.execute(
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
            .returning(Delivery.id, Delivery.post_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    in_flight = (
        await session.execute(
            select(Delivery.id, Delivery.post_id).where(
                Delivery.account_id == account.id,
                Delivery.status == DeliveryStatus.CLAIMED.value,
            )
        )
    ).all()
    entries = [(row, Event.CANCELLED.value, f"cancelled: {why}") for row in cancelled] + [
        (
            row,
            ACCOUNT_DELETED,
            f"{why} while this delivery was being published; "
            "the pass holding it records how it ends",
        )
        for row in in_flight
    ]
    session.add_all(
        Activity(
            workspace_id=account.workspace_id,
            post_id=row.post_id,
            delivery_id=row.id,
            at=now,
            event=event,
            detail=detail,
            actor=actor,
        )
        for row, event, detail in entries
    )
    summary = (
        note
        + f"; cancelled {len(cancelled)} delivery(ies)"
        + (f", {len(in_flight)} still publishing" if in_flight else "")
    )
    log_change(session, account, event=ACCOUNT_DELETED, detail=summary, actor=actor, now=now)
    await session.flush()
    return Deleted(cancelled=[r.id for r in cancelled], in_flight=[r.id for r in in_flight])


def log_change(
    session: AsyncSession, account: Account, *, event: str, detail: str, actor: str, now: datetime
) -> None:
    """An account-level activity entry (no post): who created, changed or deleted it."""
    session.add(
        Activity(
            workspace_id=account.workspace_id,
            at=now,
            event=event,
            detail=f"account {account.handle} on {account.platform} ({account.id}){detail}",
            actor=actor,
        )
    )


def public_fields(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "platform": account.platform,
        "handle": account.handle,
        "platform_id": account.platform_id,
        "base_url": account.base_url,
        "options": account.options,
        "status": account.status,
        "status_reason": account.status_reason,
        "token_expires_at": account.token_expires_at,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }


@dataclass(frozen=True, slots=True)
class ReconnectNeeded:
    account_id: str
    workspace_id: str
    platform: str
    handle: str
    reason: str | None
    since: datetime | None


async def accounts_needing_reconnect(
    conn: AsyncConnection, *, limit: int = 500
) -> Sequence[ReconnectNeeded]:
    """Accounts (not deleted) whose tokens were refused: a person must connect them again."""
    table = table_of(Account)
    rows = await conn.execute(
        select(
            table.c.id,
            table.c.workspace_id,
            table.c.platform,
            table.c.handle,
            table.c.status_reason,
            table.c.updated_at,
        )
        .where(
            table.c.status == AccountStatus.NEEDS_RECONNECT.value,
            table.c.deleted_at.is_(None),
        )
        .order_by(table.c.updated_at)
        .limit(limit)
    )
    return [
        ReconnectNeeded(
            account_id=row.id,
            workspace_id=row.workspace_id,
            platform=row.platform,
            handle=row.handle,
            reason=row.status_reason,
            since=as_utc(row.updated_at) if row.updated_at else None,
        )
        for row in rows
    ]
