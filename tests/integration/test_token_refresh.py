"""Token refresh through a pass (X and Matrix against the sandbox): on an expired-token answer,
before expiry (a tenth of the token's lifetime), once per account however many deliveries and
workers ask, with the credentials another worker stored, and what a failed refresh does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from postpilot.publishers.base import AccountContext
from postpilot.publishers.registry import PUBLISHERS
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.engine import PassState
from postpilot.scheduler.passes import run_pass
from postpilot.scheduler.renewal import Held, Renewals
from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery
from tests.factories import cipher, due_posts, workspace_with_accounts
from tests.helpers import make_settings


@pytest.fixture
async def runtime(any_db: Database, sandbox: SandboxClient) -> AsyncIterator[ServiceRuntime]:
    rt = build_runtime(make_settings(any_db, sandbox), db=any_db)
    yield rt
    await rt.close()


async def x_account(
    runtime: ServiceRuntime, sandbox: SandboxClient
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
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
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
    runtime: ServiceRuntime, sandbox: SandboxClient
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
    runtime: ServiceRuntime, sandbox: SandboxClient, caplog: pytest.LogCaptureFixture
) -> None:
    workspace, account, tokens = await x_account(runtime, sandbox)
    await due_posts(runtime.db, workspace, [account], count=2, at=datetime.now(UTC))
    before = (await stored(runtime.db)).credentials
    sandbox.expire_token(tokens["access_token"])
    sandbox.revoke(tokens["refresh_token"])
    with caplog.at_level(logging.INFO, logger="postpilot.scheduler.passes"):
        report = await run_pass(runtime, scheduler="optimized")
    assert report.failed == 2
    # The account's change is said once, as a warning; so is each delivery that failed.
    (reconnect,) = [r for r in caplog.records if r.getMessage().startswith("account needs")]
    assert (reconnect.levelno, getattr(reconnect, "account_id", None)) == (
        logging.WARNING,
        account.id,
    )
    failed = [r for r in caplog.records if r.getMessage() == "delivery failed"]
    assert [r.levelno for r in failed] == [logging.WARNING] * 2
    after = await stored(runtime.db)
    assert after.status == "needs_reconnect"
    assert after.credentials == before, "a failed refresh never overwrites stored tokens"
    async with runtime.db.session() as session:
        errors = (await session.execute(select(Delivery.last_error))).scalars().all()
    assert all(e and "token refresh failed" in e and "reconnect the account" in e for e in errors)


async def test_refresh_that_cannot_reach_the_platform_is_retried_later(
    runtime: ServiceRuntime, sandbox: SandboxClient
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


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_one_rejected_token_does_not_fail_the_accounts_other_deliveries(
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, account, _tokens = await x_account(runtime, sandbox)
    await due_posts(runtime.db, workspace, [account], count=3, at=datetime.now(UTC))
    # The first delivery is rejected, renews, and is rejected again with the renewed token.
    sandbox.inject("expired_token", "x", step="publish", remaining=2)
    report = await run_pass(runtime, scheduler=scheduler, limit=10, concurrency=1)
    assert (report.retried, report.failed) == (1, 0)
    after = await stored(runtime.db)
    assert after.status == "active" and after.credentials_version == 2
    assert token_requests(sandbox) == 1
    await run_pass(runtime, scheduler=scheduler, limit=10, concurrency=1)
    async with runtime.db.session() as session:
        statuses = (await session.execute(select(Delivery.status))).scalars().all()
    assert statuses == ["published"] * 3 and len(sandbox.records("x")) == 3


async def test_a_five_minute_token_is_not_renewed_on_every_pass(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    tokens = sandbox.issue_token("x", "alice", expires_in=300)
    now = datetime.now(UTC)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client_id": "postpilot-app",
        "token_issued_at": (now - timedelta(minutes=1)).isoformat(),
    }
    workspace, (account,) = await workspace_with_accounts(
        runtime.db, sandbox, platform="x", credentials=credentials
    )
    async with runtime.db.transaction() as session:
        await session.execute(update(Account).values(token_expires_at=now + timedelta(minutes=4)))
    await due_posts(runtime.db, workspace, [account], count=1, at=now)
    report = await run_pass(runtime, scheduler="optimized")
    assert report.published == 1
    assert token_requests(sandbox) == 0, "4 of 5 minutes left: far from the end of its life"
    assert (await stored(runtime.db)).credentials_version == 1


async def test_renewal_stamps_the_lifetime_so_the_next_pass_does_not_renew(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    sandbox.configure(access_token_ttl={"x": 300})
    workspace, account, tokens = await x_account(runtime, sandbox)
    await due_posts(runtime.db, workspace, [account], count=1, at=datetime.now(UTC))
    sandbox.expire_token(tokens["access_token"])
    assert (await run_pass(runtime, scheduler="optimized")).published == 1
    after = await stored(runtime.db)
    assert cipher.decrypt(after.credentials)["token_issued_at"]
    await due_posts(runtime.db, workspace, [account], count=1, at=datetime.now(UTC), text="next")
    assert (await run_pass(runtime, scheduler="optimized")).published == 1
    assert token_requests(sandbox) == 1


async def test_credentials_another_worker_stored_are_used_not_renewed_again(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    """A worker holding credentials that another worker has since renewed (the refresh token it
    holds is spent, its access token revoked) takes the stored ones, on rejection and before
    expiry, without asking the platform again."""
    sandbox.configure(refresh_revokes_access=True)
    workspace, account, tokens = await x_account(runtime, sandbox)
    stale = await held_now(runtime)
    other = build_runtime(runtime.settings, db=runtime.db)  # another worker: its own caches
    try:
        await due_posts(runtime.db, workspace, [account], count=1, at=datetime.now(UTC))
        sandbox.expire_token(tokens["access_token"])
        assert (await run_pass(other, scheduler="optimized")).published == 1
    finally:
        await other.close()
    assert token_requests(sandbox) == 1
    publisher = PUBLISHERS["x"]
    rejected = await PassState(runtime, "p").tokens.after_rejection(publisher, stale)
    expiring = replace(stale.account, token_expires_at=datetime.now(UTC))
    due = await PassState(runtime, "p").tokens.before_expiry(
        publisher, replace(stale, account=expiring)
    )
    stored_now = cipher.decrypt((await stored(runtime.db)).credentials)
    for fresh in (rejected, due):
        assert isinstance(fresh, Held) and fresh.version == 2
        assert fresh.account.credentials["access_token"] == stored_now["access_token"]
    assert token_requests(sandbox) == 1


async def test_a_stale_change_never_overwrites_newer_credentials(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    _workspace, account, _tokens = await x_account(runtime, sandbox)
    now = datetime.now(UTC)
    async with runtime.db.engine.begin() as conn:
        first = await work.swap_credentials(
            conn,
            account.id,
            expected_version=1,
            credentials=cipher.encrypt({"a": 1}),
            token_expires_at=None,
            now=now,
        )
        second = await work.swap_credentials(
            conn,
            account.id,
            expected_version=1,
            credentials=cipher.encrypt({"a": 2}),
            token_expires_at=None,
            now=now,
        )
        await work.apply_account_changes(
            conn,
            [work.AccountChange(account.id, needs_reconnect="old", credentials_version=1)],
            now=now,
        )
    assert (first, second) == (True, False)
    after = await stored(runtime.db)
    assert cipher.decrypt(after.credentials) == {"a": 1} and after.credentials_version == 2
    assert after.status == "active", "a refusal of credentials since replaced marks nothing"


async def held_now(runtime: ServiceRuntime) -> Held:
    account = await stored(runtime.db)
    context = AccountContext(
        id=account.id,
        platform=account.platform,
        handle=account.handle,
        base_url=account.base_url,
        options=account.options,
        credentials=cipher.decrypt(account.credentials),
        token_expires_at=account.token_expires_at,
    )
    return Held(context, account.credentials_version)


@pytest.mark.parametrize("platform", ["x", "matrix"])
async def test_concurrent_passes_renew_a_rotating_token_once(
    pg_db: Database, sandbox: SandboxClient, platform: str
) -> None:
    """Two workers (two runtimes on one PostgreSQL database) find the account's token rejected
    at once. The platform rotates refresh tokens and revokes the access token a refresh
    replaces; Matrix answers a spent refresh token with 404. One renews, the other waits on the
    account's row and takes the stored token: nothing fails, one refresh."""
    sandbox.configure(refresh_revokes_access=True, matrix_spent_refresh_status=404, latency_ms=30)
    subject = "@bot:sandbox.test" if platform == "matrix" else "alice"
    tokens = sandbox.issue_token(platform, subject)
    credentials = {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}
    if platform == "x":
        credentials["client_id"] = "postpilot-app"
    workspace, accounts = await workspace_with_accounts(
        pg_db,
        sandbox,
        platform=platform,
        credentials=credentials,
        options={"room_id": "!room:sandbox.test"} if platform == "matrix" else None,
    )
    await due_posts(pg_db, workspace, accounts, count=8, at=datetime.now(UTC))
    sandbox.expire_token(tokens["access_token"])
    workers = [build_runtime(make_settings(pg_db, sandbox), db=pg_db) for _ in range(2)]
    try:
        reports = await asyncio.gather(
            *(run_pass(w, scheduler="optimized", limit=4, concurrency=4) for w in workers)
        )
    finally:
        for w in workers:
            await w.close()
    assert [r.published for r in reports] == [4, 4]
    grants = [r for r in sandbox.requests(platform) if r["path"].endswith(REFRESH_PATH[platform])]
    assert [g["status"] for g in grants] == [200]
    after = await stored(pg_db)
    assert after.status == "active" and after.credentials_version == 2


REFRESH_PATH = {"x": "/2/oauth2/token", "matrix": "/_matrix/client/v3/refresh"}


async def test_spent_refresh_token_after_another_process_renewed_takes_the_stored_one(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    """SQLite has no row lock: another process may renew between our read and our refresh.
    The homeserver then answers our spent refresh token with 404 M_UNKNOWN_TOKEN; we re-read
    and use what the other process stored, and nothing is declared dead."""
    sandbox.configure(matrix_spent_refresh_status=404)
    issued = sandbox.issue_token("matrix", "@bot:sandbox.test")
    credentials = {"access_token": issued["access_token"], "refresh_token": issued["refresh_token"]}
    await workspace_with_accounts(
        sqlite_db,
        sandbox,
        platform="matrix",
        credentials=credentials,
        options={"room_id": "!room:sandbox.test"},
    )
    ours = build_runtime(make_settings(sqlite_db, sandbox), db=sqlite_db)
    theirs = build_runtime(make_settings(sqlite_db, sandbox), db=sqlite_db)
    stale = await held_now(ours)
    matrix = PUBLISHERS["matrix"]

    class RenewedMeanwhile:
        platform, recovery, can_refresh = matrix.platform, matrix.recovery, True
        publish = matrix.publish

        async def refresh(self, account: AccountContext, ctx: Any) -> Any:
            assert isinstance(await Renewals(theirs).after_rejection(matrix, stale), Held)
            return await matrix.refresh(account, ctx)

    try:
        renewals = Renewals(ours)
        fresh = await renewals.after_rejection(RenewedMeanwhile(), stale)
    finally:
        await ours.close()
        await theirs.close()
    grants = [r["status"] for r in sandbox.requests("matrix") if r["path"].endswith("/refresh")]
    assert grants == [200, 404]
    after = await stored(sqlite_db)
    assert isinstance(fresh, Held) and fresh.version == after.credentials_version == 2
    assert fresh.account.credentials == cipher.decrypt(after.credentials)
    assert after.status == "active"


async def test_a_renewal_is_stored_at_once_not_with_the_pass_outcomes(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    """The refresh token it replaced is spent: the new pair must outlive a pass that dies."""
    _workspace, _account, tokens = await x_account(runtime, sandbox)
    sandbox.expire_token(tokens["access_token"])
    renewed = await PassState(runtime, "p").tokens.after_rejection(
        PUBLISHERS["x"], await held_now(runtime)
    )
    after = await stored(runtime.db)
    assert isinstance(renewed, Held) and after.credentials_version == renewed.version == 2
    assert cipher.decrypt(after.credentials) == renewed.account.credentials
    assert after.token_expires_at is not None
