"""Chaos: worker processes on one PostgreSQL database are SIGKILLed again and again while they
publish, each replaced at once. Nothing is published twice, nothing is lost or left claimed, and
only a send that was really in flight at a kill may end `unknown`; for X threads, only the part
that was in flight, each part going out once."""

from __future__ import annotations

import logging
import random
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Delivery, Post
from tests.factories import due_posts, telegram_workspace, workspace_with_accounts
from tests.waiting import wait_until
from tests.workers import delivery_counts, in_flight, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

log = logging.getLogger(__name__)

KILLS = 8
WORKERS = 3


def chaos_env(pg_db: Database, sandbox: SandboxClient, tmp_path: Path) -> dict[str, str]:
    """Workers with small passes and a short lease, so kills land mid-pass and takeovers come
    soon, and their journals where the test can see them."""
    return worker_env(
        pg_db,
        sandbox,
        SCHEDULER_BATCH_SIZE="20",
        SCHEDULER_CONCURRENCY="4",
        SCHEDULER_LEASE_SECONDS="5",
        JOURNAL_DIR=str(tmp_path / "journal"),
        ENABLE_PERFORMANCE_MONITORING="false",
    )


async def test_repeated_sigkill_publishes_everything_once(
    pg_db: Database, sandbox: SandboxClient, spawn, tmp_path: Path
) -> None:
    telegram_ws, telegram = await telegram_workspace(pg_db, sandbox)
    mastodon_ws, mastodon = await workspace_with_accounts(pg_db, sandbox)
    now = datetime.now(UTC)
    await due_posts(pg_db, telegram_ws, telegram, count=200, at=now, text="telegram")
    await due_posts(pg_db, mastodon_ws, mastodon, count=200, at=now, text="mastodon")
    sandbox.configure(latency_ms=60)
    env = chaos_env(pg_db, sandbox, tmp_path)
    workers = [spawn(env) for _ in range(WORKERS)]
    chance = random.Random(7)
    for _ in range(KILLS):
        before = (await delivery_counts(pg_db)).get("published", 0)
        if before >= 400:
            break

        async def progressed(before: int = before) -> bool:
            return (await delivery_counts(pg_db)).get("published", 0) > before + 10

        await wait_until(progressed, timeout=30, every=0.05)
        await wait_until(lambda: in_flight(sandbox, 1), timeout=30, every=0.01)
        victim = chance.randrange(len(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        workers[victim] = spawn(env)

    async def settled() -> bool:
        counts = await delivery_counts(pg_db)
        return not counts.get("scheduled") and not counts.get("claimed")

    await wait_until(settled, timeout=90, every=0.2)

    async with pg_db.session() as session:
        rows = (
            await session.execute(
                select(Delivery.platform, Delivery.status, Post.text).join(
                    Post, Post.id == Delivery.post_id
                )
            )
        ).all()
    statuses = Counter((platform, status) for platform, status, _ in rows)
    assert statuses["mastodon", "published"] == 200, statuses
    assert statuses["telegram", "published"] + statuses["telegram", "unknown"] == 200, statuses

    sent = Counter(r["text"] for r in sandbox.records("telegram"))
    assert max(sent.values()) == 1, "a telegram post went out twice"
    keys = Counter(r["idempotency_key"] for r in sandbox.records("mastodon"))
    assert len(keys) == 200 and max(keys.values()) == 1
    unknown_texts = [text for platform, status, text in rows if status == "unknown"]
    really_sent = sum(1 for text in unknown_texts if sent[text])
    # A kill can catch at most one wave of a worker's sends in flight.
    assert len(unknown_texts) <= KILLS * 4
    log.warning(
        "chaos: %d kills, %d unknown of which %d had reached the platform",
        KILLS,
        len(unknown_texts),
        really_sent,
    )


THREADS = 60


async def test_repeated_sigkill_mid_thread_sends_each_part_once(
    pg_db: Database, sandbox: SandboxClient, spawn, tmp_path: Path
) -> None:
    """X threads (no idempotency key) under SIGKILL: the journal names the part in flight, so no
    part goes out twice, none is lost, and a thread ends `unknown` only naming the one part that
    was in flight (those before it are on X, none after it)."""
    workspace, accounts = await workspace_with_accounts(
        pg_db, sandbox, count=4, platform="x", credentials={"access_token": "x-token"}
    )
    now = datetime.now(UTC)
    for i in range(THREADS):  # parts "t<i> 0" (the post), "t<i> 1", "t<i> 2"
        (post_id,) = await due_posts(
            pg_db, workspace, [accounts[i % len(accounts)]], count=1, at=now, text=f"t{i}"
        )
        async with pg_db.transaction() as session:
            await session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(thread=[{"text": f"t{i} 1"}, {"text": f"t{i} 2"}])
            )
    sandbox.configure(latency_ms=150)
    env = chaos_env(pg_db, sandbox, tmp_path)
    workers = [spawn(env) for _ in range(2)]
    chance = random.Random(11)
    kills = 0
    for _ in range(5):
        sent = len(sandbox.records("x"))
        if sent >= THREADS * 3 - 20:
            break

        async def progressed(sent: int = sent) -> bool:
            return len(sandbox.records("x")) > sent + 6

        await wait_until(progressed, timeout=30, every=0.05)
        await wait_until(lambda: in_flight(sandbox, 1), timeout=30, every=0.01)
        victim = chance.randrange(len(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        kills += 1
        workers[victim] = spawn(env)

    async def settled() -> bool:
        counts = await delivery_counts(pg_db)
        return not counts.get("scheduled") and not counts.get("claimed")

    await wait_until(settled, timeout=120, every=0.2, what=lambda: delivery_counts(pg_db))

    async with pg_db.session() as session:
        rows = (
            await session.execute(
                select(Delivery.status, Delivery.last_error, Post.text).join(
                    Post, Post.id == Delivery.post_id
                )
            )
        ).all()
    on_x = Counter(r["text"] for r in sandbox.records("x"))
    assert max(on_x.values()) == 1, "a part went out twice"
    statuses = Counter(status for status, _, _ in rows)
    others = [(s, error) for s, error, _ in rows if s not in {"published", "unknown"}]
    assert statuses["published"] + statuses["unknown"] == THREADS, (statuses, others)
    for status, error, text in rows:
        thread = text.removesuffix(" 0")
        there = [k for k in (0, 1, 2) if on_x[f"{thread} {k}"]]
        if status == "published":
            assert there == [0, 1, 2], (thread, there)
            continue
        named = [k for k in (0, 1, 2) if f"part {k + 1} of 3" in (error or "")]
        assert len(named) == 1, error
        (k,) = named
        # The parts before the one in flight went out; nothing after it was sent.
        assert there in (list(range(k)), list(range(k + 1))), (thread, k, there)
    assert statuses["unknown"] <= kills * 4
    log.warning(
        "chaos threads: %d kills, %d unknown of %d threads", kills, statuses["unknown"], THREADS
    )
