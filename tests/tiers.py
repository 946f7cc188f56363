"""The test tiers, as markers put on each test from the fixtures it uses (a pytest plugin loaded
by tests/conftest.py), and a guard that keeps the unit tier free of databases and processes.

- `unit`: no database, no sandbox, no Redis, no process of its own; runs with no service up.
- `contract`: the sandbox process, no database.
- `integration`: a database (SQLite file or PostgreSQL) or Redis.
- `acceptance`: processes of our own (workers, benchmark children, a peer server).

Each test gets exactly one tier (the first that applies, from the bottom of this list up), and
`postgres` / `redis` when it needs that server, so `-m "not postgres"` runs without PostgreSQL.
A test that builds its own database or starts processes without these fixtures carries its tier
mark by hand; the guard fails a unit test that opens a SQLite database or starts a process.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import pytest

TIERS = ("unit", "contract", "integration", "acceptance")

POSTGRES_FIXTURES = frozenset({"pg_template", "pg_database", "pg_db"})
DATABASE_FIXTURES = POSTGRES_FIXTURES | {"sqlite_db", "any_db"}
REDIS_FIXTURES = frozenset({"redis_url", "redis_client", "redis_proxy"})
SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_process"})
PROCESS_FIXTURES = frozenset({"spawn", "workers", "pds"})

# What a unit test may not do (audit events, see `sys.addaudithook`).
_PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork"}
)
_DATABASE_EVENTS = frozenset({"sqlite3.connect"})


def pytest_configure() -> None:
    sys.addaudithook(_refuse_in_unit_tests)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        needs = _needs(item)
        if "postgres" in needs:
            item.add_marker(pytest.mark.postgres)
        if "redis" in needs:
            item.add_marker(pytest.mark.redis)
        implied = tier_of(needs)
        marked = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if not marked:
            item.add_marker(getattr(pytest.mark, implied))
        elif len(marked) > 1 or TIERS.index(marked[0]) < TIERS.index(implied):
            raise pytest.UsageError(
                f"{item.nodeid}: marked {', '.join(marked)}, but its fixtures put it in {implied}"
            )


def tier_of(needs: Iterable[str]) -> str:
    needs = set(needs)
    if "process" in needs:
        return "acceptance"
    if needs & {"database", "postgres", "redis"}:
        return "integration"
    if "sandbox" in needs:
        return "contract"
    return "unit"


def _needs(item: pytest.Item) -> set[str]:
    fixtures = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    params: dict[str, Any] = callspec.params if callspec is not None else {}
    needs: set[str] = set()
    # any_db asks for PostgreSQL while the test runs, so only its parameter tells.
    if fixtures & POSTGRES_FIXTURES or params.get("any_db") == "postgresql":
        needs.add("postgres")
    if item.get_closest_marker("postgres"):
        needs.add("postgres")
    if fixtures & REDIS_FIXTURES or item.get_closest_marker("redis"):
        needs.add("redis")
    if fixtures & DATABASE_FIXTURES:
        needs.add("database")
    if fixtures & SANDBOX_FIXTURES:
        needs.add("sandbox")
    if fixtures & PROCESS_FIXTURES or item.get_closest_marker("peer"):
        needs.add("process")
    return needs


_unit_test_running: str | None = None  # the node id while a unit test sets up or runs


def _refuse_in_unit_tests(event: str, args: tuple[Any, ...]) -> None:
    if _unit_test_running is None:
        return
    if event in _PROCESS_EVENTS:
        raise RuntimeError(
            f"{_unit_test_running} is a unit test but starts a process ({event}): "
            "use a fixture that puts it in its tier (spawn, sandbox) or mark it acceptance"
        )
    if event in _DATABASE_EVENTS:
        raise RuntimeError(
            f"{_unit_test_running} is a unit test but opens a database ({args[0]}): "
            "take it from a database fixture (sqlite_db, any_db)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _guarded(item):
        return (yield)


@contextlib.contextmanager
def _guarded(item: pytest.Item) -> Iterator[None]:
    global _unit_test_running
    _unit_test_running = item.nodeid if item.get_closest_marker("unit") else None
    try:
        yield
    finally:
        _unit_test_running = None
