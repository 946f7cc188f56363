"""Connect flows and per-server app registrations: the statements the connect service runs.

A flow is found by the hash of its state only (the state itself is never stored), and is spent
in the same statement that finds it, so two callbacks with one state cannot both proceed."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core.states import DeliveryStatus
from postpilot.store import posts
from postpilot.store.tables import Account, ConnectApp, ConnectFlow, Delivery

PENDING = "pending"
CHOOSING = "choosing"
DONE = "done"
FAILED = "failed"

# The engine's words for a delivery failed because the account's token was refused
# (core/transitions.py): those are the ones a reconnect offers to retry.
RECONNECT_HINT = "reconnect the account, then retry this post"


def state_hash(state: str) -> str:
    # The state is 48 random characters: a fast hash is enough, as for API keys.
    return hashlib.sha256(state.encode()).hexdigest()


async def take_flow(
    session: AsyncSession, state: str, *, now: datetime
) -> tuple[ConnectFlow | None, str]:
    """The pending flow of `state`, marked used in the same statement; or None and why not
    ("unknown", "used", "expired")."""
    digest = state_hash(state)
    taken = await session.execute(
        update(ConnectFlow)
        .where(
            ConnectFlow.state_hash == digest,
            ConnectFlow.used_at.is_(None),
            ConnectFlow.expires_at > now,
        )
        .values(used_at=now)
        .returning(ConnectFlow.id)
        .execution_options(synchronize_session=False)
    )
    flow_id = taken.scalar_one_or_none()
    if flow_id is not None:
        flow = await session.get(ConnectFlow, flow_id, populate_existing=True)
        return flow, ""
    found = await session.scalar(select(ConnectFlow).where(ConnectFlow.state_hash == digest))
    if found is None:
        return None, "unknown"
    return None, "used" if found.used_at is not None else "expired"


async def forget_flows(session: AsyncSession, *, ended_before: datetime) -> None:
    """Flows whose time is long over: what they connected is in the accounts and activity."""
    await session.execute(
        delete(ConnectFlow)
        .where(ConnectFlow.expires_at < ended_before)
        .execution_options(synchronize_session=False)
    )


async def get_flow(session: AsyncSession, workspace_id: str, flow_id: str) -> ConnectFlow | None:
    flow = await session.get(ConnectFlow, flow_id)
    if flow is None or flow.workspace_id != workspace_id:
        return None
    return flow


async def claim_choice(session: AsyncSession, flow: ConnectFlow, *, now: datetime) -> bool:
    """Move a flow out of `choosing` once: a second, concurrent choice finds it gone."""
    moved = await session.execute(
        update(ConnectFlow)
        .where(ConnectFlow.id == flow.id, ConnectFlow.status == CHOOSING)
        .values(status=PENDING, used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(moved, "rowcount", 0))


async def account_by_platform_id(
    session: AsyncSession, workspace_id: str, platform: str, platform_id: str
) -> Account | None:
    """The workspace's live account of this platform id, if one was connected before."""
    return await session.scalar(
        select(Account)
        .where(
            Account.workspace_id == workspace_id,
            Account.platform == platform,
            Account.platform_id == platform_id,
            Account.deleted_at.is_(None),
        )
        .order_by(Account.created_at)
        .limit(1)
    )


async def retryable_deliveries(session: AsyncSession, account_id: str) -> list[str]:
    """The account's deliveries that failed because its token was refused."""
    rows = await session.scalars(
        select(Delivery.id)
        .where(
            Delivery.account_id == account_id,
            Delivery.status == DeliveryStatus.FAILED.value,
            Delivery.last_error.like(f"%{RECONNECT_HINT}"),
        )
        .order_by(Delivery.scheduled_at, Delivery.id)
    )
    return list(rows)


async def retry_failed(
    session: AsyncSession, account_id: str, *, now: datetime, actor: str
) -> list[str]:
    """Publish again, now, the account's deliveries that failed because its token was refused,
    each as a `retry` resolution with its activity entry (after a reconnect). The caller
    commits, then wakes its worker."""
    ids = await retryable_deliveries(session, account_id)
    for delivery_id in ids:
        delivery = await session.get(Delivery, delivery_id)
        assert delivery is not None
        posts.resolve_delivery(
            session,
            delivery,
            resolution="retry",
            platform_post_id=None,
            platform_url=None,
            note="the account was reconnected",
            now=now,
            actor=actor,
        )
    if ids:
        await posts.notify_due(session)
    return ids


async def app_for(session: AsyncSession, platform: str, server: str) -> ConnectApp | None:
    return await session.scalar(
        select(ConnectApp).where(ConnectApp.platform == platform, ConnectApp.server == server)
    )


async def save_app(
    session: AsyncSession, platform: str, server: str, credentials: str, *, now: datetime
) -> ConnectApp:
    """Keep a registration; when another process registered the same server first, theirs is
    kept and returned (one app per server)."""
    try:
        async with session.begin_nested():
            app = ConnectApp(
                platform=platform, server=server, credentials=credentials, created_at=now
            )
            session.add(app)
        return app
    except IntegrityError:
        existing = await app_for(session, platform, server)
        assert existing is not None
        return existing
