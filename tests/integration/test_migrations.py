"""The migrations build exactly the schema the models describe, and run down and up again."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from postpilot.store import schema
from postpilot.store.database import Database
from postpilot.store.tables import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(any_db: Database) -> None:
    async with any_db.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []
    assert await schema.current_revision(any_db) == schema.head_revision()


async def test_downgrade_to_nothing_and_back(any_db: Database) -> None:
    def down(connection: Connection) -> None:
        config = schema.alembic_config(any_db.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with any_db.engine.begin() as conn:
        await conn.run_sync(down)
    assert await schema.current_revision(any_db) is None
    await schema.upgrade(any_db)
    async with any_db.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []
