"""Shared fixtures: a real sandbox process, real SQLite files, real PostgreSQL databases made from a
migrated template, and the real Redis (a test-only database number)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import SandboxProcess, start_sandbox
from postpilot.store.database import Database
from postpilot.store.schema import upgrade

pytest_plugins = ["tests.tiers"]

PG_ADMIN_DSN = os.environ.get("POSTPILOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# One template per test process (each pytest-xdist worker is one): sessions of several engineers
# may run at once.
PG_TEMPLATE = f"postpilot_test_template_{os.getpid()}"


def worker_redis_url(base: str, worker: str | None) -> str:
    """The test Redis database of one pytest-xdist worker: gw0 keeps the base's number, gw1 the
    next and so on, so a test flushing its database never empties another worker's keys."""
    if not worker:
        return base
    head, _, number = base.rpartition("/")
    database = int(number or 0) + int(worker.removeprefix("gw"))
    if database > 15:
        raise pytest.UsageError(
            f"{base}: no Redis database left for xdist worker {worker} (Redis has 0-15): "
            "run fewer workers or lower POSTPILOT_TEST_REDIS's database number"
        )
    return f"{head}/{database}"


REDIS_TEST_URL = worker_redis_url(
    os.environ.get("POSTPILOT_TEST_REDIS", "redis://127.0.0.1:6379/13"),
    os.environ.get("PYTEST_XDIST_WORKER"),
)
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"


def pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    sandbox = start_sandbox()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> Iterator[SandboxClient]:
    """The sandbox server, emptied before each test."""
    client = SandboxClient(sandbox_process.url)
    client.reset()
    yield client
    client.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'postpilot.db'}")
    await upgrade(db)
    yield db
    await db.dispose()


async def pg_admin(sql: str) -> None:
    """Run one statement as the PostgreSQL admin (create and drop test databases)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Migrate a template database once; each test copies it (CREATE DATABASE ... TEMPLATE)."""

    async def build() -> None:
        await pg_admin(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
        await pg_admin(f'CREATE DATABASE "{PG_TEMPLATE}"')
        db = Database(pg_url(PG_TEMPLATE))
        await upgrade(db)
        await db.dispose()

    # Its own thread and loop: the fixture may be requested from inside a running test loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build()).result()
    yield PG_TEMPLATE
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, pg_admin(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
        ).result()


@pytest.fixture
async def pg_database(pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for one test; yields its URL."""
    name = f"postpilot_test_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield pg_url(name)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_db(pg_database: str) -> AsyncIterator[Database]:
    db = Database(pg_database)
    yield db
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The same test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'postpilot.db'}")
        await upgrade(db)
        yield db
        await db.dispose()
        return
    template = request.getfixturevalue("pg_template")
    name = f"postpilot_test_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    db = Database(pg_url(name))
    try:
        yield db
    finally:
        await db.dispose()
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
