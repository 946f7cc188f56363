"""An Idempotency-Key stored before the upgrade that added fields to POST /api/posts (media_ids,
variants, threads, queues) was fingerprinted without them; a retry within 24 hours after the
upgrade is answered from the stored result, not refused as "another body", while a really
different body still is. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from postpilot.sandbox.client import SandboxClient
from postpilot.store import idempotency
from postpilot.store.database import Database
from postpilot.store.tables import IdempotencyKey, Post
from tests.helpers import api_server, mastodon_account

# What POST /api/posts parsed a body into before the upgrade (its fields and their defaults).
BEFORE_UPGRADE = ("text", "media_urls", "overrides", "targets", "scheduled_at", "timezone", "dst")


def fingerprint_before_upgrade(body: dict[str, Any]) -> str:
    """As the version before the upgrade hashed a request (written out here on purpose)."""
    parsed = {"text": "", "media_urls": [], "overrides": {}, "timezone": "UTC", "dst": None}
    parsed.update({k: v for k, v in body.items() if k in BEFORE_UPGRADE})
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def posts(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Post))).scalar_one())


async def test_a_key_stored_before_the_upgrade_replays_its_post(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account = await mastodon_account(api, sandbox)
        at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        body = {"text": "before", "targets": [account], "scheduled_at": at.isoformat()}
        headers = {"Idempotency-Key": "order-7"}
        first = await api.client.post("/api/posts", json=body, headers=headers)
        assert first.status_code == 201, first.text
        # As the row was left by the version before: its hash, and version 1 (the migration's
        # default for the keys it finds).
        async with any_db.transaction() as session:
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == "order-7")
                .values(
                    request_hash=fingerprint_before_upgrade(
                        {**body, "scheduled_at": at.isoformat().replace("+00:00", "Z")}
                    ),
                    fingerprint_version=1,
                )
            )

        again = await api.client.post("/api/posts", json=body, headers=headers)
        assert again.status_code == 201, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert await posts(any_db) == 1

        for changed in ({"text": "another"}, {"first_comment": "new field, not a default"}):
            other = await api.client.post("/api/posts", json={**body, **changed}, headers=headers)
            assert other.status_code == 422, other.text
            assert other.json()["error"]["code"] == "idempotency_key_reused"
        assert await posts(any_db) == 1

        # A key stored now is of the current version.
        fresh = await api.client.post("/api/posts", json=body, headers={"Idempotency-Key": "n"})
        assert fresh.status_code == 201
        async with any_db.session() as session:
            version = await session.scalar(
                select(IdempotencyKey.fingerprint_version).where(IdempotencyKey.key == "n")
            )
        assert version == idempotency.FINGERPRINT_VERSION == 2


def test_version_one_is_the_body_without_the_fields_added_since() -> None:
    body = {"text": "x", "targets": ["a"], "scheduled_at": None, "timezone": "UTC"}
    parsed = {**body, "media_urls": [], "overrides": {}, "dst": None, **idempotency.ADDED_IN_2}
    assert idempotency.fingerprint(parsed, 1) == fingerprint_before_upgrade(body)
    assert idempotency.fingerprint(parsed) != fingerprint_before_upgrade(body)
    assert idempotency.fingerprint({**parsed, "queue_id": "q"}, 1) is None
    assert idempotency.fingerprint(parsed, 99) is None
