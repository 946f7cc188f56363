"""`postpilot cache clear` against the real Redis: every key under REDIS_KEY_PREFIX goes (in
batches, more than one SCAN page), nothing else does, and the count is printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from postpilot.cache.clear import BATCH
from postpilot.cli.main import app
from tests.conftest import REDIS_TEST_URL

PREFIX = "pp-clear-test[1]:"  # glob characters, taken literally


@pytest.fixture
def redis_url() -> str:
    """The test Redis (its name marks the test `redis`); keys here are under a prefix of their
    own, so nothing is flushed."""
    return REDIS_TEST_URL


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)
    for name in ("REDIS_URL", "REDIS_KEY_PREFIX", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_clears_only_the_keys_under_the_prefix(
    redis_url: str, clean_env: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_url(redis_url)
    ours = [f"{PREFIX}budget:{i}" for i in range(BATCH * 2 + 7)]
    client.mset(dict.fromkeys(ours, "1"))
    others = ["pp-clear-test1:budget:x", "other-app:key", "pp-clear-test[2]:budget:y"]
    client.mset(dict.fromkeys(others, "keep"))
    clean_env.setenv("REDIS_URL", redis_url)
    clean_env.setenv("REDIS_KEY_PREFIX", PREFIX)
    try:
        result = CliRunner().invoke(app, ["cache", "clear"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1] == f"deleted {len(ours)} Redis keys under {PREFIX!r}"
        assert client.exists(*ours) == 0
        assert client.exists(*others) == len(others)

        again = CliRunner().invoke(app, ["cache", "clear"])
        assert again.stdout.splitlines()[-1] == f"deleted 0 Redis keys under {PREFIX!r}"
    finally:
        client.delete(*others)
        client.close()


def test_without_redis_says_there_is_no_shared_cache(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["cache", "clear"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "cleared 0 in-process entries (running workers drop theirs within "
        "SCHEDULER_CACHE_TTL=300 s, or at restart)",
        "no shared cache: REDIS_URL is not set",
    ]


def test_an_unreachable_redis_is_one_line(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "redis://:s3cret-pw@127.0.0.1:9/0")
    result = CliRunner().invoke(app, ["cache", "clear"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: could not clear Redis at redis://***@127.0.0.1:9/0")
    assert "s3cret-pw" not in result.output
