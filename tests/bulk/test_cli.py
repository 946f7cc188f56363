"""`postpilot posts import|export` against real SQLite and PostgreSQL: the report printed row
by row, one line for an error, nothing created by a dry run or a bad file, and an export the
import takes back."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from postpilot.cli.main import app
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Post
from tests.factories import workspace_with_accounts
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


async def count_posts(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Post))).scalar_one())


async def test_import_and_export_from_the_cli(
    any_db: Database, sandbox: SandboxClient, tmp_path: Path
) -> None:
    workspace_id, accounts = await workspace_with_accounts(any_db, sandbox, count=2)
    first, second = accounts
    good = tmp_path / "good.csv"
    good.write_text(
        "external_id,text,scheduled_at,targets,text@@user1\n"
        "e-1,hello,2030-01-01T09:00:00+00:00,@user0;@user1,for user1\n"
        "e-2,again,2030-01-02T09:00:00+00:00,@user0,\n"
    )
    dry = await cli(any_db, "posts", "import", str(good), "--dry-run", "--workspace", workspace_id)
    assert dry.exit_code == 0, dry.output
    assert "row 2: ok, would create a post at 2030-01-01T09:00:00+00:00" in dry.stdout
    assert "would create 2 posts from 2 rows" in dry.stdout
    assert await count_posts(any_db) == 0

    bad = tmp_path / "bad.csv"
    bad.write_text("text,targets\nfine,@user0\nlost,@nobody\n")
    refused = await cli(any_db, "posts", "import", str(bad), "--workspace", workspace_id)
    assert refused.exit_code == 1
    assert "row 3, targets: no account @nobody in this workspace" in refused.stdout
    assert "1 of 2 rows have problems; nothing was imported" in refused.output
    assert await count_posts(any_db) == 0

    unreadable = await cli(
        any_db, "posts", "import", str(tmp_path / "none.csv"), "--workspace", workspace_id
    )
    assert unreadable.exit_code == 1 and "cannot read" in unreadable.output
    assert len(unreadable.output.strip().splitlines()) == 1

    made = await cli(any_db, "posts", "import", str(good), "--workspace", workspace_id)
    assert made.exit_code == 0, made.output
    assert "created 2 posts from 2 rows" in made.stdout
    again = await cli(any_db, "posts", "import", str(good), "--workspace", workspace_id)
    assert "imported before as post" in again.stdout and "created 0 posts" in again.stdout
    assert await count_posts(any_db) == 2

    out = tmp_path / "out.csv"
    exported = await cli(
        any_db,
        "posts",
        "export",
        "--workspace",
        workspace_id,
        "--account",
        second.id,
        "-o",
        str(out),
    )
    assert exported.exit_code == 0, exported.output
    assert "wrote 1 posts" in exported.stdout
    lines = out.read_text().splitlines()
    assert lines[0].startswith("external_id,text,scheduled_at,timezone,targets,")
    row = next(csv.DictReader(io.StringIO(out.read_text())))
    assert row["external_id"] == "e-1" and row["scheduled_at"] == "2030-01-01T09:00:00+00:00"
    assert sorted(row["targets"].split(";")) == sorted([first.id, second.id])
    assert row[f"text@{second.id}"] == "for user1" and row["source"] == "import"

    printed = await cli(any_db, "posts", "export", "--workspace", workspace_id)
    assert printed.stdout.count("\n") == 3
    wrong = await cli(any_db, "posts", "export", "--workspace", "nope")
    assert wrong.exit_code == 1 and "no workspace nope" in wrong.output
