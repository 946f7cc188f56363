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


def fingerprint(request: dict[str, Any]) -> str:
    """The same parsed body always hashes the same (key order and spacing do not matter)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find(
    session: AsyncSession, *, workspace_id: str, key: str, request_hash: str, now: datetime
) -> Replay | None:
    """The answer a committed request with this key gave within the window, if any (read-only).
    Raises KeyReused when that request had another body."""
    row = (
        await session.execute(
            select(
                IdempotencyKey.request_hash, IdempotencyKey.status_code, IdempotencyKey.response
            ).where(
                IdempotencyKey.workspace_id == workspace_id,
                IdempotencyKey.key == key,
                IdempotencyKey.created_at >= now - WINDOW,
            )
        )
    ).one_or_none()
    if row is None or row.status_code == PENDING:
        return None
    if row.request_hash != request_hash:
        raise KeyReused()
    return Replay(status_code=row.status_code, body=dict(row.response))


async def begin(
    session: AsyncSession, *, workspace_id: str, key: str, request_hash: str, now: datetime
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
            request_hash=request_hash,
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
    found = await find(
        session, workspace_id=workspace_id, key=key, request_hash=request_hash, now=now
    )
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
