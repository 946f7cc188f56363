"""`postpilot db backup/restore`: a round trip on SQLite and PostgreSQL checked by row counts,
a refusal to overwrite rows without --force, and one-line errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from postpilot.crypto import CredentialCipher
from postpilot.store import rows, schema, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Workspace
from postpilot.tools import backup, demo
from tests.helpers import TEST_SECRET_KEY
from tests.migration.conftest import assert_one_line_error, run_cli


async def _fill(db: Database) -> dict[str, int]:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await workspaces.create_workspace(session, name="acme")
    await demo.seed(
        db,
        CredentialCipher(TEST_SECRET_KEY),
        sandbox_url="http://127.0.0.1:9",
        count=7,
        start=now + timedelta(hours=1),
        spread=timedelta(minutes=10),
        now=now,
    )
    result = await run_cli(db, "scheduler", "use", "reference", "--actor", "ops")
    assert result.exit_code == 0, result.output
    return await rows.counts(db)


async def test_backup_restore_round_trip(
    any_db: Database, other_db: Database, tmp_path: Path
) -> None:
    counts = await _fill(any_db)
    assert counts["posts"] == 7 and counts["deliveries"] > 7 and counts["scheduler_changes"] == 1
    path = tmp_path / "postpilot.backup"

    made = await run_cli(any_db, "db", "backup", str(path))
    assert made.exit_code == 0, made.output
    assert path.is_file() and not list(tmp_path.glob(".*partial"))
    for name, count in counts.items():
        assert f"{name}" in made.stdout and f"{count:,}" in made.stdout
    kind, in_file = await backup.backup_counts(path)
    assert kind == any_db.dialect and in_file == counts

    await schema.upgrade(other_db)  # the usual target: a migrated, empty database
    restored = await run_cli(other_db, "db", "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert "row counts match the backup" in restored.stdout
    assert await rows.counts(other_db) == counts
    assert await schema.current_revision(other_db) == schema.head_revision()

    # The restored database now holds rows: a second restore needs --force, and changes nothing.
    async with other_db.transaction() as session:
        await workspaces.create_workspace(session, name="written after the restore")
    grown = await rows.counts(other_db)
    refused = await run_cli(other_db, "db", "restore", str(path))
    assert_one_line_error(refused, "not empty", "--force")
    assert await rows.counts(other_db) == grown

    forced = await run_cli(other_db, "db", "restore", str(path), "--force")
    assert forced.exit_code == 0, forced.output
    assert "replaced the rows that were there" in forced.stdout
    assert await rows.counts(other_db) == counts
    assert await rows.counts(any_db) == counts, "the source is untouched"


async def test_restore_into_a_database_without_schema(
    any_db: Database, other_db: Database, tmp_path: Path
) -> None:
    counts = await _fill(any_db)
    path = tmp_path / "b.dump"
    assert (await run_cli(any_db, "db", "backup", str(path))).exit_code == 0
    restored = await run_cli(other_db, "db", "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert await rows.counts(other_db) == counts


async def test_backup_refuses_to_replace_a_file(sqlite_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "exists.db"
    path.write_text("keep me")
    result = await run_cli(sqlite_db, "db", "backup", str(path))
    assert_one_line_error(result, "exists", "--force")
    assert path.read_text() == "keep me"
    replaced = await run_cli(sqlite_db, "db", "backup", str(path), "--force")
    assert replaced.exit_code == 0, replaced.output
    assert backup.backup_kind(path) == "sqlite"
    missing_dir = await run_cli(sqlite_db, "db", "backup", str(tmp_path / "no" / "x.db"))
    assert_one_line_error(missing_dir, "does not exist")


async def test_bad_restores_are_one_line_and_change_nothing(
    any_db: Database, tmp_path: Path
) -> None:
    counts = await _fill(any_db)
    junk = tmp_path / "junk"
    junk.write_text("not a backup")
    assert_one_line_error(
        await run_cli(any_db, "db", "restore", str(junk), "--force"), "neither a SQLite"
    )
    assert_one_line_error(
        await run_cli(any_db, "db", "restore", str(tmp_path / "missing"), "--force"),
        "does not exist",
    )
    # A backup of the other kind of database.
    other = Database(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        await schema.upgrade(other)
        foreign = tmp_path / "foreign.backup"
        if any_db.is_sqlite:
            foreign.write_bytes(b"PGDMP" + b"\0" * 100)
        else:
            assert (await run_cli(other, "db", "backup", str(foreign))).exit_code == 0
    finally:
        await other.dispose()
    refused = await run_cli(any_db, "db", "restore", str(foreign), "--force")
    assert_one_line_error(refused, "backup and DATABASE_URL points at")
    assert await rows.counts(any_db) == counts


async def test_backup_is_consistent_while_a_writer_is_busy(
    any_db: Database, tmp_path: Path
) -> None:
    counts = await _fill(any_db)
    path = tmp_path / "busy.backup"
    async with any_db.engine.connect() as writer:
        await writer.begin()
        await writer.execute(
            Workspace.__table__.insert().values(id="uncommitted", name="in flight")
        )
        made = await run_cli(any_db, "db", "backup", str(path))
        assert made.exit_code == 0, made.output
        await writer.commit()
    _, in_file = await backup.backup_counts(path)
    assert in_file == counts, "the backup holds committed rows only"
    assert (await rows.counts(any_db))["workspaces"] == counts["workspaces"] + 1


async def test_restore_rolls_the_schema_back_to_the_backups(
    any_db: Database, other_db: Database, tmp_path: Path
) -> None:
    """The migration rollback: back up at an older schema version, upgrade, restore. The restored
    database is the backup, schema included, and upgrades again."""
    await schema.upgrade(other_db, "0002")
    async with other_db.transaction() as session:
        # A bare row: today's models may have columns (api_keys.last_used_at) 0002 lacks.
        session.add(Workspace(name="before the upgrade"))
    path = tmp_path / "at-0002.backup"
    assert (await run_cli(other_db, "db", "backup", str(path))).exit_code == 0
    await schema.upgrade(other_db)  # adds the monitor's tables (0003 and later)
    assert "pass_metrics" in await rows.counts(other_db)

    restored = await run_cli(other_db, "db", "restore", str(path), "--force")
    assert restored.exit_code == 0, restored.output
    assert "run `postpilot db upgrade`" in restored.stdout
    assert await schema.current_revision(other_db) == "0002"
    counts = await rows.counts(other_db)
    assert "pass_metrics" not in counts and counts["workspaces"] == 1

    upgraded = await run_cli(other_db, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert await schema.current_revision(other_db) == schema.head_revision()
