"""Bounded field types for request bodies and parameters: every string, list and object a client
sends has a size limit, so no request can make a row, a response or a pass unbounded."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from postpilot.core import timezones

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_OBJECT_BYTES = 16 * 1024
MAX_OBJECT_DEPTH = 8


def _zone_name(value: str) -> str:
    timezones.zone(value)
    return value


def _iso_text(value: object) -> object:
    # Pydantic would read a number (or "0.5") as seconds since 1970: the schema promises ISO 8601.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("give a date and time as ISO 8601 text, e.g. 2027-03-28T09:00:00+01:00")


def _representable(value: datetime) -> datetime:
    """An aware moment must be one we can store and show in any zone; a naive one is checked
    when its zone is known."""
    if value.tzinfo is not None:
        timezones.in_range(value)
    return value


def _bounded_object(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_OBJECT_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_OBJECT_BYTES} are accepted")
    if depth(value) > MAX_OBJECT_DEPTH:
        raise ValueError(f"is nested more than {MAX_OBJECT_DEPTH} levels deep")
    return value


def depth(value: Any) -> int:
    """Levels of objects and lists: {} is 1, {"a": [1]} is 2, a scalar is 0."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
        else:
            continue
        deepest = max(deepest, level + 1)
    return deepest


Text = Annotated[str, Field(max_length=100_000)]
# JSON bodies only: a query string's numbers arrive as text and need the lax int.
Count = Annotated[int, Field(strict=True)]
Id = Annotated[str, Field(min_length=1, max_length=100)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Name = Annotated[str, Field(min_length=1, max_length=50)]
ZoneName = Annotated[
    str, Field(min_length=1, max_length=timezones.MAX_ZONE_NAME), AfterValidator(_zone_name)
]
Moment = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_representable)]
JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_object),
    Field(
        description=f"A JSON object of at most {MAX_OBJECT_BYTES} bytes, "
        f"nested at most {MAX_OBJECT_DEPTH} levels."
    ),
]
