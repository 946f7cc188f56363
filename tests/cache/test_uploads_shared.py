"""With REDIS_URL, a media id uploaded by one worker is reused by another: two runtimes (two
workers) on one database and one Redis upload the same image to the same account once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postpilot.cache.shared import RedisUploadStore
from postpilot.publishers.registry import PUBLISHERS
from postpilot.publishers.uploads import UploadCache
from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from tests.cache.conftest import bluesky_account
from tests.factories import due_posts
from tests.helpers import make_settings

pytestmark = pytest.mark.redis


def uploads(sandbox: SandboxClient) -> int:
    return sum(1 for r in sandbox.requests("bluesky") if r["path"].endswith("repo.uploadBlob"))


async def test_second_worker_reuses_the_first_workers_upload(
    any_db: Database, sandbox: SandboxClient, redis_url: str
) -> None:
    settings = make_settings(any_db, sandbox, REDIS_URL=redis_url)
    workspace, account = await bluesky_account(any_db, sandbox)
    image = sandbox.media_url("shared.png")

    first = build_runtime(settings, db=any_db)
    try:
        assert isinstance(first.publish.uploads, RedisUploadStore)
        await due_posts(
            any_db,
            workspace,
            [account],
            count=1,
            at=first.now() - timedelta(seconds=1),
            media_urls=[image],
        )
        assert (await run_pass(first, scheduler="optimized")).published == 1
    finally:
        await first.close()
    assert uploads(sandbox) == 1

    second = build_runtime(settings, db=any_db)
    try:
        await due_posts(
            any_db,
            workspace,
            [account],
            count=1,
            at=second.now() - timedelta(seconds=1),
            media_urls=[image],
            text="again",
        )
        report = await run_pass(second, scheduler="optimized")
        assert report.published == 1
        assert second.cache.stats()["uploads"].hits == 1
    finally:
        await second.close()
    assert uploads(sandbox) == 1, "the second worker found the blob in Redis"
    records = sandbox.records("bluesky")
    assert len(records) == 2 and all(len(r["media"]) == 1 for r in records)


async def test_each_runtime_has_its_own_store_and_publishers_hold_none(
    sqlite_db: Database, redis_url: str
) -> None:
    shared = build_runtime(make_settings(sqlite_db, REDIS_URL=redis_url), db=sqlite_db)
    local = build_runtime(make_settings(sqlite_db), db=sqlite_db)
    try:
        assert isinstance(shared.publish.uploads, RedisUploadStore)
        assert isinstance(local.publish.uploads, UploadCache)
        await local.publish.uploads.put("x", "a", "https://e.com/1.png", "media-1", 60)
        assert await shared.publish.uploads.get("x", "a", "https://e.com/1.png") is None
    finally:
        await shared.close()
        await local.close()
    assert all(vars(publisher) == {} for publisher in PUBLISHERS.values())
