"""Through PgBouncer in transaction mode (Debian's `pgbouncer`, started here on a free port in
front of 127.0.0.1:5432): migrations, the API creating posts and two worker processes publishing
exactly once, with DATABASE_URL ending in `?pooler=transaction`. Behind such a pooler LISTEN
cannot work: the workers say so and poll, or LISTEN on DATABASE_LISTEN_URL, a direct
connection, and wake at once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench import pooler
from postpilot.sandbox.client import SandboxClient
from postpilot.store import schema
from postpilot.store.database import BadPoolerOption, Database
from tests.conftest import PG_ADMIN_DSN, pg_admin, pg_url
from tests.helpers import api_server, mastodon_account
from tests.waiting import wait_until
from tests.workers import delivery_counts, nothing_held, worker_env

pytestmark = [
    pytest.mark.skipif(
        pooler.BINARY is None,
        reason="pgbouncer is not installed (Debian: apt-get install pgbouncer)",
    ),
    pytest.mark.acceptance,  # a process of our own: the pooler
    pytest.mark.postgres,
]


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[pooler.PgBouncer]:
    """Four server connections: fewer than the clients, so transactions really move between
    server sessions."""
    with pooler.running(user=make_url(PG_ADMIN_DSN).username or "postgres", pool_size=4) as bouncer:
        yield bouncer


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    name = f"postpilot_test_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_migrations_run_through_pgbouncer(
    pgbouncer: pooler.PgBouncer, empty_database: str
) -> None:
    db = Database(pgbouncer.url(empty_database))
    try:
        await schema.upgrade(db)
        assert await schema.current_revision(db) == schema.head_revision()
    finally:
        await db.dispose()


async def test_many_transactions_at_once_through_pgbouncer(
    pgbouncer: pooler.PgBouncer, pg_database: str
) -> None:
    """More clients than server sessions, each statement with parameters: no prepared statement
    of one session is looked for in another."""
    db = Database(pgbouncer.url(pg_database), max_connections=20)

    async def client(n: int) -> None:
        for i in range(30):
            async with db.engine.begin() as conn:
                got = await conn.exec_driver_sql("SELECT $1::int + $2::int", (n, i))
                assert got.scalar_one() == n + i

    try:
        await asyncio.gather(*(client(n) for n in range(20)))
    finally:
        await db.dispose()


async def test_api_and_two_worker_processes_through_pgbouncer_publish_exactly_once(
    pgbouncer: pooler.PgBouncer, pg_database: str, sandbox: SandboxClient, tmp_path: Path
) -> None:
    db = Database(pgbouncer.url(pg_database))
    log = tmp_path / "worker.log"
    env = worker_env(db, sandbox, WORKER_POLL_SECONDS="0.5", LOG_LEVEL="INFO")
    with log.open("wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "postpilot.cli.main", "worker", "--processes", "2"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await wait_until(lambda: _both_polling(log, supervisor), timeout=30)
        async with api_server(db, sandbox) as api:
            account = await mastodon_account(api, sandbox)
            for i in range(40):
                answer = await api.client.post(
                    "/api/posts", json={"text": f"through the pooler {i}", "targets": [account]}
                )
                assert answer.status_code == 201, answer.text
        await wait_until(lambda: _published(db, 40), timeout=60)
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(supervisor.wait, 30) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        await db.dispose()
    sends = [r for r in sandbox.requests("mastodon") if r["method"] == "POST"]
    assert len(sends) == 40
    assert len({r["text"] for r in sandbox.records("mastodon")}) == 40
    assert "Traceback" not in log.read_text()
    await wait_until(lambda: nothing_held(sandbox), timeout=10)


async def test_a_listen_url_wakes_a_worker_behind_pgbouncer_at_once(
    pgbouncer: pooler.PgBouncer, pg_database: str, sandbox: SandboxClient, spawn: object
) -> None:
    db = Database(pgbouncer.url(pg_database))
    direct = Database(pg_database)
    env = worker_env(db, sandbox, WORKER_POLL_SECONDS="120", DATABASE_LISTEN_URL=pg_database)
    worker = spawn(env)  # type: ignore[operator]
    try:
        await wait_until(lambda: _listening(direct, worker), timeout=30)
        async with api_server(db, sandbox) as api:
            account = await mastodon_account(api, sandbox)
            answer = await api.client.post(
                "/api/posts", json={"text": "wake up", "targets": [account]}
            )
            assert answer.status_code == 201, answer.text
        # Far sooner than its 120 s poll: the NOTIFY (sent through the pooler) woke it.
        await wait_until(lambda: _published(db, 1), timeout=20)
    finally:
        await db.dispose()
        await direct.dispose()


def test_a_pooler_option_other_than_transaction_is_refused() -> None:
    for url in (
        "postgresql+asyncpg://u@127.0.0.1:6432/db?pooler=session",
        "sqlite+aiosqlite:///./x.db?pooler=transaction",
    ):
        with pytest.raises(BadPoolerOption):
            Database(url)


async def _both_polling(log: Path, supervisor: subprocess.Popen[bytes]) -> bool:
    assert supervisor.poll() is None, log.read_text()
    return log.read_text().count("polling every 0.5 s") == 2


async def _published(db: Database, n: int) -> bool:
    return (await delivery_counts(db)).get("published", 0) == n


async def _listening(direct: Database, worker: subprocess.Popen[bytes]) -> bool:
    """The worker's direct connection has sent its LISTEN."""
    assert worker.poll() is None, "the worker exited"
    async with direct.engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        return bool(found.scalar_one())
