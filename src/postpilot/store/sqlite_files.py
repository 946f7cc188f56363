"""SQLite database files handled directly with sqlite3: an online copy that other processes may
keep writing to, an integrity check, and the rows per postpilot table in a file."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from postpilot.errors import PostpilotError
from postpilot.store.rows import TABLES

BUSY_TIMEOUT_MS = 30_000


class SqliteFileError(PostpilotError):
    """A SQLite file could not be read, checked or written; nothing was overwritten."""


def copy_out(source: Path, target: Path) -> dict[str, int]:
    """Copy the database `source` into the new file `target` as one self-contained file
    (rollback journal, no -wal beside it), checked; returns its rows per table."""
    if not source.is_file():
        raise SqliteFileError(f"the SQLite database {source} does not exist")
    with contextlib.closing(_read_only(source)) as src:
        src.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        with contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
            _check(dst, target)
            return _counts(dst)


def copy_in(source: Path, target: Path) -> None:
    """Replace the whole database `target` by the file `source`, in one step under SQLite's
    locks, and put it back in WAL mode."""
    if not target.parent.is_dir():
        raise SqliteFileError(f"{target.parent} does not exist")
    with (
        contextlib.closing(_read_only(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        dst.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")


def file_counts(path: Path) -> dict[str, int]:
    """Rows per postpilot table in the SQLite file `path`, after an integrity check."""
    with contextlib.closing(_read_only(path)) as conn:
        _check(conn, path)
        return _counts(conn)


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    existing = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    return {
        name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
        for name in TABLES
        if name in existing
    }


def _check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise SqliteFileError(f"{path} is not a readable SQLite database: {exc}") from exc
    if result != "ok":
        raise SqliteFileError(f"{path} failed SQLite's integrity check: {result}")
