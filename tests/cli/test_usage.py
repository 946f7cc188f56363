"""The command line's own surface: usage errors in our one-line style, flags in help without a
`<bool>` type, an empty listing said in a line rather than drawn as an empty grid, and each
command imported only when it runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rich.table import Table
from typer.testing import CliRunner

from postpilot.cli import common
from postpilot.cli.main import COMMANDS, app


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["serve", "--bogus"],
            "error: No such option: --bogus (Possible options: --host) "
            "(see `postpilot serve --help`)",
        ),
        (
            ["run-once", "--limit", "0"],
            "error: Invalid value for '--limit': Input should be greater than or equal to 1 "
            "(see `postpilot run-once --help`)",
        ),
        (
            ["workspace", "keys", "create"],
            "error: Missing argument 'workspace_id'. "
            "(see `postpilot workspace keys create --help`)",
        ),
        (["no-such-command"], "error: No such command 'no-such-command'. (see `postpilot --help`)"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [line]


def test_a_group_without_a_command_shows_its_help() -> None:
    result = CliRunner().invoke(app, ["workspace", "keys"])
    assert "Usage: postpilot workspace keys" in result.output
    assert "error:" not in result.output


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["sandbox", "--help"], ["compare", "--help"]]
)
def test_help_shows_flags_without_a_type(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_an_empty_table_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    table = Table(title="running workers")
    table.add_column("worker")
    common.print_table(table)
    table.add_row("w-1")
    common.print_table(table)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "running workers: none"
    assert "w-1" in out


def test_help_lists_every_command_each_loaded_from_its_module() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line]
    assert listed == list(COMMANDS)


@pytest.mark.acceptance  # a process of its own: a fresh interpreter's imports
def test_a_worker_process_does_not_import_the_http_app() -> None:
    # The supervisor starts one worker per core: each should load the scheduler, not FastAPI.
    probe = (
        "import sys; from postpilot.cli.main import load; load('worker'); "
        "print(sorted(m for m in ('fastapi', 'postpilot.api.app', 'postpilot.web.access') "
        "if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.strip() == "[]"
