"""People: users, their workspace memberships and roles, and invitations by link.

Every change to a membership is an activity entry naming who made it. A workspace always keeps
an owner: the last one can be neither removed nor demoted (LastOwner)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core.roles import Role
from postpilot.errors import PostpilotError
from postpilot.store.tables import Activity, FirstRun, Invitation, Membership, User, Workspace

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class PeopleRefused(PostpilotError):
    """The change to people or memberships was refused."""


class InvalidEmail(PeopleRefused):
    """That is not an email address."""


class EmailTaken(PeopleRefused):
    """A user with this email already exists."""


class NotAMember(PeopleRefused):
    """No such member in this workspace."""


class AlreadyMember(PeopleRefused):
    """This person is already a member of the workspace: change their role instead."""


class LastOwner(PeopleRefused):
    """This is the workspace's last owner: make someone else an owner first."""


@dataclass(frozen=True, slots=True)
class Member:
    user: User
    role: Role
    since: datetime


@dataclass(frozen=True, slots=True)
class NewInvitation:
    invitation: Invitation
    token: str  # goes in the link, shown once; only its hash is stored


def normalize_email(email: str) -> str:
    """The stored form; raises InvalidEmail."""
    cleaned = email.strip().lower()
    if len(cleaned) > 320 or not _EMAIL.fullmatch(cleaned):
        raise InvalidEmail(f"{email.strip()!r} is not an email address")
    return cleaned


def token_hash(token: str) -> str:
    # Tokens are 256 random bits: a fast hash is enough (as for API keys).
    return hashlib.sha256(token.encode()).hexdigest()


async def any_user(session: AsyncSession) -> bool:
    return (await session.execute(select(User.id).limit(1))).first() is not None


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    found = await session.execute(select(User).where(User.email == email.strip().lower()))
    return found.scalar_one_or_none()


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, now: datetime
) -> User:
    user = User(email=normalize_email(email), password_hash=password_hash, created_at=now)
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:
        raise EmailTaken(f"a user with the email {user.email} already exists") from exc
    return user


async def claim_first_run(session: AsyncSession, now: datetime) -> bool:
    """Insert the first-run guard's one row; False when another submission inserted it. Call it
    first in the transaction: on PostgreSQL a second insert waits for the first transaction's
    end, on SQLite for the write lock, and then fails on the primary key."""
    try:
        async with session.begin_nested():
            session.add(FirstRun(id=1, done_at=now))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def update_profile(
    session: AsyncSession, user_id: str, *, name: str | None, timezone: str | None
) -> None:
    """A user's own name and time zone (the caller checked the zone is a real one)."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(name=name, timezone=timezone)
        .execution_options(synchronize_session=False)
    )


async def set_password(session: AsyncSession, user_id: str, password_hash: str) -> None:
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(password_hash=password_hash)
        .execution_options(synchronize_session=False)
    )


async def membership(session: AsyncSession, user_id: str, workspace_id: str) -> Membership | None:
    return await session.get(Membership, (user_id, workspace_id))


async def first_membership(session: AsyncSession, user_id: str) -> Membership | None:
    found = await session.execute(
        select(Membership)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Membership.workspace_id)
        .limit(1)
    )
    return found.scalar_one_or_none()


async def workspaces_of(session: AsyncSession, user_id: str) -> list[tuple[Workspace, Role]]:
    rows = await session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name, Workspace.id)
    )
    return [(workspace, Role(role)) for workspace, role in rows]


async def add_membership(
    session: AsyncSession,
    *,
    user: User,
    workspace_id: str,
    role: Role,
    actor: str,
    now: datetime,
) -> Membership:
    """Add `user` with `role`; when already a member, change the role (the last owner stays)."""
    current = await membership(session, user.id, workspace_id)
    if current is not None:
        if current.role != role:
            await change_role(
                session, workspace_id=workspace_id, user_id=user.id, role=role, actor=actor, now=now
            )
            await session.refresh(current)
        return current
    current = Membership(user_id=user.id, workspace_id=workspace_id, role=role, created_at=now)
    session.add(current)
    await session.flush()
    _log(session, workspace_id, "member_added", f"{user.email} joined as {role}", actor, now)
    return current


async def members(session: AsyncSession, workspace_id: str) -> list[Member]:
    rows = await session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.email)
    )
    return [Member(user=u, role=Role(m.role), since=m.created_at) for u, m in rows]


async def change_role(
    session: AsyncSession,
    *,
    workspace_id: str,
    user_id: str,
    role: Role,
    actor: str,
    now: datetime,
) -> Member:
    member = await _member(session, workspace_id, user_id)
    if member.role == Role.OWNER and role != Role.OWNER:
        await _keep_an_owner(session, workspace_id, user_id)
    await session.execute(
        update(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        .values(role=role)
        .execution_options(synchronize_session="fetch")
    )
    detail = f"{member.user.email}: {member.role} -> {role}"
    _log(session, workspace_id, "member_role_changed", detail, actor, now)
    return Member(user=member.user, role=role, since=member.since)


async def remove_member(
    session: AsyncSession, *, workspace_id: str, user_id: str, actor: str, now: datetime
) -> Member:
    member = await _member(session, workspace_id, user_id)
    if member.role == Role.OWNER:
        await _keep_an_owner(session, workspace_id, user_id)
    found = await membership(session, user_id, workspace_id)
    if found is not None:
        await session.delete(found)
        await session.flush()
    _log(session, workspace_id, "member_removed", f"{member.user.email} removed", actor, now)
    return member


async def all_users(session: AsyncSession) -> list[tuple[User, str | None, Role | None]]:
    """Every user with each workspace name and role (None, None when in no workspace)."""
    rows = await session.execute(
        select(User, Workspace.name, Membership.role)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Workspace, Workspace.id == Membership.workspace_id)
        .order_by(User.email, Workspace.name)
    )
    return [(u, name, Role(role) if role else None) for u, name, role in rows]


async def create_invitation(
    session: AsyncSession,
    *,
    workspace_id: str,
    email: str,
    role: Role,
    actor: str,
    now: datetime,
    lifetime: timedelta,
) -> NewInvitation:
    email = normalize_email(email)
    existing = await session.execute(
        select(Membership.user_id)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email, Membership.workspace_id == workspace_id)
    )
    if existing.first() is not None:
        raise AlreadyMember(f"{email} is already a member: change their role in the list")
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        token_hash=token_hash(token),
        workspace_id=workspace_id,
        email=email,
        role=role,
        invited_by=actor[:64],
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(invitation)
    await session.flush()
    detail = f"{invitation.email} invited as {role}"
    _log(session, workspace_id, "member_invited", detail, actor, now)
    return NewInvitation(invitation=invitation, token=token)


async def open_invitation(session: AsyncSession, token: str, now: datetime) -> Invitation | None:
    """The invitation a link's token names, if still unused and unexpired."""
    found = await session.execute(
        select(Invitation).where(
            Invitation.token_hash == token_hash(token),
            Invitation.used_at.is_(None),
            Invitation.expires_at > now,
        )
    )
    return found.scalar_one_or_none()


async def use_invitation(session: AsyncSession, invitation: Invitation, now: datetime) -> bool:
    """Mark it used; False when another request used it first (one conditional UPDATE)."""
    result = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def pending_invitations(
    session: AsyncSession, workspace_id: str, now: datetime
) -> list[Invitation]:
    found = await session.execute(
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.used_at.is_(None),
            Invitation.expires_at > now,
        )
        .order_by(Invitation.created_at)
    )
    return list(found.scalars())


async def _member(session: AsyncSession, workspace_id: str, user_id: str) -> Member:
    # PostgreSQL: serialise membership changes per workspace, so two owners cannot demote each
    # other at once (SQLite has one writer anyway).
    await session.execute(
        select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True)
    )
    row = (
        await session.execute(
            select(User, Membership)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise NotAMember(f"user {user_id} is not a member of this workspace")
    user, found = row
    return Member(user=user, role=Role(found.role), since=found.created_at)


async def _keep_an_owner(session: AsyncSession, workspace_id: str, leaving: str) -> None:
    others = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.workspace_id == workspace_id,
            Membership.role == Role.OWNER.value,
            Membership.user_id != leaving,
        )
    )
    if not others:
        raise LastOwner()


def _log(
    session: AsyncSession, workspace_id: str, event: str, detail: str, actor: str, now: datetime
) -> None:
    session.add(
        Activity(workspace_id=workspace_id, at=now, event=event, detail=detail, actor=actor[:64])
    )
