"""The engine, sessions and the statement counter every pass reports."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


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


def _create_engine(url: str, *, max_connections: int, echo: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One writer at a time anyway: a small pool saves reconnecting (and re-running pragmas).
        return create_async_engine(url, echo=echo, pool_size=5, max_overflow=max_connections)
    overflow = max(0, max_connections - max(1, max_connections // 2))
    return create_async_engine(
        url,
        echo=echo,
        pool_size=max(1, max_connections // 2),
        max_overflow=overflow,
        pool_pre_ping=True,
        # A database that stops answering (not refusing) must not hold a pass forever.
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": STATEMENT_TIMEOUT_SECONDS,
        },
    )


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached (worth retrying), as opposed to refusing the data."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError)
