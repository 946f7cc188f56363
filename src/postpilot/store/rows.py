"""Rows per postpilot table, counted through the engine or inside an exported PostgreSQL
snapshot, and the statements that drop postpilot tables."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.store.database import Database
from postpilot.store.tables import Base

# Tables in dependency order, parents first: the order rows are counted and shown in.
TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


async def existing_tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_table_names)


async def counts(db: Database) -> dict[str, int]:
    """Rows per postpilot table that exists in the database (none: an empty database)."""
    async with db.engine.connect() as conn:
        return await _counts(conn)


@contextlib.asynccontextmanager
async def exported_snapshot(db: Database) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A PostgreSQL snapshot id other sessions can read (`pg_dump --snapshot`) and the rows per
    table in it. The snapshot lives as long as this context: use it inside."""
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            snapshot = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            yield str(snapshot), await _counts(conn)


def drop_statements(names: Iterable[str]) -> str:
    """SQL that drops the named tables if they exist, with what depends on them."""
    return "".join(f'DROP TABLE IF EXISTS "{name}" CASCADE;\n' for name in names)


async def _counts(conn: AsyncConnection) -> dict[str, int]:
    existing = await conn.run_sync(_table_names)
    found = {}
    for name in TABLES:
        if name in existing:
            count = await conn.execute(text(f'SELECT count(*) FROM "{name}"'))
            found[name] = int(count.scalar_one())
    return found


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())
