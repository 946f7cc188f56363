"""A worker process SIGKILLed mid-thread, and another one taking the delivery over once its lease
ends: the journal names the part that was in flight, so what the sandbox holds in the end is
each part once, none lost, and `unknown` only where a part may really have gone out unrecorded
on a platform that cannot deduplicate it (X); Mastodon's Idempotency-Key lets it be re-sent."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Delivery, DeliveryPart
from tests.helpers import ApiServer, api_server, mastodon_account
from tests.waiting import wait_until
from tests.workers import delivery_counts, worker_env

TEXTS = ["1/3 the post", "2/3 a reply", "3/3 the end"]


async def _x_account(api: ApiServer) -> str:
    created = await api.client.post(
        "/api/accounts",
        json={
            "platform": "x",
            "handle": "@tester",
            "credentials": {"access_token": "x-token"},
            "verify": False,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _thread(api: ApiServer, account_id: str, reply_media: list[str] | None = None) -> None:
    reply: dict[str, Any] = {"text": TEXTS[1]}
    if reply_media:
        reply["media_urls"] = reply_media
    created = await api.client.post(
        "/api/posts",
        json={"text": TEXTS[0], "thread": [reply, {"text": TEXTS[2]}], "targets": [account_id]},
    )
    assert created.status_code == 201, created.text


async def _recorded_parts(db: Database) -> list[int]:
    async with db.session() as session:
        found = await session.execute(select(DeliveryPart.index).order_by(DeliveryPart.index))
        return list(found.scalars())


async def _delivery(db: Database) -> Delivery:
    async with db.session() as session:
        return (await session.execute(select(Delivery))).scalar_one()


def _env(db: Database, sandbox: SandboxClient, journal: Path) -> dict[str, str]:
    return worker_env(
        db,
        sandbox,
        SCHEDULER_LEASE_SECONDS="5",
        JOURNAL_DIR=str(journal),
        ENABLE_PERFORMANCE_MONITORING="false",
    )


async def _kill_when(spawn: Any, env: dict[str, str], ready: Any, what: Any) -> None:
    worker = spawn(env)

    async def reached() -> bool:
        assert worker.poll() is None, "the worker died on its own"
        return bool(await ready())

    await wait_until(reached, timeout=60, every=0.02, what=what)
    worker.send_signal(signal.SIGKILL)
    worker.wait()


async def _settled(db: Database, spawn: Any, env: dict[str, str], status: str) -> Delivery:
    """A second worker takes the delivery over once the dead one's lease ends."""
    worker = spawn(env)

    async def done() -> bool:
        assert worker.poll() is None, "the worker died"
        return await delivery_counts(db) == {status: 1}

    await wait_until(done, timeout=60, what=lambda: delivery_counts(db))
    return await _delivery(db)


async def test_x_resumes_after_a_recorded_part_without_unknown(
    any_db: Database, sandbox: SandboxClient, spawn: Any, tmp_path: Path
) -> None:
    """Killed after part 1 was recorded, while part 2's media was uploading (before its
    publishing request): the journal's last part is recorded, so nothing is in doubt."""
    async with api_server(any_db, sandbox) as api:
        await _thread(api, await _x_account(api), [sandbox.media_url("reply.png")])
        sandbox.inject("timeout", "x", step="upload", hold_seconds=60)
        env = _env(any_db, sandbox, tmp_path / "journal")

        async def part_one_recorded() -> bool:
            return await _recorded_parts(any_db) == [0]

        await _kill_when(spawn, env, part_one_recorded, lambda: _recorded_parts(any_db))
        delivery = await _settled(any_db, spawn, env, "published")

    records = sandbox.records("x")
    assert [r["text"] for r in records] == TEXTS, "each part once, none lost"
    assert [r["extra"].get("in_reply_to_tweet_id") for r in records] == [
        None,
        records[0]["id"],
        records[1]["id"],
    ]
    assert delivery.platform_post_id == records[0]["id"]
    assert await _recorded_parts(any_db) == [0, 1, 2]


async def test_x_part_in_flight_and_unrecorded_is_the_only_unknown(
    sqlite_db: Database, sandbox: SandboxClient, spawn: Any, tmp_path: Path
) -> None:
    """Killed while X held part 2's answer after storing it: that part really may have gone
    out and X cannot deduplicate it, so the delivery is `unknown` naming part 2, and nothing
    is sent again."""
    async with api_server(sqlite_db, sandbox) as api:
        await _thread(api, await _x_account(api))
        sandbox.inject("timeout_after_commit", "x", step="reply", hold_seconds=60)
        env = _env(sqlite_db, sandbox, tmp_path / "journal")

        async def part_two_stored() -> bool:
            return len(sandbox.records("x")) == 2

        await _kill_when(spawn, env, part_two_stored, lambda: sandbox.records("x"))
        delivery = await _settled(sqlite_db, spawn, env, "unknown")

    assert [r["text"] for r in sandbox.records("x")] == TEXTS[:2], "no part twice"
    assert delivery.last_error is not None
    assert "while sending part 2 of 3" in delivery.last_error
    assert await _recorded_parts(sqlite_db) == [0]


async def test_mastodon_re_sends_the_part_in_flight_under_its_key(
    sqlite_db: Database, sandbox: SandboxClient, spawn: Any, tmp_path: Path
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        await _thread(api, await mastodon_account(api, sandbox))
        sandbox.inject("timeout_after_commit", "mastodon", step="reply", hold_seconds=60)
        env = _env(sqlite_db, sandbox, tmp_path / "journal")

        async def part_two_stored() -> bool:
            return len(sandbox.records("mastodon")) == 2

        await _kill_when(spawn, env, part_two_stored, lambda: sandbox.records("mastodon"))
        await _settled(sqlite_db, spawn, env, "published")

    records = sandbox.records("mastodon")
    assert [r["text"] for r in records] == TEXTS, "part 2 replayed under its key, not doubled"
    assert [r["extra"].get("in_reply_to_id") for r in records] == [
        None,
        records[0]["id"],
        records[1]["id"],
    ]
