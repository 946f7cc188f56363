"""Schema versions: apply migrations, and refuse to run on an out-of-date schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from postpilot.errors import PostpilotError
from postpilot.store.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaOutOfDate(PostpilotError):
    """The database schema is not at the version this code needs."""


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


async def upgrade(db: Database, revision: str = "head") -> None:
    def _upgrade(connection: Connection) -> None:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(db: Database) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_current)


async def ensure_current(db: Database) -> None:
    current, head = await current_revision(db), head_revision()
    if current != head:
        where = "is empty" if current is None else f"is at schema version {current}"
        raise SchemaOutOfDate(
            f"the database at {db.engine.url.render_as_string(hide_password=True)} {where}, "
            f"this postpilot needs {head}: run `postpilot db upgrade` first"
        )
