"""Signed-in browsers and failed sign-ins.

A session's cookie holds a random secret; only its hash is stored, so a copy of the database
signs no one in. Failed sign-ins are rows, so the rate limit holds across every process."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from postpilot.core.roles import Role
from postpilot.store.tables import LoginFailure, Membership, User, WebSession, Workspace
from postpilot.store.users import token_hash


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who a session cookie belongs to, in which workspace, with which role there."""

    session: WebSession
    user: User
    workspace: Workspace
    role: Role
    secret: str

    @property
    def actor(self) -> str:
        return f"user:{self.user.email}"[:64]


@dataclass(frozen=True, slots=True)
class Failures:
    by_email: int
    by_ip: int


async def start(
    session: AsyncSession, *, user_id: str, workspace_id: str, now: datetime, lifetime: timedelta
) -> str:
    """A new session; returns the cookie's secret (shown to the browser only). The user's
    expired sessions go on the way, so the table holds live ones and a few more."""
    await session.execute(
        delete(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at <= now)
    )
    secret = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            secret_hash=token_hash(secret),
            user_id=user_id,
            workspace_id=workspace_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.flush()
    return secret


async def signed_in(session: AsyncSession, secret: str, now: datetime) -> SignedIn | None:
    """The live session a cookie names. Membership is read each time: a removed member or a
    changed role takes effect on the next request."""
    row = (
        await session.execute(
            select(WebSession, User, Workspace, Membership.role)
            .join(User, User.id == WebSession.user_id)
            .join(Workspace, Workspace.id == WebSession.workspace_id)
            .join(
                Membership,
                (Membership.user_id == WebSession.user_id)
                & (Membership.workspace_id == WebSession.workspace_id),
            )
            .where(WebSession.secret_hash == token_hash(secret), WebSession.expires_at > now)
        )
    ).one_or_none()
    if row is None:
        return None
    web, user, workspace, role = row
    return SignedIn(session=web, user=user, workspace=workspace, role=Role(role), secret=secret)


async def move(session: AsyncSession, secret: str, workspace_id: str) -> None:
    """Act in another workspace from now on (the caller checked the membership)."""
    await session.execute(
        update(WebSession)
        .where(WebSession.secret_hash == token_hash(secret))
        .values(workspace_id=workspace_id)
    )


async def end(session: AsyncSession, secret: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.secret_hash == token_hash(secret)))


async def end_all_of(session: AsyncSession, user_id: str, *, keep: str | None = None) -> int:
    """Sign the user out everywhere (a password changed or reset), except the session whose
    secret is `keep`; returns how many sessions ended."""
    where = [WebSession.user_id == user_id]
    if keep is not None:
        where.append(WebSession.secret_hash != token_hash(keep))
    result = await session.execute(delete(WebSession).where(*where))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def record_failure(session: AsyncSession, *, email: str, ip: str, now: datetime) -> None:
    session.add(LoginFailure(email=email.strip().lower()[:320], ip=ip[:64], at=now))
    await session.flush()


async def failures_since(
    session: AsyncSession, *, email: str, ip: str, since: datetime
) -> Failures:
    def count(*where: ColumnElement[bool]) -> ScalarSelect[int]:
        return select(func.count()).select_from(LoginFailure).where(*where).scalar_subquery()

    row = (
        await session.execute(
            select(
                count(LoginFailure.email == email.strip().lower(), LoginFailure.at > since),
                count(LoginFailure.ip == ip, LoginFailure.at > since),
            )
        )
    ).one()
    return Failures(by_email=int(row[0]), by_ip=int(row[1]))


async def forget_failures(session: AsyncSession, *, email: str, before: datetime) -> None:
    """After a successful sign-in, that email's failures no longer count; rows older than the
    window are dropped on the way."""
    await session.execute(
        delete(LoginFailure).where(
            (LoginFailure.email == email.strip().lower()) | (LoginFailure.at <= before)
        )
    )
