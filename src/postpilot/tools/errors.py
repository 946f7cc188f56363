"""One-line messages for database errors the migration commands expect (unreachable server,
missing database, permission denied), so the CLI never shows a traceback for them."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError


def db_error_line(exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"database error: {lines[0] if lines else type(cause).__name__}"
