"""Back up and restore the database, checked by row counts per table.

SQLite: the sqlite3 online-backup API, which copies a consistent snapshot while other processes
keep writing; the backup is one self-contained file (rollback journal, no -wal beside it).

PostgreSQL: `pg_dump --format=custom` and `pg_restore`. The backup opens a REPEATABLE READ
transaction, exports its snapshot, counts every table in it and runs `pg_dump --snapshot`, so
the counts describe exactly the rows in the dump; the dump is then read back (`pg_restore
--data-only -f -`) and its rows counted again. A restore runs in one transaction
(`pg_restore --clean --if-exists --no-owner --no-privileges` piped into
`psql --single-transaction`, after dropping postpilot tables the backup does not have): it
applies completely or not at all, and leaves exactly the backup's schema.

Either way a backup is written to a temporary file and renamed into place, and a restore is
verified afterwards: the row count of every table in the database must equal its count in the
backup. A restore refuses a database that holds any row unless forced. The SQL involved (row
counts, the exported snapshot, the SQLite file copies) is the store's: `store/rows.py` and
`store/sqlite_files.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from postpilot.errors import PostpilotError
from postpilot.store import rows, schema, sqlite_files
from postpilot.store.database import Database

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"


class BackupError(PostpilotError):
    """The backup or restore could not be done; nothing was overwritten."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    dialect: str
    revision: str | None
    counts: dict[str, int]
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RestoreResult:
    path: Path
    dialect: str
    revision: str | None
    expected: dict[str, int]  # rows per table in the backup
    counts: dict[str, int]  # rows per table in the database after the restore
    replaced: dict[str, int] = field(default_factory=dict)  # rows there before (with --force)

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        names = set(self.expected) | set(self.counts)
        return {
            name: (self.expected.get(name, 0), self.counts.get(name, 0))
            for name in sorted(names)
            if self.expected.get(name, 0) != self.counts.get(name, 0)
        }


async def backup(db: Database, path: Path, *, force: bool = False) -> BackupResult:
    path = path.expanduser()
    if path.exists() and not force:
        raise BackupError(f"{path} exists: choose another path or add --force to replace it")
    if path.is_dir():
        raise BackupError(f"{path} is a directory: give a file path")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} does not exist")
    partial = path.with_name(f".{path.name}.partial")
    try:
        if db.is_sqlite:
            counts = await asyncio.to_thread(sqlite_files.copy_out, _sqlite_file(db.url), partial)
        else:
            counts = await _pg_backup(db, partial)
            found = await _pg_dump_counts(partial)
            if wrong := _differences(counts, found):
                raise BackupError(f"the dump does not hold the rows counted: {wrong}")
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(
        path=path,
        dialect=db.dialect,
        revision=await schema.current_revision(db),
        counts=counts,
        size_bytes=path.stat().st_size,
    )


async def backup_counts(path: Path) -> tuple[str, dict[str, int]]:
    """The dialect of a backup file and its rows per table."""
    kind = backup_kind(path)
    if kind == "sqlite":
        return kind, await asyncio.to_thread(sqlite_files.file_counts, path)
    return kind, await _pg_dump_counts(path)


def backup_kind(path: Path) -> str:
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_CUSTOM_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump custom-format archive")


async def restore(db: Database, path: Path, *, force: bool = False) -> RestoreResult:
    path = path.expanduser()
    kind = backup_kind(path)
    if kind != db.dialect:
        raise BackupError(
            f"{path} is a {kind} backup and DATABASE_URL points at {db.dialect}: restore it "
            f"into a {kind} database"
        )
    _, expected = await backup_counts(path)
    if not expected:
        raise BackupError(f"{path} holds no postpilot tables")
    before = await rows.counts(db)
    filled = {name: count for name, count in before.items() if count}
    if filled and not force:
        shown = ", ".join(f"{name} {count}" for name, count in filled.items())
        raise BackupError(
            f"the database is not empty ({shown} rows): add --force to replace its contents"
        )
    if db.is_sqlite:
        target = _sqlite_file(db.url)
        await db.dispose()  # our own pooled connections must not hold the file meanwhile
        await asyncio.to_thread(sqlite_files.copy_in, path, target)
    else:
        await db.dispose()
        await _pg_restore(db, path)
    after = await rows.counts(db)
    return RestoreResult(
        path=path,
        dialect=db.dialect,
        revision=await schema.current_revision(db),
        expected=expected,
        counts=after,
        replaced=filled,
    )


def _differences(expected: dict[str, int], found: dict[str, int]) -> str:
    names = sorted(set(expected) | set(found))
    return ", ".join(
        f"{n}: {expected.get(n, 0)} vs {found.get(n, 0)}"
        for n in names
        if expected.get(n, 0) != found.get(n, 0)
    )


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


# --- PostgreSQL -------------------------------------------------------------------------------


def _libpq(db: Database) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries the password."""
    url = make_url(db.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed or not on PATH (it ships with PostgreSQL)")
    return found


async def _run(*args: str, env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        detail = lines[0] if lines else f"exit code {process.returncode}"
        raise BackupError(f"{Path(args[0]).name} failed: {detail}")


async def _pg_backup(db: Database, partial: Path) -> dict[str, int]:
    pg_dump = _tool("pg_dump")
    dsn, env = _libpq(db)
    async with rows.exported_snapshot(db) as (snapshot, counts):
        await _run(
            pg_dump,
            "--format=custom",
            f"--snapshot={snapshot}",
            f"--file={partial}",
            f"--dbname={dsn}",
            env=env,
        )
    return counts


_COPY = re.compile(r'^COPY (?:"?[^".]+"?\.)?"?([^" (]+)"? \(')


async def _pg_dump_counts(path: Path) -> dict[str, int]:
    """Rows per table in a custom-format dump, read from its data section: COPY text format
    writes one line per row (newlines inside values are escaped)."""
    pg_restore = _tool("pg_restore")
    process = await asyncio.create_subprocess_exec(
        pg_restore,
        "--data-only",
        "--file=-",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=2**24,
    )
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    counts: dict[str, int] = {}
    table: str | None = None
    try:
        while raw := await process.stdout.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            if table is None:
                if match := _COPY.match(line):
                    table = match.group(1)
                    counts[table] = 0
            elif line == "\\.":
                table = None
            else:
                counts[table] += 1
    finally:
        if process.returncode is None and not process.stdout.at_eof():
            process.kill()
        code = await process.wait()
        message = (await errors).decode(errors="replace")
    if code != 0:
        lines = [line for line in message.splitlines() if line.strip()]
        raise BackupError(f"pg_restore could not read {path}: {lines[0] if lines else code}")
    return {name: counts[name] for name in rows.TABLES if name in counts}


async def _pg_restore(db: Database, path: Path) -> None:
    """The archive's SQL (`pg_restore --clean --if-exists -f -`) piped into one psql transaction,
    preceded by dropping the postpilot tables the archive does not have (say, a table a later
    migration added): afterwards the schema is exactly the backup's, so `postpilot db upgrade`
    can take it forward again. Any error rolls the whole restore back."""
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    dsn, env = _libpq(db)
    in_archive = await _archive_tables(pg_restore, path)
    present = await rows.existing_tables(db)
    ours = set(rows.TABLES) | {"alembic_version"}
    prelude = rows.drop_statements(sorted((present & ours) - in_archive))
    source = await asyncio.create_subprocess_exec(
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--file=-",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    sink = await asyncio.create_subprocess_exec(
        psql,
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={dsn}",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert source.stdout and source.stderr and sink.stdin and sink.stderr
    source_errors = asyncio.create_task(source.stderr.read())
    sink_errors = asyncio.create_task(sink.stderr.read())
    try:
        sink.stdin.write(prelude.encode())
        while chunk := await source.stdout.read(1 << 16):
            sink.stdin.write(chunk)
            await sink.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # psql stopped at an error: reported below
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sink.stdin.close()
        if source.returncode is None and not source.stdout.at_eof():
            source.kill()
        read_code, write_code = await source.wait(), await sink.wait()
    for code, errors, tool in (
        (write_code, await sink_errors, "psql"),
        (read_code, await source_errors, "pg_restore"),
    ):
        if code != 0:
            lines = [line for line in errors.decode(errors="replace").splitlines() if line.strip()]
            detail = lines[0] if lines else f"exit code {code}"
            raise BackupError(f"{tool} failed, nothing was restored: {detail}")


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )\S+ (\S+) ")


async def _archive_tables(pg_restore: str, path: Path) -> set[str]:
    process = await asyncio.create_subprocess_exec(
        pg_restore,
        "--list",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        raise BackupError(f"pg_restore could not list {path}: {lines[0] if lines else ''}")
    return {
        match.group(1).strip('"')
        for line in out.decode(errors="replace").splitlines()
        if (match := _TOC_TABLE.match(line))
    }
