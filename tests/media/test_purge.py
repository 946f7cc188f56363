"""`postpilot media purge`: media unused past the retention goes (rows and files); media an
unfinished delivery needs stays, however old; recent media stays; --dry-run removes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from postpilot.cli.main import app
from postpilot.store.database import Database
from postpilot.store.tables import MediaItem
from tests.helpers import TEST_SECRET_KEY, ApiServer, api_server, mastodon_account
from tests.media import pictures
from tests.media.uploads import upload


async def purge(db: Database, media_dir: Path, *args: str) -> str:
    env = {
        "DATABASE_URL": db.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "MEDIA_DIR": str(media_dir),
        "MEDIA_RETENTION_DAYS": "30",
        "LOG_LEVEL": "WARNING",
    }
    result = await asyncio.to_thread(CliRunner().invoke, app, ["media", "purge", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


async def aged(db: Database, media_id: str, days: int) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(MediaItem)
            .where(MediaItem.id == media_id)
            .values(last_used_at=datetime.now(UTC) - timedelta(days=days))
        )


async def post_with(api: ApiServer, account: str, media_id: str, hours: float) -> str:
    response = await api.client.post(
        "/api/posts",
        json={
            "text": "x",
            "media_ids": [media_id],
            "targets": [account],
            "scheduled_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_purge_keeps_what_is_needed(
    any_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # settings read .env files from here: an empty folder
    media_dir = tmp_path / "media"
    async with api_server(any_db, MEDIA_DIR=str(media_dir)) as api:
        account = await mastodon_account(api)
        ids = {
            name: (await upload(api, pictures.plain(10 + i, 10))).json()["id"]
            for i, name in enumerate(("unused", "scheduled", "cancelled", "recent"))
        }
        await post_with(api, account, ids["scheduled"], hours=1)
        cancelled = await post_with(api, account, ids["cancelled"], hours=1)
        await api.client.post(f"/api/posts/{cancelled}/cancel")
        for name in ("unused", "scheduled", "cancelled"):
            await aged(any_db, ids[name], days=31)
        await aged(any_db, ids["recent"], days=29)

        dry = await purge(any_db, media_dir, "--dry-run")
        assert dry.startswith("would remove 2 media unused for 30 days")
        assert len((await api.client.get("/api/media")).json()["items"]) == 4

        done = await purge(any_db, media_dir)
        assert done.startswith("removed 2 media")
        assert ids["unused"] in done and ids["cancelled"] in done
        left = {i["id"] for i in (await api.client.get("/api/media")).json()["items"]}
        assert left == {ids["scheduled"], ids["recent"]}
        assert {p.name for p in media_dir.iterdir()} == left, "the files went with the rows"
        assert (await purge(any_db, media_dir)).startswith("removed 0 media")
