"""The due workload of a database, copied into scratch databases where schedulers can run on it.

How the copy is made (the same for SQLite and PostgreSQL): one read-only transaction on the
source (REPEATABLE READ on PostgreSQL) selects the deliveries a pass would claim at that moment
(pending, `due_at <= now`, earliest first, at most `limit`) together with their posts, accounts
and workspaces. Each scratch database is a new database (a file in a temporary directory for
SQLite; `CREATE DATABASE` on the source's PostgreSQL server, which needs the CREATEDB privilege)
migrated to the current schema, into which those rows are inserted unchanged, except that media
URLs point at the sandbox so nothing is fetched from the internet. The source is only read: no
lock is taken, no row is written, and workers may keep running. Copying rows rather than the whole
database keeps the copy proportional to the workload, and works on PostgreSQL while others are
connected (`CREATE DATABASE ... TEMPLATE` would need the source to be idle).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Table, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from postpilot.errors import PostpilotError
from postpilot.store import schema, work
from postpilot.store.database import Database
from postpilot.store.tables import Workspace

CHUNK = 500
workspaces_table: Table = Workspace.__table__  # type: ignore[assignment]
# Parents first, the order rows are inserted in.
TABLES: tuple[Table, ...] = (workspaces_table, work.accounts, work.posts, work.deliveries)


class NothingDue(PostpilotError):
    """No delivery is due in the source database."""


class ScratchUnavailable(PostpilotError):
    """A scratch database could not be created."""


@dataclass
class Workload:
    taken_at: datetime
    limit: int
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def delivery_ids(self) -> list[str]:
        return [row["id"] for row in self.rows.get("deliveries", [])]

    @property
    def size(self) -> int:
        return len(self.rows.get("deliveries", []))

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


async def take(source: Database, *, now: datetime, limit: int) -> Workload:
    """Read the due workload in one consistent snapshot; never writes to `source`."""
    deliveries = work.deliveries
    workload = Workload(taken_at=now, limit=limit)
    async with source.engine.connect() as conn:
        if not source.is_sqlite:
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            due = (
                await conn.execute(
                    select(deliveries)
                    .where(deliveries.c.status.in_(work.PENDING), deliveries.c.due_at <= now)
                    .order_by(deliveries.c.due_at, deliveries.c.id)
                    .limit(limit)
                )
            ).all()
            rows = [dict(row._mapping) for row in due]
            posts = await _by_id(conn, work.posts, {r["post_id"] for r in rows})
            accounts = await _by_id(conn, work.accounts, {r["account_id"] for r in rows})
            spaces = {r["workspace_id"] for r in rows} | {a["workspace_id"] for a in accounts}
            workspaces = await _by_id(conn, workspaces_table, spaces)
    workload.rows = {
        "workspaces": workspaces,
        "accounts": accounts,
        "posts": posts,
        "deliveries": rows,
    }
    return workload


async def _by_id(conn: AsyncConnection, table: Table, ids: set[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        result = await conn.execute(select(table).where(table.c.id.in_(chunk)))
        found.extend(dict(row._mapping) for row in result)
    return found


def sandbox_media(urls: Sequence[str], sandbox_url: str) -> list[str]:
    """The same number of media, served by the sandbox; the file name is kept so an image stays
    an image (`*.png`) and a non-image stays one."""
    rewritten = []
    for index, url in enumerate(urls):
        name = Path(urlsplit(url).path).name or f"media-{index}.png"
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]
        rewritten.append(f"{sandbox_url.rstrip('/')}/_sandbox/media/{name}")
    return rewritten


async def materialize(workload: Workload, target: Database, *, sandbox_url: str) -> None:
    """Insert the workload into a migrated, empty `target`."""
    async with target.engine.begin() as conn:
        for table in TABLES:
            rows = workload.rows.get(table.name, [])
            if table.name == "posts":
                rows = [
                    {**row, "media_urls": sandbox_media(row["media_urls"] or [], sandbox_url)}
                    for row in rows
                ]
            for start in range(0, len(rows), CHUNK):
                await conn.execute(insert(table), rows[start : start + CHUNK])


@contextlib.asynccontextmanager
async def scratch_databases(
    source: Database, names: Sequence[str]
) -> AsyncIterator[dict[str, str]]:
    """Empty, migrated databases beside the source (name -> URL), removed on exit."""
    if source.is_sqlite:
        directory = Path(tempfile.mkdtemp(prefix="postpilot-compare-"))
        try:
            urls = {name: f"sqlite+aiosqlite:///{directory / f'{name}.db'}" for name in names}
            await _migrate(urls.values())
            yield urls
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    prefix = f"postpilot_compare_{uuid.uuid4().hex[:10]}"
    base = make_url(source.url)
    created: list[str] = []
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in names:
                database = f"{prefix}_{name}"
                try:
                    await conn.execute(text(f'CREATE DATABASE "{database}"'))
                except DBAPIError as exc:
                    raise ScratchUnavailable(
                        f"cannot create the scratch database {database} on the source's server "
                        f"(compare needs the CREATEDB privilege): {str(exc.orig).strip()}"
                    ) from exc
                created.append(database)
        urls = {
            name: base.set(database=f"{prefix}_{name}").render_as_string(hide_password=False)
            for name in names
        }
        await _migrate(urls.values())
        yield urls
    finally:
        async with admin.connect() as conn:
            for database in created:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


async def _migrate(urls: Any) -> None:
    for url in urls:
        db = Database(url, max_connections=2)
        try:
            await schema.upgrade(db)
        finally:
            await db.dispose()
