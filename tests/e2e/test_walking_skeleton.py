"""A scheduled post travels from the API through each scheduler's HTTP endpoint to the sandbox,
on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.clock import Clock
from tests.helpers import api_server, mastodon_account

ENDPOINTS = ["/api/cron/scheduler", "/api/cron/scheduler-optimized"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_post_is_published_once_through_cron_endpoint(
    any_db: Database, sandbox: SandboxClient, endpoint: str
) -> None:
    async with api_server(any_db, sandbox) as api:
        clock = Clock()
        api.runtime.clock = clock
        account_id = await mastodon_account(api, sandbox)
        due = clock() + timedelta(minutes=1)
        created = await api.client.post(
            "/api/posts",
            json={
                "text": "Hello from postpilot",
                "media_urls": [sandbox.media_url("hello.png")],
                "targets": [account_id],
                "scheduled_at": due.isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        post = created.json()
        assert post["status"] == "scheduled"

        early = await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})
        assert early.status_code == 200, early.text
        assert early.json()["claimed"] == 0, "nothing is due before scheduled_at"

        clock.advance(minutes=1)
        summary = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
        assert summary["claimed"] == 1 and summary["published"] == 1, summary
        assert summary["db_statements"] > 0 and summary["duration_ms"] > 0

        again = (await api.client.get(endpoint, headers=api.cron())).json()
        assert again["claimed"] == 0

        records = sandbox.records("mastodon")
        assert len(records) == 1
        assert records[0]["text"] == "Hello from postpilot"
        assert len(records[0]["media"]) == 1

        published = (await api.client.get(f"/api/posts/{post['id']}")).json()
        assert published["status"] == "published"
        (target,) = published["targets"]
        assert target["status"] == "published"
        assert target["platform_post_id"] == records[0]["id"]
        assert target["platform_url"].endswith(records[0]["id"])

        activity = (await api.client.get(f"/api/posts/{post['id']}/activity")).json()
        assert [a["event"] for a in activity] == ["created", "published"]
        scheduler = "reference" if endpoint.endswith("scheduler") else "optimized"
        assert activity[1]["actor"] == scheduler
        assert activity[1]["pass_id"] == summary["pass_id"]


async def test_cron_endpoints_need_the_secret(sqlite_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        for endpoint in ENDPOINTS:
            missing = await api.client.post(endpoint)
            assert missing.status_code == 401
            assert "CRON_SECRET" in missing.json()["error"]["message"]
            wrong = await api.client.post(endpoint, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            bad = await api.client.post(endpoint, headers=api.cron(), json={"limit": 0})
            assert bad.status_code == 422
            assert "limit" in bad.json()["error"]["message"]
