"""A worker process publishes a 3-part thread to Mastodon and Bluesky: in order, as reply
chains, and after a fault on Mastodon's part 2 it resumes there without sending part 1 again."""

from __future__ import annotations

from typing import Any

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import api_server, mastodon_account
from tests.waiting import wait_until
from tests.workers import delivery_counts, worker_env


async def test_a_worker_publishes_a_thread_and_resumes_after_a_failed_part(
    any_db: Database, sandbox: SandboxClient, spawn: Any
) -> None:
    async with api_server(any_db, sandbox) as api:
        did = "did:plc:workerthreads"
        token = sandbox.issue_token("bluesky", subject=did, refresh=False)["access_token"]
        bluesky = await api.client.post(
            "/api/accounts",
            json={
                "platform": "bluesky",
                "handle": "worker.bsky.social",
                "credentials": {"did": did, "access_jwt": token},
                "verify": False,
            },
        )
        assert bluesky.status_code == 201, bluesky.text
        targets = [await mastodon_account(api, sandbox), bluesky.json()["id"]]
        created = await api.client.post(
            "/api/posts",
            json={
                "text": "1/3 a worker's thread",
                "thread": [{"text": "2/3 still going"}, {"text": "3/3 done"}],
                "targets": targets,
            },
        )
        assert created.status_code == 201, created.text
        sandbox.inject("unavailable", "mastodon", step="reply")

        worker = spawn(worker_env(any_db, sandbox))

        async def published() -> bool:
            assert worker.poll() is None, "the worker died"
            return await delivery_counts(any_db) == {"published": 2}

        await wait_until(published, timeout=60, what=lambda: delivery_counts(any_db))
        texts = ["1/3 a worker's thread", "2/3 still going", "3/3 done"]
        mastodon, bluesky_records = sandbox.records("mastodon"), sandbox.records("bluesky")
        assert [r["text"] for r in mastodon] == texts  # part 1 once, despite the retry
        assert [r["extra"].get("in_reply_to_id") for r in mastodon] == [
            None,
            mastodon[0]["id"],
            mastodon[1]["id"],
        ]
        statuses = [r for r in sandbox.requests("mastodon") if r["path"].endswith("/statuses")]
        assert [r["status"] for r in statuses] == [200, 503, 200, 200]
        assert [r["text"] for r in bluesky_records] == texts
        uris = [r["extra"]["uri"] for r in bluesky_records]
        assert [r["extra"].get("reply_parent") for r in bluesky_records] == [None, *uris[:2]]
