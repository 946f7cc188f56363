"""End to end: an image uploaded to the library, a post scheduled with its id, a worker process
publishing it to the sandbox, which receives the library's published variant (read from
storage, never over HTTP) and its alt text, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import api_server, mastodon_account
from tests.media import pictures
from tests.media.uploads import upload
from tests.waiting import wait_until
from tests.workers import delivery_counts, worker_env


async def test_a_worker_publishes_library_media_to_the_sandbox(
    any_db: Database, sandbox: SandboxClient, spawn: Any, tmp_path: Path
) -> None:
    media_dir = tmp_path / "media"
    async with api_server(any_db, sandbox, MEDIA_DIR=str(media_dir)) as api:
        account = await mastodon_account(api, sandbox)
        # Turned by its EXIF: what is published is the variant, not the upload.
        uploaded = await upload(api, pictures.with_orientation(120, 80), platforms=["mastodon"])
        assert uploaded.status_code == 201, uploaded.text
        media = uploaded.json()
        # Alt text set after the upload reaches the platform (Mastodon's `description`).
        patched = await api.client.patch(
            f"/api/media/{media['id']}", json={"alt_text": "A blue square, upright"}
        )
        assert patched.status_code == 200, patched.text
        created = await api.client.post(
            "/api/posts",
            json={
                "text": "From the library",
                "media_ids": [media["id"]],
                "targets": [account],
                "scheduled_at": datetime.now(UTC).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        post_id = created.json()["id"]

        worker = spawn(worker_env(any_db, sandbox, MEDIA_DIR=str(media_dir)))

        async def published() -> bool:
            assert worker.poll() is None, "the worker died"
            return await delivery_counts(any_db) == {"published": 1}

        await wait_until(published, timeout=60, what=lambda: delivery_counts(any_db))
        (record,) = sandbox.records("mastodon")
        assert record["text"] == "From the library"
        (sent,) = record["media"]
        assert sent["size"] == media["variant"]["size_bytes"]
        assert sent["content_type"] == media["variant"]["content_type"] == "image/jpeg"
        assert sent["description"] == "A blue square, upright"
        variant = await api.client.get(media["content_url"], params={"version": "published"})
        assert len(variant.content) == sent["size"]
        assert pictures.size_of(variant.content) == (80, 120)
        assert (await api.client.get(f"/api/posts/{post_id}")).json()["status"] == "published"
        # Published: nothing needs it any more, so it may be deleted.
        assert (await api.client.delete(f"/api/media/{media['id']}")).status_code == 204
