"""Helpers for the migration commands' tests: run `postpilot` in-process with a clean
environment (never the developer's .env files: the working directory is the test's tmp_path), and
read what the database holds."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from postpilot.cli.main import app
from postpilot.store.database import Database
from postpilot.store.tables import SchedulerChange
from tests.conftest import PG_ADMIN_DSN, pg_admin, pg_url
from tests.helpers import TEST_CRON_SECRET, TEST_SECRET_KEY


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings read .env and .env.local from the working directory: make it an empty one."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def cli_env(db: Database | str, **extra: str | None) -> dict[str, str | None]:
    url = db if isinstance(db, str) else db.url
    env: dict[str, str | None] = {
        "DATABASE_URL": url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "CRON_SECRET": TEST_CRON_SECRET,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "REDIS_URL": None,
        "SANDBOX_URL": None,
        "MEDIA_ALLOWED_HOSTS": None,
        "SCHEDULER_RETRY_BASE_SECONDS": "0",
        "ALERT_WEBHOOK_URL": None,
        "EVENTS_WEBHOOK_URL": None,
    }
    env.update(extra)
    return env


def invoke(db: Database | str, *args: str, **extra: str | None) -> Result:
    """`postpilot ARGS` in this process (call through asyncio.to_thread from async tests: the
    commands run their own event loop)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, list(args), env=cli_env(db, **extra))
    finally:
        root.handlers[:] = handlers  # the command pointed logging at the runner's stderr
        root.setLevel(level)


async def run_cli(db: Database | str, *args: str, **extra: str | None) -> Result:
    return await asyncio.to_thread(invoke, db, *args, **extra)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


async def change_count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(SchedulerChange))).scalar_one()
        )


@pytest.fixture
async def other_db(any_db: Database, tmp_path: Path) -> AsyncIterator[Database]:
    """A second, empty database of the same kind as `any_db` (no schema at all)."""
    if any_db.is_sqlite:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
        yield db
        await db.dispose()
        return
    name = f"postpilot_test_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    db = Database(pg_url(name))
    try:
        yield db
    finally:
        await db.dispose()
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def leftover_compare_databases() -> list[str]:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'postpilot_compare_%'"
        )
    finally:
        await conn.close()
    return [str(row["datname"]) for row in rows]
