"""Several `postpilot worker` processes publish to one X account on one PostgreSQL database while
its access tokens live 2 s and every refresh spends its refresh token and revokes the access
token it replaces: the account is renewed once per rotation, whichever worker gets there first,
and every other worker takes the stored token instead of renewing again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery, WorkerHeartbeat
from tests.factories import cipher, due_posts, workspace_with_accounts
from tests.helpers import TEST_SECRET_KEY
from tests.waiting import wait_until

WORKERS = 3
BURSTS, BURST_SIZE = 9, 12  # every worker takes part of each burst: they meet at every renewal
POSTS = BURSTS * BURST_SIZE
# 6.4 s of bursts once the workers are up: with 2 s tokens, a renewal at least every 2.6 s
BURST_EVERY = timedelta(seconds=0.8)
TOKEN_SECONDS = 2


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def worker_env(db: Database, sandbox: SandboxClient, journal: Path) -> dict[str, str]:
    port = sandbox.url.rsplit(":", 1)[1]
    return {
        **os.environ,
        "DATABASE_URL": db.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SANDBOX_URL": sandbox.url,
        "JOURNAL_DIR": str(journal),
        "MEDIA_ALLOWED_HOSTS": f"127.0.0.1:{port}",
        "SCHEDULER_RETRY_BASE_SECONDS": "0",
        "SCHEDULER_BATCH_SIZE": "4",
        "SCHEDULER_CONCURRENCY": "4",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }


async def settled(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        )
        return dict(rows.all())


async def running_workers(db: Database) -> int:
    async with db.session() as session:
        query = select(func.count()).where(WorkerHeartbeat.state == "running")
        return int((await session.execute(query)).scalar_one())


async def test_workers_share_a_rotating_refresh_token(
    pg_db: Database,
    sandbox: SandboxClient,
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    sandbox.configure(
        access_token_ttl={"x": TOKEN_SECONDS},
        x_refresh_rotates=True,
        refresh_revokes_access=True,
        rate_limit=100_000,
        latency_ms=30,
    )
    command = [sys.executable, "-m", "postpilot.cli.main", "worker", "--processes", "1"]
    env = worker_env(pg_db, sandbox, tmp_path / "journal")
    workers.extend(subprocess.Popen(command, env=env, cwd=tmp_path) for _ in range(WORKERS))

    async def all_up() -> bool:  # the schedule starts once every worker is up
        assert all(w.poll() is None for w in workers), "a worker died"
        return await running_workers(pg_db) >= WORKERS

    # Generous: four interpreters start at once, on a machine the rest of the suite keeps busy.
    await wait_until(all_up, timeout=45, every=0.1)

    # Connected without an expiry: the first token ends with 401s at every worker at once
    # (renewed by one, taken from the database by the others); later ones are renewed ahead.
    tokens = sandbox.issue_token("x", "alice")
    now = datetime.now(UTC)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client_id": "postpilot-app",
    }
    workspace, accounts = await workspace_with_accounts(
        pg_db, sandbox, platform="x", credentials=credentials
    )
    start = now + timedelta(seconds=1)
    for burst in range(BURSTS):
        at = start + burst * BURST_EVERY
        await due_posts(pg_db, workspace, accounts, count=BURST_SIZE, at=at, text=f"b{burst}")

    counts: dict[str, int] = {}

    async def all_settled() -> bool:
        assert all(w.poll() is None for w in workers), "a worker died"
        counts.update(await settled(pg_db))
        return counts.get("published", 0) + counts.get("failed", 0) >= POSTS

    await wait_until(all_settled, timeout=20, every=0.2, what=lambda: f"settled: {counts}")
    for process in workers:
        process.send_signal(signal.SIGTERM)
    for process in workers:
        process.wait(timeout=20)

    assert await settled(pg_db) == {"published": POSTS}
    records = sandbox.records("x")
    assert len(records) == POSTS and len({r["text"] for r in records}) == POSTS
    async with pg_db.session() as session:
        account = (await session.execute(select(Account))).scalar_one()
    assert account.status == "active"
    grants = [r for r in sandbox.requests("x") if r["path"].endswith("/2/oauth2/token")]
    assert all(g["status"] == 200 for g in grants), "a spent refresh token was used again"
    assert len(grants) == account.credentials_version - 1 >= 2, "one refresh per rotation"
    assert cipher.decrypt(account.credentials)["token_issued_at"]
