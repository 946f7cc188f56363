"""API keys: authenticate a request, list, create, revoke and rotate a workspace's keys.

Only a key's hash is stored; the secret is returned once, when it is made. Every change is an
activity entry naming who made it (another key, or a person at the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from postpilot import crypto
from postpilot.core.timezones import as_utc
from postpilot.errors import PostpilotError
from postpilot.store.tables import Activity, ApiKey, Workspace

# last_used_at is a hint for people, not an audit trail: one write a minute per key is plenty.
TOUCH_EVERY = timedelta(minutes=1)


class KeyRefused(PostpilotError):
    """The API key operation was refused."""


class KeyNotFound(KeyRefused):
    """No such API key in this workspace."""


class KeyRevoked(KeyRefused):
    """The API key is already revoked."""


class LastActiveKey(KeyRefused):
    """This is the workspace's last active API key: revoking it would lock the workspace out.
    Create another key first (or rotate this one)."""


@dataclass(frozen=True, slots=True)
class Caller:
    workspace: Workspace
    key: ApiKey

    @property
    def actor(self) -> str:
        return key_actor(self.key)


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once; only its hash is stored


def key_actor(key: ApiKey) -> str:
    """How activity names a key: its public prefix and id, never the secret."""
    return f"key:{key.prefix}:{key.id}"


async def authenticate(session: AsyncSession, secret: str) -> Caller | None:
    """The workspace and active key a bearer secret belongs to; None if unknown or revoked."""
    row = (
        await session.execute(
            select(Workspace, ApiKey)
            .join(ApiKey, ApiKey.workspace_id == Workspace.id)
            .where(ApiKey.key_hash == crypto.hash_api_key(secret), ApiKey.revoked_at.is_(None))
        )
    ).one_or_none()
    return None if row is None else Caller(workspace=row[0], key=row[1])


def needs_touch(key: ApiKey, now: datetime) -> bool:
    last = key.last_used_at
    return last is None or as_utc(last) <= now - TOUCH_EVERY


async def touch(session: AsyncSession, key: ApiKey, now: datetime) -> None:
    """Record use; conditional, so concurrent requests write it once."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - TOUCH_EVERY),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(key, "last_used_at", now)  # already written: no second UPDATE


async def list_keys(session: AsyncSession, workspace_id: str) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.created_at)
    )
    return list(rows.scalars())


async def create_key(
    session: AsyncSession, *, workspace_id: str, name: str, actor: str, now: datetime
) -> NewKey:
    new = new_key(workspace_id, name, now)
    session.add(new.key)
    await session.flush()
    _log(session, new.key, "key_created", f"API key {new.key.prefix} ({name}) created", actor, now)
    return new


async def revoke_key(
    session: AsyncSession, *, workspace_id: str, key_id: str, actor: str, now: datetime
) -> ApiKey:
    """Revoke at once. Refuses the workspace's last active key (LastActiveKey)."""
    await _lock_workspace(session, workspace_id)
    key = await _active_key(session, workspace_id, key_id)
    others = (
        select(func.count())
        .select_from(ApiKey)
        .where(
            ApiKey.workspace_id == workspace_id,
            ApiKey.revoked_at.is_(None),
            ApiKey.id != key_id,
        )
        .scalar_subquery()
    )
    # One conditional statement: the count and the revoke cannot be split by another request.
    result = await session.execute(
        update(ApiKey)
        .where(and_(ApiKey.id == key_id, ApiKey.revoked_at.is_(None), others > 0))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise LastActiveKey()
    set_committed_value(key, "revoked_at", now)
    _log(session, key, "key_revoked", f"API key {key.prefix} ({key.name}) revoked", actor, now)
    return key


async def rotate_key(
    session: AsyncSession, *, workspace_id: str, key_id: str, actor: str, now: datetime
) -> NewKey:
    """A new key with the same name replaces an active one, in the caller's transaction: both
    happen or neither does."""
    await _lock_workspace(session, workspace_id)
    old = await _active_key(session, workspace_id, key_id)
    new = new_key(workspace_id, old.name, now)
    session.add(new.key)
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise KeyRevoked()
    set_committed_value(old, "revoked_at", now)
    await session.flush()
    _log(
        session,
        new.key,
        "key_rotated",
        f"API key {old.prefix} ({old.name}) rotated: replaced by {new.key.prefix}",
        actor,
        now,
    )
    return new


def new_key(workspace_id: str, name: str, now: datetime) -> NewKey:
    """A fresh secret and the row that stores its hash (not yet added to a session)."""
    secret = crypto.new_api_key()
    key = ApiKey(
        workspace_id=workspace_id,
        name=name,
        prefix=crypto.api_key_lookup_prefix(secret),
        key_hash=crypto.hash_api_key(secret),
        created_at=now,
    )
    return NewKey(key=key, secret=secret)


async def _lock_workspace(session: AsyncSession, workspace_id: str) -> None:
    """PostgreSQL: serialise key changes per workspace (SQLite has one writer anyway).
    NO KEY UPDATE: inserts of the workspace's posts and accounts (their FK checks) go on."""
    await session.execute(
        select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True)
    )


async def _active_key(session: AsyncSession, workspace_id: str, key_id: str) -> ApiKey:
    key = (
        await session.execute(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()
    if key is None:
        raise KeyNotFound(f"API key {key_id} does not exist in this workspace")
    await session.refresh(key)  # the row as it is now, after the workspace lock
    if key.revoked_at is not None:
        raise KeyRevoked(f"API key {key.prefix} is already revoked")
    return key


def _log(
    session: AsyncSession, key: ApiKey, event: str, detail: str, actor: str, now: datetime
) -> None:
    session.add(
        Activity(
            workspace_id=key.workspace_id,
            at=now,
            event=event,
            detail=detail,
            actor=actor,
        )
    )
