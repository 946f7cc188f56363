"""How a command ends on an error: what postpilot expects (its own errors, the system or the
network refusing) in one line and exit code 1; a bug with its exception and traceback intact."""

from __future__ import annotations

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from postpilot.cli import common
from postpilot.cli.main import app
from postpilot.errors import PostpilotError
from postpilot.scheduler import control


class NeedsAPerson(PostpilotError):
    """Something a person can fix: the message
    says what, over two lines."""


def command_raising(error: BaseException) -> typer.Typer:
    """A command whose work (run as every command runs it) raises `error`."""
    commands = typer.Typer()

    @commands.command()
    def work() -> None:
        async def go() -> None:
            raise error

        common.run(go())

    return commands


def the_one_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            NeedsAPerson(),
            "error: Something a person can fix: the message says what, over two lines.",
        ),
        (NeedsAPerson("the reason, as raised"), "error: the reason, as raised"),
        (
            ConnectionRefusedError(111, "Connect call failed"),
            "error: could not connect: [Errno 111] Connect call failed "
            "(is the server named in DATABASE_URL running?)",
        ),
        (PermissionError(13, "Permission denied"), "error: [Errno 13] Permission denied"),
    ],
)
def test_an_expected_error_is_one_line_and_a_non_zero_exit(error: BaseException, line: str) -> None:
    result = CliRunner().invoke(command_raising(error))
    assert the_one_line(result) == line


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug"), RuntimeError("a bug")])
def test_a_bug_keeps_its_traceback(bug: Exception) -> None:
    result = CliRunner().invoke(command_raising(bug))
    assert result.exit_code == 1
    assert result.exception is bug
    assert "error:" not in result.stderr
    # Nothing catches it: it leaves the command as raised, and Python prints its traceback.
    with pytest.raises(type(bug)) as raised:
        CliRunner().invoke(command_raising(bug), catch_exceptions=False)
    assert raised.value is bug


def test_the_postpilot_command_shows_a_refused_value_in_one_line() -> None:
    result = CliRunner().invoke(app, ["scheduler", "use", "fast"])
    assert "unknown scheduler 'fast'" in the_one_line(result)


def test_the_postpilot_command_shows_a_bug_in_validation_as_a_bug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bug = ValueError("invalid literal for int() with base 10: 'x'")

    def broken(name: str) -> None:
        raise bug

    monkeypatch.setattr(control, "check_scheduler", broken)
    result = CliRunner().invoke(app, ["scheduler", "use", "reference"])
    assert result.exception is bug
    assert "error:" not in result.stderr
