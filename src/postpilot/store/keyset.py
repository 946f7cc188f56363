"""Keyset pagination: the rows after a sort key, so a page never re-reads the ones before it
and rows inserted meanwhile neither repeat nor hide others."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, tuple_

# The (created_at, id) of the last row a page showed.
Key = tuple[datetime, str]


def after(
    created_at: Any, row_id: Any, key: Key, *, descending: bool = False
) -> ColumnElement[bool]:
    """Rows past `key` in (created_at, id) order; a row value comparison, which both SQLite and
    PostgreSQL answer from an index on (..., created_at, id)."""
    if descending:
        return tuple_(created_at, row_id) < tuple_(*key)
    return tuple_(created_at, row_id) > tuple_(*key)
