"""The engine, sessions and the statement counter every pass reports.

A PostgreSQL URL may end in `?pooler=transaction` when it points at a connection pooler in
transaction mode (PgBouncer's `pool_mode = transaction`): consecutive transactions of one client
connection then run on different server sessions, so nothing may outlive a transaction. The
engine then prepares only unnamed statements (asyncpg re-parses them in each statement's own
round trip) and LISTEN needs a direct connection (the worker's DATABASE_LISTEN_URL)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from postpilot.errors import PostpilotError

POOLER_OPTION = "pooler"
POOLER_MODES = ("transaction",)


class BadPoolerOption(PostpilotError):
    """DATABASE_URL's `pooler` option accepts only `transaction` (a pooler in transaction mode,
    such as PgBouncer's pool_mode = transaction), on a PostgreSQL URL."""


@dataclass
class StatementCounter:
    """Counts statements sent to the database within a `counting()` block (one pass)."""

    count: int = 0
    statements: list[str] = field(default_factory=list)
    keep_text: bool = False

    def add(self, statement: str) -> None:
        self.count += 1
        if self.keep_text:
            self.statements.append(statement)


_current_counter: contextvars.ContextVar[StatementCounter | None] = contextvars.ContextVar(
    "postpilot_statement_counter", default=None
)


@contextlib.contextmanager
def counting(*, keep_text: bool = False) -> Iterator[StatementCounter]:
    """Count the statements this task (and tasks it starts) sends, e.g. during one pass."""
    counter = StatementCounter(keep_text=keep_text)
    token = _current_counter.set(counter)
    try:
        yield counter
    finally:
        _current_counter.reset(token)


class Database:
    """One engine per process. `dialect` is 'sqlite' or 'postgresql'."""

    def __init__(self, url: str, *, max_connections: int = 20, echo: bool = False) -> None:
        self.url = url
        self.max_connections = max_connections
        # Through a transaction pooler: no session state (prepared statements, LISTEN) survives.
        self.pooled = pooled(url)
        self.engine: AsyncEngine = _create_engine(url, max_connections=max_connections, echo=echo)
        self.dialect: str = self.engine.dialect.name
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.connections_in_use = 0
        self.peak_connections_in_use = 0
        self._install_listeners()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    def reset_peak_connections(self) -> int:
        peak = self.peak_connections_in_use
        self.peak_connections_in_use = self.connections_in_use
        return peak

    async def dispose(self) -> None:
        await self.engine.dispose()

    def _install_listeners(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _count(
            _conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
        ) -> None:
            counter = _current_counter.get()
            if counter is not None:
                counter.add(statement)

        @event.listens_for(sync_engine, "checkout")
        def _checkout(*_args: Any) -> None:
            self.connections_in_use += 1
            self.peak_connections_in_use = max(
                self.peak_connections_in_use, self.connections_in_use
            )

        @event.listens_for(sync_engine, "checkin")
        def _checkin(*_args: Any) -> None:
            self.connections_in_use = max(0, self.connections_in_use - 1)

        if self.is_sqlite:

            @event.listens_for(sync_engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                # WAL lets readers run beside the single writer; busy_timeout makes a second
                # process wait for the write lock instead of failing at once.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()


CONNECT_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 60.0


def pooled(url: str) -> bool:
    """Whether the URL says a pooler in transaction mode sits in front of PostgreSQL."""
    parsed = make_url(url)
    mode = parsed.query.get(POOLER_OPTION)
    if mode is None:
        return False
    if mode not in POOLER_MODES or parsed.get_backend_name() != "postgresql":
        raise BadPoolerOption()
    return True


def without_pooler_option(url: str | URL) -> URL:
    """The URL the driver sees: `pooler` is ours, asyncpg would refuse it."""
    return make_url(url).difference_update_query([POOLER_OPTION])


def asyncpg_dsn(url: str) -> str:
    """A plain asyncpg DSN for a dedicated connection (LISTEN), password included."""
    plain = without_pooler_option(url).set(drivername="postgresql")
    return plain.render_as_string(hide_password=False)


def _create_engine(url: str, *, max_connections: int, echo: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One writer at a time anyway: a small pool saves reconnecting (and re-running pragmas).
        return create_async_engine(url, echo=echo, pool_size=5, max_overflow=max_connections)
    overflow = max(0, max_connections - max(1, max_connections // 2))
    # A database that stops answering (not refusing) must not hold a pass forever.
    connect_args: dict[str, Any] = {
        "timeout": CONNECT_TIMEOUT_SECONDS,
        "command_timeout": STATEMENT_TIMEOUT_SECONDS,
    }
    if pooled(url):
        # A named statement lives in one server session, which the next transaction may not
        # get. Unnamed ones are parsed again within each statement's own round trip; SQLAlchemy
        # may keep their descriptions (no round trip to describe them again).
        connect_args |= {"statement_cache_size": 0, "prepared_statement_name_func": _unnamed}
    return create_async_engine(
        without_pooler_option(url),
        echo=echo,
        pool_size=max(1, max_connections // 2),
        max_overflow=overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _unnamed() -> str:
    return ""


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached (worth retrying), as opposed to refusing the data."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError)
