"""`postpilot scheduler use/tune/status` and /api/scheduler: every change stored with who, when,
from and to; bad input changes nothing; a running worker follows at its next pass."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.worker import Worker
from postpilot.store import posts, scheduler_config, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity
from tests.helpers import api_server, make_settings
from tests.migration.conftest import assert_one_line_error, change_count, run_cli
from tests.waiting import wait_until


async def status(db: Database) -> dict[str, object]:
    result = await run_cli(db, "scheduler", "status", "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, object] = json.loads(result.stdout)
    return found


async def test_use_records_who_when_from_to(any_db: Database) -> None:
    before = datetime.now(UTC)
    result = await run_cli(any_db, "scheduler", "use", "reference", "--actor", "alice")
    assert result.exit_code == 0, result.output
    assert "optimized -> reference (by alice)" in result.stdout

    again = await run_cli(any_db, "scheduler", "use", "reference", "--actor", "alice")
    assert again.exit_code == 0 and "nothing changed" in again.stdout
    assert await change_count(any_db) == 1, "a no-op switch records nothing"

    back = await run_cli(any_db, "scheduler", "use", "optimized")  # the default actor: user@host
    assert back.exit_code == 0, back.output

    found = await status(any_db)
    assert found["active"] == "optimized"
    changes = found["changes"]
    assert isinstance(changes, list) and len(changes) == 2
    newest, first = changes
    assert (first["actor"], first["setting"], first["from"], first["to"]) == (
        "alice",
        "active_scheduler",
        "optimized",
        "reference",
    )
    assert "@" in newest["actor"] and newest["actor"] != "alice"
    assert (newest["from"], newest["to"]) == ("reference", "optimized")
    assert before <= datetime.fromisoformat(first["at"]) <= datetime.now(UTC)


async def test_tune_and_reset(any_db: Database) -> None:
    tuned = await run_cli(
        any_db,
        "scheduler",
        "tune",
        "--concurrency",
        "1",
        "--batch-size",
        "5",
        "--interval",
        "10m",
        "--actor",
        "ops",
    )
    assert tuned.exit_code == 0, tuned.output
    found = await status(any_db)
    assert (found["concurrency"], found["batch_size"], found["interval_seconds"]) == (1, 5, 600)
    assert found["effective"] == {"concurrency": 1, "batch_size": 5, "interval_seconds": 600}
    async with any_db.engine.connect() as conn:
        config = await scheduler_config.read(conn)
    assert (config.concurrency, config.batch_size, config.interval_seconds) == (1, 5, 600)

    text = await run_cli(any_db, "scheduler", "status")
    assert text.exit_code == 0 and "10m" in text.stdout and "ops" in text.stdout

    reset = await run_cli(any_db, "scheduler", "tune", "--reset", "--actor", "ops")
    assert reset.exit_code == 0, reset.output
    found = await status(any_db)
    assert (found["concurrency"], found["batch_size"], found["interval_seconds"]) == (
        None,
        None,
        None,
    )
    assert found["effective"]["concurrency"] == 5  # the SCHEDULER_CONCURRENCY default
    settings_rows = [c for c in found["changes"] if c["to"] is None]
    assert {c["setting"] for c in settings_rows} == {
        "concurrency",
        "batch_size",
        "interval_seconds",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["use", "fast"], "unknown scheduler 'fast'"),
        (["use", "reference", "--actor", "  "], "actor must not be empty"),
        (["tune"], "nothing to change"),
        (["tune", "--concurrency", "0"], "concurrency must be between 1 and 1000"),
        (["tune", "--batch-size", "20000"], "batch size must be between"),
        (["tune", "--interval", "10x"], "'10x' is not a duration"),
        (["tune", "--interval", "0s"], "interval (seconds) must be between"),
        (["tune", "--reset", "--concurrency", "2"], "--reset goes alone"),
    ],
)
async def test_bad_input_is_one_line_and_changes_nothing(
    any_db: Database, args: list[str], message: str
) -> None:
    result = await run_cli(any_db, "scheduler", *args)
    assert_one_line_error(result, message)
    assert await change_count(any_db) == 0
    async with any_db.engine.connect() as conn:
        assert await scheduler_config.read(conn) == scheduler_config.SchedulerConfig()


@pytest.mark.integration  # its own empty SQLite database
async def test_out_of_date_schema_is_one_line(tmp_path: object) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    try:
        result = await run_cli(db, "scheduler", "use", "reference")
        assert_one_line_error(result, "postpilot db upgrade")
    finally:
        await db.dispose()


async def test_api_reads_and_changes_the_scheduler(any_db: Database) -> None:
    async with api_server(any_db) as api:
        workspace_key = await api.client.get("/api/scheduler")
        assert workspace_key.status_code == 401, "a workspace API key is not an operator"
        wrong = await api.client.get("/api/scheduler", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401

        got = await api.client.get("/api/scheduler", headers=api.cron())
        assert got.status_code == 200, got.text
        assert got.json()["active"] == "optimized" and got.json()["changes"] == []

        put = await api.client.put(
            "/api/scheduler",
            headers=api.cron(),
            json={"active": "reference", "concurrency": 2, "interval": "10m", "actor": "ops"},
        )
        assert put.status_code == 200, put.text
        body = put.json()
        assert body["active"] == "reference"
        assert body["effective"] == {"concurrency": 2, "batch_size": 20, "interval_seconds": 600}
        applied = {c["setting"]: c for c in body["applied"]}
        assert set(applied) == {"active_scheduler", "concurrency", "interval_seconds"}
        assert applied["active_scheduler"]["actor"] == "api:ops@127.0.0.1"
        assert (applied["active_scheduler"]["from"], applied["active_scheduler"]["to"]) == (
            "optimized",
            "reference",
        )

        count = await change_count(any_db)
        for bad in (
            {"concurrency": 0},
            {"active": "fast"},
            {"interval": "10x"},
            {"interval": 0},
            {},
            {"reset": True, "batch_size": 3},
            {"active": None},
            {"surprise": 1},
        ):
            refused = await api.client.put("/api/scheduler", headers=api.cron(), json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"]["message"], refused.text
        assert await change_count(any_db) == count, "refused requests change nothing"

        default = await api.client.put(
            "/api/scheduler", headers=api.cron(), json={"concurrency": None}
        )
        assert default.status_code == 200 and default.json()["concurrency"] is None
        assert default.json()["applied"][0]["actor"] == "api:operator@127.0.0.1"
        reset = await api.client.put("/api/scheduler", headers=api.cron(), json={"reset": True})
        assert reset.json()["interval_seconds"] is None
        assert reset.json()["active"] == "reference", "reset touches the knobs only"


async def test_api_is_off_without_cron_secret(sqlite_db: Database) -> None:
    async with api_server(sqlite_db, CRON_SECRET="") as api:
        response = await api.client.get("/api/scheduler", headers=api.cron())
        assert response.status_code == 503
        assert "CRON_SECRET" in response.json()["error"]["message"]


async def _due_post(db: Database, workspace_id: str, account: Account, text: str) -> str:
    async with db.transaction() as session:
        merged = await session.merge(account)
        post = await posts.create_post(
            session,
            workspace_id=workspace_id,
            text_=text,
            media_urls=[],
            overrides={},
            scheduled_at=datetime.now(UTC) - timedelta(seconds=1),
            timezone="UTC",
            accounts=[merged],
            now=datetime.now(UTC),
        )
        return post.id


async def _published_by(db: Database, post_id: str, timeout: float = 30.0) -> str:
    """Wait for the post's `published` activity and return its actor (the scheduler)."""
    query = select(Activity.actor).where(Activity.post_id == post_id, Activity.event == "published")
    actors: list[str] = []

    async def published() -> bool:
        async with db.engine.connect() as conn:
            actor = (await conn.execute(query)).scalar_one_or_none()
        actors.extend([str(actor)] if actor is not None else [])
        return bool(actors)

    await wait_until(published, timeout=timeout, every=0.1, what=f"post {post_id} published")
    return actors[0]


async def _passes(worker: Worker, count: int, timeout: float = 30.0) -> None:
    await wait_until(lambda: worker.passes >= count, timeout=timeout, what=f"{count} passes")


async def test_running_worker_follows_a_switch_at_its_next_pass(
    any_db: Database, sandbox: SandboxClient
) -> None:
    runtime = build_runtime(make_settings(any_db, sandbox, WORKER_POLL_SECONDS=0.1), db=any_db)
    async with any_db.transaction() as session:
        created = await workspaces.create_workspace(session, name="real")
        account = Account(
            workspace_id=created.workspace.id,
            platform="mastodon",
            handle="@ops",
            base_url=sandbox.platform_url("mastodon"),
            options={},
            credentials=runtime.cipher.encrypt({"access_token": "token-ops"}),
        )
        session.add(account)
    worker = Worker(runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        first = await _due_post(any_db, created.workspace.id, account, "before the switch")
        runtime.wakeup.set()
        assert await _published_by(any_db, first) == "optimized"

        listed = await status(any_db)
        assert worker.worker_id in [w["worker_id"] for w in listed["workers"]]

        switched = await run_cli(any_db, "scheduler", "use", "reference", "--actor", "ops")
        assert switched.exit_code == 0, switched.output
        tuned = await run_cli(any_db, "scheduler", "tune", "--batch-size", "3", "--actor", "ops")
        assert tuned.exit_code == 0, tuned.output
        passes = worker.passes
        # A pass that read the settings just before the change may still be running: the
        # switch applies from the next one. Two more passes guarantee one began after it.
        await _passes(worker, passes + 2)
        second = await _due_post(any_db, created.workspace.id, account, "after the switch")
        runtime.wakeup.set()
        assert await _published_by(any_db, second) == "reference"
        assert worker.last_report is not None and worker.last_report.limit == 3

        back = await run_cli(any_db, "scheduler", "use", "optimized", "--actor", "ops")
        assert back.exit_code == 0, back.output
        await _passes(worker, worker.passes + 2)
        third = await _due_post(any_db, created.workspace.id, account, "after the rollback")
        runtime.wakeup.set()
        assert await _published_by(any_db, third) == "optimized"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await runtime.close()
    assert len(sandbox.records("mastodon")) == 3
