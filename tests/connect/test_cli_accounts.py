"""`postpilot accounts connect/list/check`: a person in a terminal connects X through the sandbox's
consent page (pasting the redirect URL back into the running command), a Telegram bot directly,
then lists and checks them; a platform without its app settings is one line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from postpilot.cli.main import app
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Account
from tests.connect.test_api_connect import consent
from tests.helpers import TEST_SECRET_KEY, new_workspace


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings read .env files from the working directory: make it an empty one."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def env(db: Database, sandbox: SandboxClient | None) -> dict[str, str]:
    values = {
        "DATABASE_URL": db.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "SANDBOX_URL": sandbox.url if sandbox else "",
    }
    return values


async def cli(db: Database, sandbox: SandboxClient | None, *args: str) -> Result:
    """`postpilot ARGS` in a thread: the command runs its own event loop."""
    return await asyncio.to_thread(
        CliRunner().invoke, app, list(args), env={**env(db, sandbox), "CONNECT_X_CLIENT_ID": ""}
    )


async def connect_in_a_terminal(
    db: Database,
    sandbox: SandboxClient,
    workspace: str,
    platform: str,
    *,
    allow: bool = True,
    then: str = "",
    extra: tuple[str, ...] = (),
) -> tuple[int, str, str]:
    """`postpilot accounts connect PLATFORM` as its own process: read the authorize URL it
    prints, consent in the sandbox, paste the redirect back (and `then`, the next answers)."""
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "postpilot.cli.main",
        "accounts",
        "connect",
        platform,
        "--workspace",
        workspace,
        *extra,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env(db, sandbox)},
    )
    assert command.stdout is not None and command.stdin is not None
    url = ""
    while not url.startswith("http"):
        line = await asyncio.wait_for(command.stdout.readline(), timeout=60)
        assert line, "the command ended before printing the authorize URL"
        url = line.decode().strip()
    query = await consent(url, allow=allow)
    command.stdin.write(f"http://127.0.0.1:8000/api/connect/callback?{query}\n{then}".encode())
    await command.stdin.drain()
    out, err = await asyncio.wait_for(command.communicate(), timeout=60)
    assert command.returncode is not None
    return command.returncode, out.decode(), err.decode()


async def test_connect_x_by_pasting_the_redirect_then_list_and_check(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    workspace, _ = await new_workspace(sqlite_db)
    sandbox.configure(connect_consent="approve")
    code, out, err = await connect_in_a_terminal(sqlite_db, sandbox, workspace, "x")
    assert code == 0, err
    assert "connected x account" in out
    async with sqlite_db.session() as session:
        (account,) = (await session.scalars(select(Account))).all()
    assert account.platform == "x" and account.token_expires_at is not None

    code, out, err = await connect_in_a_terminal(
        sqlite_db, sandbox, workspace, "x", extra=("--account", account.id)
    )
    assert code == 0, err
    assert f"connected x account {account.id}" in out  # reconnected: the same account

    listed = await cli(sqlite_db, sandbox, "accounts", "list", "--workspace", workspace)
    assert listed.exit_code == 0, listed.output
    assert account.id in listed.stdout and "active" in listed.stdout
    assert "token expires 20" in listed.stdout

    checked = await cli(sqlite_db, sandbox, "accounts", "check", "--workspace", workspace)
    assert checked.exit_code == 0, checked.output
    assert "ok: x says this is" in checked.stdout


async def test_direct_telegram_and_a_refusal_in_one_line(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    workspace, _ = await new_workspace(sqlite_db)
    chats = sandbox.configure()["telegram_chats"]
    admin = next(k for k, v in chats.items() if v.get("bot_status") == "administrator")
    member = next(k for k, v in chats.items() if v.get("bot_status") == "member")
    args = ("accounts", "connect", "telegram", "--workspace", workspace)
    token = "--input=bot_token=123456789:AAEcliConnectTest_TokenLongEnough"
    made = await cli(sqlite_db, sandbox, *args, token, f"--input=chat={admin}")
    assert made.exit_code == 0, made.output
    assert "connected telegram account" in made.stdout
    assert "AAEcliConnectTest" not in made.output

    refused = await cli(sqlite_db, sandbox, *args, token, f"--input=chat={member}")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1

    asked = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [*args, f"--input=chat={admin}"],
        env=env(sqlite_db, sandbox),
        input="123456789:AAEcliConnectTest_TokenLongEnough\n",  # asked for, hidden
    )
    assert asked.exit_code == 0, asked.output
    assert "AAEcliConnectTest" not in asked.output
    async with sqlite_db.session() as session:
        assert len((await session.scalars(select(Account))).all()) == 1  # the same chat again


async def test_a_platform_without_its_app_is_one_line(sqlite_db: Database) -> None:
    workspace, _ = await new_workspace(sqlite_db)
    refused = await cli(sqlite_db, None, "accounts", "connect", "x", "--workspace", workspace)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: x: set CONNECT_X_CLIENT_ID and CONNECT_X_CLIENT_SECRET to connect X accounts\n"
    )
    nowhere = await cli(sqlite_db, None, "accounts", "list", "--workspace", "nope")
    assert nowhere.exit_code == 1 and "no workspace nope" in nowhere.stderr


async def test_a_choice_in_the_terminal_and_a_denial_in_one_line(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    workspace, _ = await new_workspace(sqlite_db)
    code, out, err = await connect_in_a_terminal(
        sqlite_db, sandbox, workspace, "linkedin", then="1,2\n"
    )
    assert code == 0, err
    assert "1. " in out and "2. " in out  # the member and the organization
    assert out.count("connected linkedin account") == 2

    code, out, err = await connect_in_a_terminal(
        sqlite_db, sandbox, workspace, "linkedin", allow=False
    )
    assert code == 1
    assert err == "error: LinkedIn access was denied: nothing was connected\n"
