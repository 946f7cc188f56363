"""With REDIS_URL, a media id uploaded by one worker is reused by another: two runtimes (two
workers) on one database and one Redis upload the same image to the same account once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postpilot.cache.shared import RedisUploadStore
from postpilot.publishers.registry import PUBLISHERS, UPLOADS
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.scheduler.runtime import Runtime
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

    first = Runtime.open(settings, db=any_db)
    try:
        assert isinstance(PUBLISHERS["bluesky"].uploads, RedisUploadStore)  # type: ignore[attr-defined]
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
    assert PUBLISHERS["bluesky"].uploads is UPLOADS, "closing puts the in-process store back"  # type: ignore[attr-defined]
    assert uploads(sandbox) == 1

    second = Runtime.open(settings, db=any_db)
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


async def test_runtimes_closed_in_any_order_leave_the_in_process_store(
    sqlite_db: Database, redis_url: str
) -> None:
    settings = make_settings(sqlite_db, REDIS_URL=redis_url)
    before = {name: getattr(p, "uploads", None) for name, p in PUBLISHERS.items()}
    first = Runtime.open(settings, db=sqlite_db)
    second = Runtime.open(settings, db=sqlite_db)
    outer = PUBLISHERS["x"].uploads  # type: ignore[attr-defined]
    assert isinstance(outer, RedisUploadStore) and isinstance(outer.fallback, RedisUploadStore)
    await first.close()  # not the last one opened
    assert PUBLISHERS["x"].uploads is outer and outer.fallback is UPLOADS  # type: ignore[attr-defined]
    await second.close()
    assert {name: getattr(p, "uploads", None) for name, p in PUBLISHERS.items()} == before
