"""Scratch databases beside a source: empty, migrated to the current schema, removed on exit.

SQLite: files in a temporary directory. PostgreSQL: `CREATE DATABASE` on the source's server,
which needs the CREATEDB privilege; copying rows into a new database, rather than
`CREATE DATABASE ... TEMPLATE`, works while others are connected to the source.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from postpilot.errors import PostpilotError
from postpilot.store import schema
from postpilot.store.database import Database


class ScratchUnavailable(PostpilotError):
    """A scratch database could not be created."""


@contextlib.asynccontextmanager
async def databases(
    source: Database, names: Sequence[str], *, prefix: str
) -> AsyncIterator[dict[str, str]]:
    """One scratch database per name (name -> URL), of the source's kind; `prefix` starts their
    file or database names so leftovers are recognisable."""
    if source.is_sqlite:
        directory = Path(tempfile.mkdtemp(prefix=f"{prefix.replace('_', '-')}-"))
        try:
            urls = {name: f"sqlite+aiosqlite:///{directory / f'{name}.db'}" for name in names}
            await _migrate(urls.values())
            yield urls
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    unique = f"{prefix}_{uuid.uuid4().hex[:10]}"
    base = make_url(source.url)
    created: list[str] = []
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in names:
                database = f"{unique}_{name}"
                try:
                    await conn.execute(text(f'CREATE DATABASE "{database}"'))
                except DBAPIError as exc:
                    raise ScratchUnavailable(
                        f"cannot create the scratch database {database} on the source's server "
                        f"(it needs the CREATEDB privilege): {str(exc.orig).strip()}"
                    ) from exc
                created.append(database)
        urls = {
            name: base.set(database=f"{unique}_{name}").render_as_string(hide_password=False)
            for name in names
        }
        await _migrate(urls.values())
        yield urls
    finally:
        async with admin.connect() as conn:
            for database in created:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


async def _migrate(urls: Iterable[str]) -> None:
    for url in urls:
        db = Database(url, max_connections=2)
        try:
            await schema.upgrade(db)
        finally:
            await db.dispose()
