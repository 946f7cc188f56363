"""Recurrences take library media by id: checked like a post's (this workspace's, the targets'
limits), each occurrence uses them like a post made with media_ids, the scheduler publishes the
stored variant, and a live recurrence keeps its media from deletion (409) and from retention,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.clock import Clock
from tests.helpers import ApiServer, api_server, mastodon_account, new_workspace
from tests.media import pictures
from tests.media.test_purge import aged, purge
from tests.media.uploads import refused, upload
from tests.queues.test_recurrences import PLANS

START = datetime(2027, 3, 1, 6, tzinfo=UTC)


def rule(targets: list[str], media_ids: list[str], count: int = 2) -> dict[str, Any]:
    return {
        "rrule": f"FREQ=DAILY;COUNT={count}",
        "starts_at": "2027-03-01T09:00:00",
        "timezone": "Europe/Paris",
        "text": "Daily picture",
        "media_ids": media_ids,
        "targets": targets,
    }


async def recurring_with(api: ApiServer, account: str, media_id: str) -> dict[str, Any]:
    made = await api.client.post("/api/recurrences", json=rule([account], [media_id]))
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_recurrence_uses_library_media_and_keeps_it_while_it_lives(
    any_db: Database, sandbox: SandboxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # settings read .env files from here: an empty folder
    media_dir = tmp_path / "media"
    async with api_server(any_db, sandbox, MEDIA_DIR=str(media_dir)) as api:
        api.runtime.clock = Clock(START)
        account = await mastodon_account(api, sandbox)
        media_id = (await upload(api, pictures.plain(40, 30))).json()["id"]
        made = await recurring_with(api, account, media_id)
        assert made["media_ids"] == [media_id] and made["media_urls"] == []
        (listed,) = (await api.client.get("/api/v1/recurrences")).json()["items"]
        assert listed["media_ids"] == [media_id]
        got = (await api.client.get(f"/api/v1/recurrences/{made['id']}")).json()
        assert got["media_ids"] == [media_id]
        assert len(made["occurrences"]) == 2
        for occurrence in made["occurrences"]:
            post = (await api.client.get(f"/api/posts/{occurrence['post_id']}")).json()
            assert post["media_ids"] == [media_id] and post["media_urls"] == []

        # Paused, its posts are cancelled: the recurrence alone still needs the media.
        paused = await api.client.patch(f"/api/recurrences/{made['id']}", json={"paused": True})
        assert paused.status_code == 200, paused.text
        answer = await api.client.delete(f"/api/media/{media_id}")
        message = refused(answer, 409, "media_in_use")
        assert f"1 recurrence(s) ({made['id']})" in message
        assert answer.json()["error"]["details"][0]["recurrence_id"] == made["id"]
        await aged(any_db, media_id, days=31)
        assert (await purge(any_db, media_dir, "--dry-run")).startswith("would remove 0 media")
        assert (await purge(any_db, media_dir)).startswith("removed 0 media")

        assert (await api.client.delete(f"/api/recurrences/{made['id']}")).status_code == 204
        assert (await api.client.delete(f"/api/media/{media_id}")).status_code == 204
        assert list(media_dir.iterdir()) == []


async def test_an_occurrence_publishes_the_library_variant(
    any_db: Database, sandbox: SandboxClient, tmp_path: Path
) -> None:
    async with api_server(any_db, sandbox, MEDIA_DIR=str(tmp_path / "media")) as api:
        clock = Clock(START)
        api.runtime.clock = clock
        account = await mastodon_account(api, sandbox)
        media = (await upload(api, pictures.plain(40, 30), alt_text="A small square")).json()
        made = await recurring_with(api, account, media["id"])
        first = made["occurrences"][0]
        clock.at = datetime.fromisoformat(first["occurrence_at"])
        await api.client.post(PLANS, headers=api.cron())
        summary = await api.client.post(
            "/api/cron/scheduler-optimized", headers=api.cron(), json={"limit": 10}
        )
        assert summary.json()["published"] == 1, summary.text
        (record,) = sandbox.records("mastodon")
        assert record["text"] == "Daily picture"
        (sent,) = record["media"]
        assert sent["size"] == media["variant"]["size_bytes"]
        assert sent["description"] == "A small square"


async def test_refused_media_is_a_422_and_stores_nothing(
    sqlite_db: Database, sandbox: SandboxClient, tmp_path: Path
) -> None:
    async with api_server(sqlite_db, sandbox, MEDIA_DIR=str(tmp_path / "media")) as api:
        api.runtime.clock = Clock(START)
        account = await mastodon_account(api, sandbox)
        _, key = await new_workspace(sqlite_db, "other")
        foreign = (await upload(api.client_for(key), pictures.plain(20, 20))).json()["id"]
        for media_ids, code, message in [
            (["nope"], "media_not_found", "media_ids: no media nope in this workspace"),
            ([foreign], "media_not_found", f"media_ids: no media {foreign} in this workspace"),
        ]:
            answer = await api.client.post("/api/recurrences", json=rule([account], media_ids))
            assert refused(answer, 422, code) == message
        # Over the platform's limit: Mastodon takes 4 images.
        many = [(await upload(api, pictures.plain(20 + i, 20))).json()["id"] for i in range(5)]
        answer = await api.client.post("/api/recurrences", json=rule([account], many))
        assert "mastodon" in refused(answer, 422, "content_not_allowed")
        assert (await api.client.get("/api/recurrences")).json() == []
        assert (await api.client.get("/api/posts")).json()["items"] == []
