"""The webhook outbox across real worker processes on PostgreSQL: a worker publishes against the
sandbox and its events reach a real receiver, signed; while the receiver answers 503 the events
wait in the table, the worker is killed (SIGKILL), and the next worker delivers every one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from postpilot.crypto import CredentialCipher
from postpilot.monitor import webhooks as signing
from postpilot.monitor.outbox import seal_secret
from postpilot.sandbox.client import SandboxClient
from postpilot.store import webhooks as store
from postpilot.store.database import Database
from postpilot.store.tables import WebhookOutbox
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import TEST_SECRET_KEY
from tests.monitor.support import receiver
from tests.waiting import wait_until
from tests.workers import worker_env

SECRET = "process-secret-0123456789"
Spawn = Callable[[dict[str, str]], "subprocess.Popen[bytes]"]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """`postpilot worker` processes, killed at the end of the test if still running."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "postpilot.cli.main", "worker", "--processes", "1"]
        started.append(subprocess.Popen(command, env=env, cwd=tmp_path))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


async def outbox_rows(db: Database) -> list[WebhookOutbox]:
    async with db.session() as session:
        return list((await session.execute(select(WebhookOutbox))).scalars())


async def test_events_wait_in_the_outbox_through_a_killed_worker(
    pg_db: Database, sandbox: SandboxClient, spawn: Spawn
) -> None:
    async with receiver(fail_first=10**9, fail_status=503) as hook:
        workspace, accounts = await workspace_with_accounts(pg_db, sandbox, count=2)
        async with pg_db.transaction() as session:
            await store.create_subscription(
                session,
                workspace_id=workspace,
                url=hook.url,
                events=["*"],
                secret=seal_secret(CredentialCipher(TEST_SECRET_KEY), SECRET),
                enabled=True,
                description="",
                now=datetime.now(UTC),
            )
        env = worker_env(
            pg_db,
            sandbox,
            PRIVATE_HOSTS_ALLOWED=hook.url.split("//", 1)[1].split("/", 1)[0],
            WEBHOOK_TIMEOUT_SECONDS="1",
            WEBHOOK_RETRY_BASE_SECONDS="0.2",
            WEBHOOK_RETRY_MAX_SECONDS="0.5",
            WEBHOOK_OUTBOX_MAX_ATTEMPTS="50",
            WEBHOOK_OUTBOX_POLL_SECONDS="0.1",
        )
        first = spawn(env)
        await due_posts(pg_db, workspace, accounts, count=2, at=datetime.now(UTC))

        async def all_tried() -> bool:
            assert first.poll() is None, "the worker died"
            found = await outbox_rows(pg_db)
            return len(found) == 4 and all(r.attempts >= 1 for r in found)

        await wait_until(all_tried, timeout=30, what="4 events tried by the first worker")
        first.kill()
        first.wait()
        assert hook.accepted() == []
        assert {r.status for r in await outbox_rows(pg_db)} == {"pending"}

        hook.fail_first = 0  # the receiver is back
        second = spawn(env)

        async def all_sent() -> bool:
            assert second.poll() is None, "the worker died"
            return {r.status for r in await outbox_rows(pg_db)} == {"sent"}

        # Rows the first worker held when it died wait for their lease (7 s here) to end.
        await wait_until(all_sent, timeout=60, what="every event sent by the next worker")

    event_ids = {r.event_id for r in await outbox_rows(pg_db)}
    accepted = hook.accepted()
    assert {r.headers["x-postpilot-id"] for r in accepted} == event_ids
    for request in accepted:
        assert signing.verify(
            SECRET,
            body=request.body,
            timestamp=request.headers["x-postpilot-timestamp"],
            signature=request.headers["x-postpilot-signature"],
        )
        assert request.headers["x-postpilot-event"] == "delivery.published"
    assert len(sandbox.records("mastodon")) == 4, "published once each"
