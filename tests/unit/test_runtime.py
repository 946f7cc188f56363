"""The composition root: what it hands the scheduler, and that it closes what it opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from postpilot.runtime import MissingSecretKey, build_runtime, open_runtime
from postpilot.settings import Settings, load_settings


def settings(tmp_path: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never-opened.db'}",
        "SECRET_KEY": "unit-secret-key-0123456789abcdef",
        "JOURNAL_DIR": str(tmp_path / "journal"),
    }
    values.update(extra)
    return load_settings(**values)


def test_a_runtime_needs_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(MissingSecretKey):
        build_runtime(settings(tmp_path, SECRET_KEY=""))


async def test_the_scheduler_gets_the_monitor_as_plain_callables(tmp_path: Path) -> None:
    async with open_runtime(settings(tmp_path), check_schema=False) as runtime:
        assert runtime.observers == [runtime.monitor.observe]
        assert runtime.delivery_events == runtime.monitor.announce


async def test_publishers_context_carries_the_processes_stores(tmp_path: Path) -> None:
    async with open_runtime(settings(tmp_path), check_schema=False) as runtime:
        assert runtime.publish.http is runtime.http
        assert runtime.publish.uploads is runtime.cache.uploads
        assert runtime.publish.budgets.store is runtime.cache.budgets
        assert runtime.publish.now is runtime.clock


async def test_an_error_in_the_block_still_closes_everything(tmp_path: Path) -> None:
    with pytest.raises(LookupError):
        async with open_runtime(settings(tmp_path), check_schema=False) as runtime:
            raise LookupError("inside the block")
    assert runtime.http.is_closed
