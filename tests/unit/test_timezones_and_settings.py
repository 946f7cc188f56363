"""Time zones and settings validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postpilot.core.timezones import InvalidTimeZone, to_utc
from postpilot.settings import SettingsError, load_settings, normalize_database_url


def test_naive_time_is_local_to_the_zone_including_dst() -> None:
    summer = to_utc(datetime(2026, 7, 1, 9, 0), "Europe/Paris")
    winter = to_utc(datetime(2026, 1, 1, 9, 0), "Europe/Paris")
    assert summer == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert winter == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def test_aware_time_keeps_its_offset() -> None:
    aware = datetime.fromisoformat("2026-07-01T09:00:00-04:00")
    assert to_utc(aware, "Asia/Tokyo") == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)


def test_unknown_zone_is_named_in_the_error() -> None:
    with pytest.raises(InvalidTimeZone, match="Mars/Olympus"):
        to_utc(datetime(2026, 1, 1), "Mars/Olympus")


def test_bad_setting_names_the_variable_and_hides_secrets() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, SCHEDULER_CONCURRENCY="many", SECRET_KEY="short")
    message = str(caught.value)
    assert "SCHEDULER_CONCURRENCY" in message and "'many'" in message
    assert "SECRET_KEY" in message and "short" not in message


def test_defaults_match_the_migration_plan() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.SCHEDULER_CONCURRENCY, settings.SCHEDULER_BATCH_SIZE) == (5, 20)
    assert settings.SCHEDULER_CACHE_TTL == 300
    assert settings.DATABASE_MAX_CONNECTIONS == 20
    assert settings.ENABLE_PERFORMANCE_MONITORING is True
    assert settings.DATABASE_URL.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings(_env_file=None, DATABASE_URL="mysql://x")
