"""Token refresh through a pass (X against the sandbox): on an expired-token answer, before
expiry, once per account however many deliveries ask, and what a failed refresh does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.scheduler.runtime import Runtime
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery
from tests.factories import cipher, due_posts, workspace_with_accounts
from tests.helpers import make_settings


@pytest.fixture
async def runtime(any_db: Database, sandbox: SandboxClient) -> AsyncIterator[Runtime]:
    rt = Runtime.open(make_settings(any_db, sandbox), db=any_db)
    yield rt
    await rt.close()


async def x_account(
    runtime: Runtime, sandbox: SandboxClient
) -> tuple[str, Account, dict[str, Any]]:
    tokens = sandbox.issue_token("x", "alice")
    workspace, (account,) = await workspace_with_accounts(
        runtime.db,
        sandbox,
        platform="x",
        credentials={
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "client_id": "postpilot-app",
        },
    )
    return workspace, account, tokens


async def stored(db: Database) -> Account:
    async with db.session() as session:
        return (await session.execute(select(Account))).scalar_one()


def token_requests(sandbox: SandboxClient) -> int:
    return sum(1 for r in sandbox.requests("x") if r["path"].endswith("/2/oauth2/token"))


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_expired_token_is_refreshed_once_and_stored(
    runtime: Runtime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, account, tokens = await x_account(runtime, sandbox)
    await due_posts(runtime.db, workspace, [account], count=3, at=datetime.now(UTC))
    sandbox.expire_token(tokens["access_token"])
    report = await run_pass(runtime, scheduler=scheduler, limit=10, concurrency=3)
    assert report.published == 3
    assert token_requests(sandbox) == 1, "rotating refresh tokens allow one refresh"
    after = await stored(runtime.db)
    assert after.credentials_version == 2 and after.status == "active"
    credentials = cipher.decrypt(after.credentials)
    assert credentials["access_token"] != tokens["access_token"]
    assert credentials["refresh_token"] not in ("", tokens["refresh_token"])
    assert len(sandbox.records("x")) == 3


async def test_token_close_to_expiry_is_refreshed_before_publishing(
    runtime: Runtime, sandbox: SandboxClient
) -> None:
    workspace, account, _tokens = await x_account(runtime, sandbox)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Account).values(token_expires_at=datetime.now(UTC) + timedelta(minutes=1))
        )
    await due_posts(runtime.db, workspace, [account], count=1, at=datetime.now(UTC))
    report = await run_pass(runtime, scheduler="optimized")
    assert report.published == 1
    paths = [r["path"] for r in sandbox.requests("x")]
    assert paths.index("/x/2/oauth2/token") < paths.index("/x/2/tweets")
    assert all(r["status"] != 401 for r in sandbox.requests("x"))
    assert (await stored(runtime.db)).token_expires_at is not None


async def test_refused_refresh_fails_deliveries_and_asks_for_a_reconnect(
    runtime: Runtime, sandbox: SandboxClient
) -> None:
    workspace, account, tokens = await x_account(runtime, sandbox)
    await due_posts(runtime.db, workspace, [account], count=2, at=datetime.now(UTC))
    before = (await stored(runtime.db)).credentials
    sandbox.expire_token(tokens["access_token"])
    sandbox.revoke(tokens["refresh_token"])
    report = await run_pass(runtime, scheduler="optimized")
    assert report.failed == 2
    after = await stored(runtime.db)
    assert after.status == "needs_reconnect"
    assert after.credentials == before, "a failed refresh never overwrites stored tokens"
    async with runtime.db.session() as session:
        errors = (await session.execute(select(Delivery.last_error))).scalars().all()
    assert all(e and "token refresh failed" in e and "reconnect the account" in e for e in errors)


async def test_refresh_that_cannot_reach_the_platform_is_retried_later(
    runtime: Runtime, sandbox: SandboxClient
) -> None:
    workspace, account, tokens = await x_account(runtime, sandbox)
    await due_posts(runtime.db, workspace, [account], count=1, at=datetime.now(UTC))
    sandbox.expire_token(tokens["access_token"])
    sandbox.inject("unavailable", "x", step="refresh")
    report = await run_pass(runtime, scheduler="optimized", limit=1)
    assert report.retried == 1
    assert (await stored(runtime.db)).status == "active"
    again = await run_pass(runtime, scheduler="optimized", limit=1)
    assert again.published == 1
