"""`postpilot user create` and `user list` against a real SQLite database: the first owner
from the CLI, the password asked twice and hidden (or read from stdin), refusals in one line."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from postpilot import passwords
from postpilot.cli.main import app
from postpilot.store import web_sessions
from postpilot.store.database import Database
from postpilot.store.tables import Membership, User, WebSession, utcnow
from tests.helpers import TEST_SECRET_KEY, new_workspace


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


async def cli(db: Database, *args: str, stdin: str = "") -> Result:
    env = {"DATABASE_URL": db.url, "SECRET_KEY": TEST_SECRET_KEY, "LOG_LEVEL": "WARNING"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), input=stdin, env=env)


async def test_create_the_first_owner_then_add_a_role_elsewhere(sqlite_db: Database) -> None:
    first, _ = await new_workspace(sqlite_db, "acme")
    second, _ = await new_workspace(sqlite_db, "zeta")
    made = await cli(
        sqlite_db,
        "user", "create", "--email", "Owner@Example.com", "--workspace", first,
        stdin="correct horse battery\ncorrect horse battery\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "created user owner@example.com" in made.stdout
    assert "correct horse" not in made.stdout, "the password is not echoed"
    added = await cli(
        sqlite_db, "user", "create", "--email", "owner@example.com", "--workspace", second,
        "--role", "viewer",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    async with sqlite_db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
        roles = dict(
            (await session.execute(select(Membership.workspace_id, Membership.role))).all()
        )
    assert passwords.verify(user.password_hash, "correct horse battery")
    assert roles == {first: "owner", second: "viewer"}
    listed = await cli(sqlite_db, "user", "list")
    assert listed.stdout.splitlines() == [
        "owner@example.com  acme  owner",
        "owner@example.com  zeta  viewer",
    ]


async def test_refusals_are_one_line_and_change_nothing(sqlite_db: Database) -> None:
    workspace, _ = await new_workspace(sqlite_db)
    short = await cli(
        sqlite_db, "user", "create", "--email", "a@example.com", "--workspace", workspace,
        "--password-stdin", stdin="short\n",
    )  # fmt: skip
    assert short.exit_code == 1
    assert "password refused: use at least 10 characters" in short.stderr
    nowhere = await cli(
        sqlite_db, "user", "create", "--email", "a@example.com", "--workspace", "nope"
    )
    assert nowhere.exit_code == 1 and "no workspace nope" in nowhere.stderr
    bad = await cli(
        sqlite_db, "user", "create", "--email", "not-an-email", "--workspace", workspace
    )
    assert bad.exit_code == 1 and "is not an email address" in bad.stderr
    role = await cli(
        sqlite_db, "user", "create", "--email", "a@example.com", "--workspace", workspace,
        "--role", "king",
    )  # fmt: skip
    assert role.exit_code == 2
    assert (await cli(sqlite_db, "user", "list")).stdout.startswith("users: none")


async def test_reset_password_prints_a_new_one_once_and_signs_the_user_out(
    sqlite_db: Database,
) -> None:
    workspace, _ = await new_workspace(sqlite_db)
    made = await cli(
        sqlite_db, "user", "create", "--email", "ed@example.com", "--workspace", workspace,
        "--password-stdin", stdin="correct horse battery\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    async with sqlite_db.transaction() as session:
        user = (await session.execute(select(User))).scalar_one()
        await web_sessions.start(
            session, user_id=user.id, workspace_id=workspace, now=utcnow(), lifetime=timedelta(1)
        )
    reset = await cli(sqlite_db, "user", "reset-password", "Ed@Example.com")
    assert reset.exit_code == 0, reset.output
    found = re.search(r"new password for ed@example\.com: (\S+)", reset.stdout)
    assert found, reset.stdout
    assert "1 signed-in session(s) ended" in reset.stdout
    async with sqlite_db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
        left = await session.scalar(select(func.count()).select_from(WebSession))
    assert passwords.verify(user.password_hash, found.group(1))
    assert not passwords.verify(user.password_hash, "correct horse battery")
    assert left == 0
    nobody = await cli(sqlite_db, "user", "reset-password", "who@example.com")
    assert nobody.exit_code == 1
    assert "no user who@example.com" in nobody.stderr
