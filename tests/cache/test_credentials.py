"""An account's token changed through the API is the one the next publish uses, whatever the
caches hold (they key on credentials_version); decrypted secrets never reach Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.cache.conftest import bluesky_account
from tests.factories import due_posts
from tests.helpers import ApiServer, api_server, mastodon_account


async def publish_one(api: ApiServer, account_id: str, text: str, endpoint: str) -> None:
    due = datetime.now(UTC) + timedelta(milliseconds=200)
    created = await api.client.post(
        "/api/posts",
        json={"text": text, "targets": [account_id], "scheduled_at": due.isoformat()},
    )
    assert created.status_code == 201, created.text
    while datetime.now(UTC) < due:
        await api.client.get("/api/health")
    summary = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
    assert summary["published"] == 1, summary


@pytest.mark.parametrize("cache", ["memory", "redis"])
@pytest.mark.parametrize("endpoint", ["/api/cron/scheduler", "/api/cron/scheduler-optimized"])
async def test_updated_token_is_used_by_the_next_publish(
    any_db: Database,
    sandbox: SandboxClient,
    redis_url: str,
    cache: str,
    endpoint: str,
) -> None:
    extra = {"REDIS_URL": redis_url} if cache == "redis" else {}
    async with api_server(any_db, sandbox, SCHEDULER_CACHE_TTL=3600, **extra) as api:
        account_id = await mastodon_account(api, sandbox, handle="@rotating")
        await publish_one(api, account_id, "with the first token", endpoint)
        await publish_one(api, account_id, "still the first token", endpoint)
        assert api.runtime.credentials.stats.hits >= 1, "the second publish came from the cache"

        changed = await api.client.patch(
            f"/api/accounts/{account_id}", json={"credentials": {"access_token": "token-new"}}
        )
        assert changed.status_code == 200, changed.text
        await publish_one(api, account_id, "with the new token", endpoint)

    by_text = {r["text"]: r["account"] for r in sandbox.records("mastodon")}
    assert by_text == {
        "with the first token": "token-@rotating",
        "still the first token": "token-@rotating",
        "with the new token": "token-new",
    }


@pytest.mark.redis
async def test_no_secret_is_written_to_redis(
    sqlite_db: Database, sandbox: SandboxClient, redis_url: str, redis_client: redis.Redis
) -> None:
    async with api_server(sqlite_db, sandbox, REDIS_URL=redis_url) as api:
        workspace, account = await bluesky_account(sqlite_db, sandbox)
        await due_posts(
            sqlite_db,
            workspace,
            [account],
            count=2,
            at=api.runtime.now() - timedelta(seconds=1),
            media_urls=[sandbox.media_url("secret-check.png")],
        )
        summary = (
            await api.client.post("/api/cron/scheduler-optimized", headers=api.cron())
        ).json()
        assert summary["published"] == 2, summary
        credentials = api.runtime.cipher.decrypt(account.credentials)
    keys = await redis_client.keys("*")
    assert keys, "uploads and budgets went to Redis"
    assert all(k.startswith((b"postpilot:upload:", b"postpilot:budget:")) for k in keys)
    for key in keys:
        value = await redis_client.get(key)
        assert value is not None
        for secret in (credentials["access_jwt"], credentials["refresh_jwt"]):
            assert secret.encode() not in value
        assert b"jwt" not in value and b"token" not in value
