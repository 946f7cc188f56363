"""Idempotency-Key records: a client retrying `POST /api/posts` gets the first answer back.

The (workspace, key) primary key decides between concurrent duplicates: the second insert waits
for the first transaction and then fails, so exactly one post is created (never check-then-insert).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.errors import PostpilotError
from postpilot.store.tables import IdempotencyKey

WINDOW = timedelta(hours=24)
PENDING = 0  # status_code of a record whose request has not answered yet


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: dict[str, Any]


class KeyConflict(PostpilotError):
    """The Idempotency-Key cannot be used for this request."""


class KeyReused(KeyConflict):
    """This Idempotency-Key was already used with a different request body; use a new key for
    a new post."""


class KeyInProgress(KeyConflict):
    """A request with this Idempotency-Key is still being answered; retry in a moment."""


# A stored key records the version of the fingerprint it was made with, so a retry after an
# upgrade that adds fields to the body (and so to its parsed defaults) still matches.
FINGERPRINT_VERSION = 2
# Version 1 hashed the body without the fields added since, given here with their defaults:
# a retry that leaves them at their defaults is the same request it was.
ADDED_IN_2: dict[str, Any] = {
    "media_ids": [],
    "account_overrides": {},
    "thread": [],
    "first_comment": None,
    "queue_id": None,
}


def fingerprint(request: dict[str, Any], version: int = FINGERPRINT_VERSION) -> str | None:
    """The same parsed body always hashes the same (key order and spacing do not matter).
    None when no request of that version could have had this body."""
    if version == 1:
        if any(request.get(name, default) != default for name, default in ADDED_IN_2.items()):
            return None
        request = {name: value for name, value in request.items() if name not in ADDED_IN_2}
    elif version != FINGERPRINT_VERSION:
        return None
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _current(request: dict[str, Any]) -> str:
    found = fingerprint(request)
    assert found is not None  # the current version hashes every body
    return found


async def find(
    session: AsyncSession, *, workspace_id: str, key: str, request: dict[str, Any], now: datetime
) -> Replay | None:
    """The answer a committed request with this key gave within the window, if any (read-only).
    Raises KeyReused when that request had another body (compared as its version hashed it)."""
    row = (
        await session.execute(
            select(
                IdempotencyKey.request_hash,
                IdempotencyKey.fingerprint_version,
                IdempotencyKey.status_code,
                IdempotencyKey.response,
            ).where(
                IdempotencyKey.workspace_id == workspace_id,
                IdempotencyKey.key == key,
                IdempotencyKey.created_at >= now - WINDOW,
            )
        )
    ).one_or_none()
    if row is None or row.status_code == PENDING:
        return None
    if row.request_hash != fingerprint(request, row.fingerprint_version):
        raise KeyReused()
    return Replay(status_code=row.status_code, body=dict(row.response))


async def begin(
    session: AsyncSession, *, workspace_id: str, key: str, request: dict[str, Any], now: datetime
) -> Replay | None:
    """Reserve `key` for this request (None: go ahead, then `finish`) or return the answer of
    the request that reserved it first. Raises KeyReused when that request had another body.

    Call it right before writing anything else: a lost race rolls the session back."""
    # Expired keys may be used again; clearing the workspace's old ones keeps the table small.
    await session.execute(
        delete(IdempotencyKey)
        .where(
            IdempotencyKey.workspace_id == workspace_id, IdempotencyKey.created_at < now - WINDOW
        )
        .execution_options(synchronize_session=False)
    )
    session.add(
        IdempotencyKey(
            workspace_id=workspace_id,
            key=key,
            request_hash=_current(request),
            fingerprint_version=FINGERPRINT_VERSION,
            status_code=PENDING,
            response={},
            created_at=now,
        )
    )
    try:
        await session.flush()
        return None
    except IntegrityError:
        await session.rollback()
    # The insert waited for the other request's transaction, which has committed its answer.
    found = await find(session, workspace_id=workspace_id, key=key, request=request, now=now)
    if found is None:
        raise KeyInProgress()
    return found


async def finish(
    session: AsyncSession,
    *,
    workspace_id: str,
    key: str,
    post_id: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    """Store the answer with the post, in the same transaction."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.workspace_id == workspace_id, IdempotencyKey.key == key)
        .values(post_id=post_id, status_code=status_code, response=body)
        .execution_options(synchronize_session=False)
    )
