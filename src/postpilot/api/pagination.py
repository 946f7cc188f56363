"""One page shape for every list: {"items": [...], "next_cursor": str | null}.

A cursor is the last item's sort key, JSON in URL-safe base64, followed by a checksum that
also names the list: a cursor that was altered, or given to another list, is refused (400
`invalid_cursor`) instead of silently starting somewhere else. The checksum is not a secret:
a forged cursor only moves within the caller's own workspace, as every query is scoped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from postpilot.api.errors import ApiError
from postpilot.core.timezones import as_utc

T = TypeVar("T")
Row = TypeVar("Row")

# A sort key: the (created_at, id) of a row, or a single id for lists ordered by one.
Key = tuple[datetime, str]

_CHECK_BYTES = 8
# Ids are UUIDs, entry ids BIGINTs: anything else never reaches a query.
_ROW_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
MAX_ID = 2**63 - 1
INVALID_CURSOR: dict[int | str, dict[str, Any]] = {
    400: {"description": "`cursor` is not a `next_cursor` this list gave (altered or another's)."}
}

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")]
Cursor = Annotated[
    str | None,
    Query(max_length=500, description="`next_cursor` of the previous page; none: the first."),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def _check(kind: str, payload: bytes) -> bytes:
    return hashlib.blake2b(payload, key=kind.encode(), digest_size=_CHECK_BYTES).digest()


def encode(kind: str, key: Sequence[str | int]) -> str:
    payload = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _check(kind, payload)).decode().rstrip("=")


def decode(kind: str, cursor: str) -> list[str | int]:
    """The key `encode` was given, or 400 `invalid_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or not hmac.compare_digest(check, _check(kind, payload)):
        raise refused()
    key = json.loads(payload)
    if not isinstance(key, list) or not all(isinstance(k, str | int) for k in key):
        raise refused()
    return key


def refused() -> ApiError:
    return ApiError(
        400,
        "invalid_cursor",
        "cursor: not a cursor this list gave; pass next_cursor as it came",
        [{"field": "query.cursor", "message": "not a cursor this list gave"}],
    )


def encode_moment(kind: str, at: datetime, row_id: str) -> str:
    return encode(kind, (as_utc(at).isoformat(), row_id))


def decode_moment(kind: str, cursor: str | None) -> Key | None:
    """A (created_at, id) key, or None for the first page."""
    if cursor is None:
        return None
    key = decode(kind, cursor)
    match key:
        case [str(moment), str(row_id)] if _ROW_ID.fullmatch(row_id):
            try:
                return as_utc(datetime.fromisoformat(moment)), row_id
            except ValueError:
                raise refused() from None
    raise refused()


def decode_id(kind: str, cursor: str | None) -> int | None:
    """A single integer key (lists ordered by an id), or None for the first page."""
    if cursor is None:
        return None
    match decode(kind, cursor):
        case [int(row_id)] if not isinstance(row_id, bool) and 0 < row_id <= MAX_ID:
            return row_id
    raise refused()


def page(
    rows: Sequence[Row],
    limit: int,
    *,
    item: Callable[[Row], T],
    cursor: Callable[[Row], str],
) -> Page[T]:
    """`rows` were fetched with `limit + 1`: the extra one only says there is a next page."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return Page[T](items=[item(r) for r in shown], next_cursor=cursor(shown[-1]) if more else None)
