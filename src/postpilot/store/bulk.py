"""Many rows in one statement: rows travel as one JSON parameter and the database unpacks them
(PostgreSQL `json_to_recordset`, SQLite `json_each`). No parameter-count limit, one round trip."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ColumnType = Literal["text", "int", "timestamptz", "bool"]


@dataclass(frozen=True, slots=True)
class JsonRows:
    """The FROM item and per-column expressions for rows passed as the `:payload` parameter."""

    from_clause: str
    columns: Mapping[str, str]


def json_rows(
    dialect: str,
    columns: Sequence[tuple[str, ColumnType]],
    alias: str = "v",
    param: str = "payload",
) -> JsonRows:
    if dialect == "postgresql":
        spec = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
        return JsonRows(
            from_clause=f"json_to_recordset(CAST(:{param} AS json)) AS {alias}({spec})",
            columns={name: f"{alias}.{name}" for name, _ in columns},
        )
    return JsonRows(
        from_clause=f"json_each(:{param}) AS {alias}",
        columns={name: f"json_extract({alias}.value, '$.{name}')" for name, _ in columns},
    )


def encode(dialect: str, rows: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps([{k: _value(dialect, v) for k, v in row.items()} for row in rows])


def storable(value: str) -> str:
    """Text every database can hold: PostgreSQL refuses NUL, and JSON cannot carry a lone
    surrogate. Error texts quote platforms and URLs, which are not ours to trust."""
    if value.isprintable() or ("\x00" not in value and value.isascii()):
        return value
    cleaned = value.replace("\x00", "\ufffd")
    return cleaned.encode("utf-8", "replace").decode("utf-8")


def _value(dialect: str, value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        if dialect == "sqlite":
            # The text form SQLAlchemy's SQLite DateTime stores, so comparisons stay textual.
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value.isoformat()
    return value
