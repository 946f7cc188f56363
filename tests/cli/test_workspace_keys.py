"""`postpilot workspace keys`: list, create, revoke and rotate a workspace's API keys from the
CLI, against real SQLite and PostgreSQL databases, with activity naming who did it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from postpilot.cli.main import app
from postpilot.store import api_keys
from postpilot.store.database import Database
from postpilot.store.tables import Activity, ApiKey
from tests.helpers import TEST_SECRET_KEY


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings read .env files from the working directory: make it an empty one."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


async def cli(db: Database, *args: str) -> Result:
    """`postpilot ARGS` in a thread: the command runs its own event loop."""
    env = {"DATABASE_URL": db.url, "SECRET_KEY": TEST_SECRET_KEY, "LOG_LEVEL": "WARNING"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


def secret_in(result: Result) -> str:
    found = re.search(r"(pp_\S+)\s*$", result.stdout.strip())
    assert found, result.stdout
    return found.group(1)


async def keys(db: Database) -> dict[str, ApiKey]:
    async with db.session() as session:
        return {k.name: k for k in (await session.execute(select(ApiKey))).scalars()}


async def test_keys_from_the_cli(any_db: Database) -> None:
    created = await cli(any_db, "workspace", "create", "--name", "acme")
    assert created.exit_code == 0, created.output
    workspace = created.stdout.split()[1]
    first = secret_in(created)

    made = await cli(any_db, "workspace", "keys", "create", workspace, "--name", "ci")
    assert made.exit_code == 0, made.output
    ci_secret = secret_in(made)
    stored = await keys(any_db)
    assert set(stored) == {"default", "ci"}

    listed = await cli(any_db, "workspace", "keys", "list", workspace)
    assert listed.exit_code == 0, listed.output
    for key in stored.values():
        assert key.id in listed.stdout and key.prefix in listed.stdout
        assert key.key_hash not in listed.stdout
    assert first not in listed.stdout and ci_secret not in listed.stdout

    revoked = await cli(any_db, "workspace", "keys", "revoke", workspace, stored["ci"].id)
    assert revoked.exit_code == 0, revoked.output
    async with any_db.session() as session:
        assert await api_keys.authenticate(session, ci_secret) is None
        assert await api_keys.authenticate(session, first) is not None

    last = await cli(any_db, "workspace", "keys", "revoke", workspace, stored["default"].id)
    assert last.exit_code == 1
    assert "last active API key" in last.output

    rotated = await cli(any_db, "workspace", "keys", "rotate", workspace, stored["default"].id)
    assert rotated.exit_code == 0, rotated.output
    new_secret = secret_in(rotated)
    async with any_db.session() as session:
        assert await api_keys.authenticate(session, first) is None
        assert await api_keys.authenticate(session, new_secret) is not None
        log = (await session.execute(select(Activity).order_by(Activity.id))).scalars().all()
    assert [a.event for a in log] == ["key_created", "key_revoked", "key_rotated"]
    assert all(a.actor.startswith("cli:") for a in log)
    assert all(s not in a.detail for a in log for s in (first, ci_secret, new_secret))


async def test_cli_refusals_are_one_line_and_change_nothing(any_db: Database) -> None:
    created = await cli(any_db, "workspace", "create", "--name", "acme")
    workspace = created.stdout.split()[1]
    before = await keys(any_db)
    cases = [
        (("keys", "list", "no-such-workspace"), "no workspace no-such-workspace"),
        (("keys", "create", "no-such-workspace"), "no workspace no-such-workspace"),
        (("add-key", "no-such-workspace"), "no workspace no-such-workspace"),
        (("keys", "revoke", workspace, "no-such-key"), "does not exist"),
        (("keys", "rotate", workspace, "no-such-key"), "does not exist"),
        (("keys", "create", workspace, "--name", " "), "--name"),
    ]
    for args, message in cases:
        result = await cli(any_db, "workspace", *args)
        assert result.exit_code == 1, args
        assert message in result.output and "Traceback" not in result.output
    assert {k.id for k in (await keys(any_db)).values()} == {k.id for k in before.values()}
