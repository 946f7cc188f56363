"""The people store on SQLite and PostgreSQL: unique emails, the last owner kept, invitations
used once, sessions that expire or end with the membership, failed sign-ins counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from postpilot.core.roles import Role
from postpilot.store import users, web_sessions
from postpilot.store.database import Database
from postpilot.store.tables import WebSession
from tests.helpers import new_workspace

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def person(db: Database, workspace_id: str, email: str, role: Role) -> str:
    async with db.transaction() as session:
        user = await users.create_user(session, email=email, password_hash="x", now=NOW)
        await users.add_membership(
            session, user=user, workspace_id=workspace_id, role=role, actor="test", now=NOW
        )
        return user.id


async def test_emails_are_unique_whatever_their_case(any_db: Database) -> None:
    workspace, _ = await new_workspace(any_db)
    await person(any_db, workspace, "Ann@Example.com", Role.OWNER)
    with pytest.raises(users.EmailTaken):
        async with any_db.transaction() as session:
            await users.create_user(session, email="ann@example.COM ", password_hash="x", now=NOW)
    with pytest.raises(users.InvalidEmail):
        users.normalize_email("ann at example.com")


async def test_the_last_owner_can_be_neither_demoted_nor_removed(any_db: Database) -> None:
    workspace, _ = await new_workspace(any_db)
    ann = await person(any_db, workspace, "ann@example.com", Role.OWNER)
    bob = await person(any_db, workspace, "bob@example.com", Role.OWNER)
    async with any_db.transaction() as session:
        await users.change_role(
            session, workspace_id=workspace, user_id=bob, role=Role.ADMIN, actor="t", now=NOW
        )
    for change in ("demote", "remove"):
        with pytest.raises(users.LastOwner):
            async with any_db.transaction() as session:
                if change == "demote":
                    await users.change_role(
                        session,
                        workspace_id=workspace,
                        user_id=ann,
                        role=Role.EDITOR,
                        actor="t",
                        now=NOW,
                    )
                else:
                    await users.remove_member(
                        session, workspace_id=workspace, user_id=ann, actor="t", now=NOW
                    )
    async with any_db.session() as session:
        roles = {m.user.email: m.role for m in await users.members(session, workspace)}
    assert roles == {"ann@example.com": Role.OWNER, "bob@example.com": Role.ADMIN}


async def test_an_invitation_is_used_once_and_expires(any_db: Database) -> None:
    workspace, _ = await new_workspace(any_db)
    async with any_db.transaction() as session:
        made = await users.create_invitation(
            session,
            workspace_id=workspace,
            email="New@example.com",
            role=Role.EDITOR,
            actor="t",
            now=NOW,
            lifetime=HOUR,
        )
    assert made.invitation.email == "new@example.com"
    async with any_db.transaction() as session:
        assert await users.open_invitation(session, made.token, NOW + 2 * HOUR) is None
        found = await users.open_invitation(session, made.token, NOW)
        assert found is not None
        assert await users.use_invitation(session, found, NOW)
        assert not await users.use_invitation(session, found, NOW)
        assert await users.open_invitation(session, made.token, NOW) is None


async def test_sessions_expire_and_end_with_the_membership(any_db: Database) -> None:
    workspace, _ = await new_workspace(any_db)
    ann = await person(any_db, workspace, "ann@example.com", Role.OWNER)
    bob = await person(any_db, workspace, "bob@example.com", Role.EDITOR)
    async with any_db.transaction() as session:
        old = await web_sessions.start(
            session, user_id=bob, workspace_id=workspace, now=NOW - 3 * HOUR, lifetime=HOUR
        )
        secret = await web_sessions.start(
            session, user_id=bob, workspace_id=workspace, now=NOW, lifetime=HOUR
        )
        # Starting one dropped the expired one.
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 1
    async with any_db.session() as session:
        assert await web_sessions.signed_in(session, old, NOW) is None
        signed = await web_sessions.signed_in(session, secret, NOW)
        assert signed is not None and signed.role == Role.EDITOR
        assert signed.actor == "user:bob@example.com"
        assert await web_sessions.signed_in(session, secret, NOW + 2 * HOUR) is None
    async with any_db.transaction() as session:
        await users.remove_member(session, workspace_id=workspace, user_id=bob, actor=ann, now=NOW)
    async with any_db.session() as session:
        assert await web_sessions.signed_in(session, secret, NOW) is None


async def test_failed_sign_ins_are_counted_per_email_and_address(any_db: Database) -> None:
    async with any_db.transaction() as session:
        for i, (email, ip) in enumerate(
            [("a@x.io", "1.1.1.1"), ("A@x.io", "2.2.2.2"), ("b@x.io", "1.1.1.1")]
        ):
            await web_sessions.record_failure(session, email=email, ip=ip, now=NOW + i * HOUR)
    async with any_db.transaction() as session:
        since_start = await web_sessions.failures_since(
            session, email="a@x.io", ip="1.1.1.1", since=NOW - HOUR
        )
        assert (since_start.by_email, since_start.by_ip) == (2, 2)
        recent = await web_sessions.failures_since(
            session, email="a@x.io", ip="1.1.1.1", since=NOW + HOUR / 2
        )
        assert (recent.by_email, recent.by_ip) == (1, 1)
        await web_sessions.forget_failures(session, email="a@x.io", before=NOW - HOUR)
        after = await web_sessions.failures_since(
            session, email="a@x.io", ip="1.1.1.1", since=NOW - HOUR
        )
        assert (after.by_email, after.by_ip) == (0, 1)


async def test_members_are_not_invited_again_nor_demoted_past_the_last_owner(
    any_db: Database,
) -> None:
    workspace, _ = await new_workspace(any_db)
    await person(any_db, workspace, "ann@example.com", Role.OWNER)
    with pytest.raises(users.AlreadyMember):
        async with any_db.transaction() as session:
            await users.create_invitation(
                session,
                workspace_id=workspace,
                email="ANN@example.com",
                role=Role.VIEWER,
                actor="t",
                now=NOW,
                lifetime=HOUR,
            )
    with pytest.raises(users.LastOwner):
        async with any_db.transaction() as session:
            ann = await users.user_by_email(session, "ann@example.com")
            assert ann is not None
            await users.add_membership(
                session, user=ann, workspace_id=workspace, role=Role.VIEWER, actor="t", now=NOW
            )
