"""`postpilot config show`: every setting with its effective value and where it came from,
secrets masked; `.env.example` documents every setting; misspelt names are warned about once."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postpilot import __version__
from postpilot.cli.main import app
from postpilot.settings import Settings, misspelt, warn_misspelt

EXAMPLE = Path(__file__).parents[2] / ".env.example"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory to run in, with no setting in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOG_FORMAT", "text")  # the warning as a plain line on stderr
    return tmp_path


def shown(output: str) -> dict[str, tuple[str, str]]:
    """name -> (value, source) from `config show`'s lines."""
    table = {}
    for line in output.splitlines():
        name, value, source = re.split(r"\s{2,}", line.strip())
        table[name] = (value, source)
    return table


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", EXAMPLE.read_text(), re.MULTILINE))
    assert set(Settings.model_fields) - documented == set(), "add these to .env.example"
    assert documented - set(Settings.model_fields) == set(), ".env.example names no setting"


def test_show_names_each_value_and_its_source(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text("SCHEDULER_BATCH_SIZE=7\nSCHEDULER_CONCURRENCY=2\n")
    (workdir / ".env.local").write_text(
        "SCHEDULER_CONCURRENCY=3\nSECRET_KEY=local-secret-key-0123456789\n"
    )
    monkeypatch.setenv("REDIS_URL", "redis://cache:hunter2-password@redis.internal:6380/2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-password@db.internal/postpilot")

    result = CliRunner().invoke(app, ["config", "show"])

    assert result.exit_code == 0, result.output
    table = shown(result.stdout)
    assert set(table) == set(Settings.model_fields)
    assert table["SCHEDULER_BATCH_SIZE"] == ("7", ".env")
    assert table["SCHEDULER_CONCURRENCY"] == ("3", ".env.local")  # .env.local wins over .env
    assert table["SCHEDULER_LEASE_SECONDS"] == ("15.0", "default")
    assert table["METRICS_PUBLIC"] == ("false", "default")
    assert table["CRON_SECRET"] == ("(unset)", "default")
    assert table["SECRET_KEY"] == ("*** (set)", ".env.local")
    assert table["REDIS_URL"] == ("redis://cache:***@redis.internal:6380/2", "environment")
    assert table["DATABASE_URL"] == (
        "postgresql+asyncpg://app:***@db.internal/postpilot",
        "environment",
    )
    for secret in ("local-secret-key", "hunter2", "db-password"):
        assert secret not in result.output


def test_webhook_urls_show_only_their_host(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/token-part")
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", "a-signing-secret-of-length")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert shown(result.stdout)["ALERT_WEBHOOK_URL"][0] == "https://hooks.slack.com/***"
    assert "token-part" not in result.output
    assert "a-signing-secret" not in result.output


def test_a_bad_value_is_one_line(workdir: Path) -> None:
    (workdir / ".env").write_text("SCHEDULER_CONCURRENCY=lots\n")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: bad setting: SCHEDULER_CONCURRENCY")
    assert len(result.stderr.splitlines()) == 1


def test_a_misspelt_variable_is_warned_about_at_start_up(workdir: Path) -> None:
    (workdir / ".env").write_text("SCHEDULER_CONCURENCY=8\n")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert (
        "SCHEDULER_CONCURENCY is not a setting and is ignored: "
        "did you mean SCHEDULER_CONCURRENCY?" in result.stderr
    )
    assert shown(result.stdout)["SCHEDULER_CONCURRENCY"] == ("5", "default")


def test_misspelt_names_only_those_close_to_a_setting() -> None:
    names = ["scheduler_concurency", "SCHEDULER_CONCURRENCY", "REDIS_HOST", "PATH", "HOME"]
    assert misspelt(names) == {"SCHEDULER_CONCURENCY": "SCHEDULER_CONCURRENCY"}


def test_each_misspelt_name_is_warned_about_once(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"WORKER_POLL_SECOND": "2"}
    with caplog.at_level(logging.WARNING, logger="postpilot.settings"):
        warn_misspelt(environ)
        warn_misspelt(environ)
    assert [r.getMessage() for r in caplog.records] == [
        "WORKER_POLL_SECOND is not a setting and is ignored: did you mean WORKER_POLL_SECONDS?"
    ]


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"postpilot {__version__}\n"
