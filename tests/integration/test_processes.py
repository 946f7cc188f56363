"""`postpilot worker --processes N`: N worker processes on one PostgreSQL publish a batch exactly
once and drain on SIGTERM; a killed one is restarted; one that keeps dying stops them all; a
killed supervisor leaves no worker behind; SQLite refuses more than one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from postpilot import loop
from postpilot.cli.main import app
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.processes import Restarts, Supervisor
from postpilot.store.database import Database
from postpilot.store.tables import WorkerHeartbeat
from tests.factories import due_posts, workspace_with_accounts
from tests.ports import free_port_pair
from tests.waiting import wait_until
from tests.workers import delivery_counts, nothing_held, worker_env

Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def supervisors(tmp_path: Path) -> Iterator[Start]:
    """Start `postpilot worker --processes N`; a supervisor left running is stopped at the end
    (SIGTERM: its children drain with it)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], processes: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "postpilot.cli.main", "worker"]
        process = subprocess.Popen([*command, "--processes", str(processes)], env=env, cwd=tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def heartbeats(db: Database) -> dict[int, str]:
    """Each worker process's state by pid."""
    async with db.session() as session:
        rows = await session.execute(select(WorkerHeartbeat.pid, WorkerHeartbeat.state))
        return dict(rows.all())


async def running(db: Database, n: int, supervisor: subprocess.Popen[bytes]) -> bool:
    assert supervisor.poll() is None, "the supervisor exited"
    return list((await heartbeats(db)).values()).count("running") >= n


async def test_two_processes_publish_a_batch_exactly_once_and_drain_on_sigterm(
    pg_db: Database, sandbox: SandboxClient, supervisors: Start
) -> None:
    workspace, accounts = await workspace_with_accounts(pg_db, sandbox, count=4)
    sandbox.configure(latency_ms=20)
    env = worker_env(pg_db, sandbox, SCHEDULER_BATCH_SIZE="5", SCHEDULER_CONCURRENCY="5")
    supervisor = supervisors(env, 2)
    await wait_until(lambda: running(pg_db, 2, supervisor), timeout=30)
    # Both are up before anything is due: each takes part of the 30 posts x 4 accounts.
    await due_posts(pg_db, workspace, accounts, count=30, at=datetime.now(UTC))
    await wait_until(lambda: _all_published(pg_db, 120), timeout=60)
    supervisor.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(supervisor.wait, 30) == 0
    # Counted at the sandbox: one publish request per delivery, none repeated.
    sends = [r for r in sandbox.requests("mastodon") if r["method"] == "POST"]
    assert len(sends) == 120
    keys = Counter(r["idempotency_key"] for r in sandbox.records("mastodon"))
    assert len(keys) == 120 and max(keys.values()) == 1
    states = await heartbeats(pg_db)
    assert len(states) == 2 and set(states.values()) == {"stopped"}
    await wait_until(lambda: nothing_held(sandbox), timeout=10)


async def test_two_processes_send_one_at_a_time_to_a_room_without_redis(
    pg_db: Database, sandbox: SandboxClient, supervisors: Start
) -> None:
    # No REDIS_URL: the machine's lock files keep the room's cap (one send) across processes.
    tokens = sandbox.issue_token("matrix", "@bot:sandbox.test")
    workspace, room = await workspace_with_accounts(
        pg_db,
        sandbox,
        platform="matrix",
        credentials={"access_token": tokens["access_token"]},
        options={"room_id": "!room:sandbox.test"},
    )
    sandbox.configure(latency_ms=30)
    env = worker_env(pg_db, sandbox, SCHEDULER_BATCH_SIZE="4", SCHEDULER_CONCURRENCY="5")
    env.pop("REDIS_URL", None)
    supervisor = supervisors(env, 2)
    await wait_until(lambda: running(pg_db, 2, supervisor), timeout=30)
    await due_posts(pg_db, workspace, room, count=16, at=datetime.now(UTC))
    await wait_until(lambda: _all_published(pg_db, 16), timeout=60)
    sends = [r for r in sandbox.requests("matrix") if "/send/" in r["path"]]
    assert len(sends) == 16 and max(r["concurrent"] for r in sends) == 1
    texts = Counter(record["text"] for record in sandbox.records("matrix"))
    assert len(texts) == 16 and set(texts.values()) == {1}


async def test_a_killed_worker_process_is_restarted(
    pg_db: Database, sandbox: SandboxClient, supervisors: Start
) -> None:
    supervisor = supervisors(worker_env(pg_db, sandbox), 2)
    await wait_until(lambda: running(pg_db, 2, supervisor), timeout=30)
    victim = next(iter(await heartbeats(pg_db)))
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        others = {pid: state for pid, state in (await heartbeats(pg_db)).items() if pid != victim}
        return len(others) == 2 and set(others.values()) == {"running"}

    await wait_until(replaced, timeout=30, what=lambda: "a new process")
    supervisor.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(supervisor.wait, 30) == 0
    states = await heartbeats(pg_db)
    assert states.pop(victim) == "running"  # killed: it never said otherwise
    assert set(states.values()) == {"stopped"}


async def test_worker_processes_stop_when_their_supervisor_is_killed(
    pg_db: Database, sandbox: SandboxClient, supervisors: Start
) -> None:
    supervisor = supervisors(worker_env(pg_db, sandbox), 2)
    await wait_until(lambda: running(pg_db, 2, supervisor), timeout=30)
    supervisor.kill()
    await asyncio.to_thread(supervisor.wait, 10)

    async def all_stopped() -> bool:
        return set((await heartbeats(pg_db)).values()) == {"stopped"}

    await wait_until(all_stopped, timeout=30, what=lambda: "workers stopped")


async def test_each_worker_process_serves_its_metrics_on_its_own_port(
    pg_db: Database, sandbox: SandboxClient, supervisors: Start
) -> None:
    base = free_port_pair()
    supervisor = supervisors(worker_env(pg_db, sandbox, WORKER_METRICS_PORT=str(base)), 2)
    await wait_until(lambda: running(pg_db, 2, supervisor), timeout=30)
    async with httpx.AsyncClient(timeout=5) as client:
        for port in (base, base + 1):

            async def answers(port: int = port) -> bool:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/metrics")).is_success
                except httpx.TransportError:
                    return False

            await wait_until(answers, timeout=20, what=f"/metrics on port {port}")


@pytest.mark.acceptance
async def test_a_process_that_keeps_dying_stops_the_supervisor_non_zero() -> None:
    supervisor = Supervisor(
        command=[sys.executable, "-c", "import sys; sys.exit(3)"],
        processes=2,
        grace_seconds=1,
        restarts=Restarts(first_delay_seconds=0.01, give_up_after=3),
    )
    code = await asyncio.wait_for(supervisor.run(asyncio.Event()), timeout=30)
    assert (code, supervisor.gave_up) == (1, True)


@pytest.mark.parametrize(
    ("flag", "env"), [(["--processes", "2"], {}), ([], {"WORKER_PROCESSES": "3"})]
)
def test_sqlite_refuses_more_than_one_process(
    tmp_path: Path, flag: list[str], env: dict[str, str]
) -> None:
    database = tmp_path / "postpilot.db"
    result = CliRunner().invoke(
        app,
        ["worker", *flag],
        env={"DATABASE_URL": f"sqlite:///{database}", **env},
    )
    assert result.exit_code == 2
    assert "SQLite has one writer" in result.output
    assert not database.exists()


def test_commands_run_on_uvloop_where_it_is_installed() -> None:
    async def running_loop() -> str:
        return type(asyncio.get_running_loop()).__module__

    expected = "asyncio" if sys.platform == "win32" else "uvloop"
    assert loop.run(running_loop()).split(".")[0] == expected == loop.name()


def test_restart_delay_doubles_up_to_its_cap() -> None:
    restarts = Restarts(first_delay_seconds=0.5, max_delay_seconds=3)
    assert [restarts.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]


async def _all_published(db: Database, n: int) -> bool:
    return (await delivery_counts(db)).get("published", 0) == n
