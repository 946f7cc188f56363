"""Account slots shared by every worker: in Redis (one script per batch, holders that expire
unless their process renews them), in this machine's lock files (a dead process's locks dropped
by the kernel), and passes of two runtimes publishing to one Matrix room (cap 1) as two
processes would: never two sends in flight at the sandbox, each message once, also when Redis
goes away mid-pass."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postpilot.cache.clear import clear_shared
from postpilot.cache.link import RedisLink
from postpilot.cache.slots import MachineAccountSlots, RedisAccountSlots, Slot
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from tests.cache.conftest import RedisProxy
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.waiting import wait_until

ROOM = "!room:sandbox.test"


def ask(account: str, holder: str, cap: int = 1) -> Slot:
    return Slot(account=account, holder=holder, cap=cap)


@pytest.fixture
async def link(redis_url: str) -> AsyncIterator[RedisLink]:
    link = RedisLink(redis_url)
    yield link
    await link.close()


async def test_redis_admits_each_account_up_to_its_cap_across_processes(link: RedisLink) -> None:
    one = RedisAccountSlots(link, holder_seconds=60)
    other = RedisAccountSlots(link, holder_seconds=60)  # another process
    asked = [ask("room", "p1:a"), ask("room", "p1:b"), ask("toots", "p1:c", 2)]
    assert await one.exchange([], [*asked, ask("toots", "p1:d", 2)]) == [True, False, True, True]
    assert await other.exchange([], [ask("room", "p2:a"), ask("toots", "p2:b", 2)]) == [
        False,
        False,
    ]
    # A return and an ask in one exchange: the slot given back is the one taken.
    assert await one.exchange([ask("room", "p1:a")], [ask("room", "p1:b")]) == [True]
    assert await other.exchange([ask("room", "p1:b")], [ask("room", "p2:a")]) == [True]
    assert await link.client.zrange(one.key("room"), 0, -1) == [b"p2:a"]


async def test_clearing_the_shared_cache_leaves_the_slots_in_flight(
    link: RedisLink, redis_url: str
) -> None:
    slots = RedisAccountSlots(link, holder_seconds=60)
    assert await slots.exchange([], [ask("room", "p1:a")]) == [True]
    await link.client.set(link.key("budget", "x:account:a"), "{}")
    assert await clear_shared(redis_url, prefix=link.prefix) == 1, "the budget only"
    assert await slots.exchange([], [ask("room", "p2:a")]) == [False], "still held"


async def test_a_dead_holders_slot_comes_back_once_it_expires(link: RedisLink) -> None:
    dead = RedisAccountSlots(link, holder_seconds=0.3)
    assert await dead.exchange([], [ask("room", "killed:a")]) == [True]
    alive = RedisAccountSlots(link, holder_seconds=60)
    assert await alive.exchange([], [ask("room", "alive:a")]) == [False]

    async def granted() -> bool:
        return await alive.exchange([], [ask("room", "alive:a")]) == [True]

    await wait_until(granted, timeout=5)
    assert await link.client.pttl(alive.key("room")) > 50_000, "the set lives as its holders do"


async def test_a_holder_renewed_by_its_exchanges_keeps_its_slot_past_its_lifetime(
    link: RedisLink,
) -> None:
    live = RedisAccountSlots(link, holder_seconds=0.6)
    other = RedisAccountSlots(link, holder_seconds=60)  # another process
    assert live.renew_seconds == pytest.approx(0.2)
    key = live.key("room")
    assert await live.exchange([], [ask("room", "live:a")]) == [True]
    granted_until = await link.client.zscore(key, "live:a")

    async def redis_ms() -> float:  # the script's clock: the server's
        seconds, micros = await link.client.time()
        return float(seconds * 1000 + micros // 1000)

    async def past(moment: float) -> bool:
        return await redis_ms() > moment

    # Half a lifetime in, the pass renews what it holds (its broker's timer would).
    await wait_until(lambda: past(granted_until - 300), timeout=5, every=0.02)
    assert await live.exchange([], [], [ask("room", "live:a")]) == []
    renewed_until = await link.client.zscore(key, "live:a")
    assert renewed_until >= granted_until + 300
    # Past the lifetime it was granted, the slot is still held.
    await wait_until(lambda: past(granted_until + 50), timeout=5, every=0.02)
    assert await other.exchange([], [ask("room", "other:a")]) == [False], "still held"
    # No more renewals (a killed process, a cancelled pass): it comes back within a lifetime.

    async def granted() -> bool:
        return await other.exchange([], [ask("room", "other:a")]) == [True]

    await wait_until(granted, timeout=5)
    assert await redis_ms() > renewed_until
    # A late renewal or return takes nothing from the slot's new holder.
    assert await live.exchange([], [], [ask("room", "live:a")]) == []
    assert await live.exchange([ask("room", "live:a")], []) == []
    assert await link.client.zrange(key, 0, -1) == [b"other:a"]


async def test_slots_are_taken_on_the_machine_too_which_alone_answers_once_redis_is_gone(
    redis_proxy: RedisProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link = RedisLink(redis_proxy.url, retry_seconds=30)
    slots = RedisAccountSlots(
        link, holder_seconds=60, machine=MachineAccountSlots(tmp_path / "slots")
    )
    elsewhere = RedisAccountSlots(  # another machine: its own lock files
        link, holder_seconds=60, machine=MachineAccountSlots(tmp_path / "other")
    )
    try:
        assert await elsewhere.exchange([], [ask("toots", "x", 2)]) == [True]
        assert await slots.exchange([], [ask("room", "a"), ask("toots", "b", 2)]) == [True, True]
        # Refused by Redis (the other machine holds the other slot): not held here either.
        assert await slots.exchange([], [ask("toots", "c", 2)]) == [False]
        await redis_proxy.cut()
        # The send in flight when Redis went away still counts on this machine.
        assert await slots.exchange([], [ask("room", "d"), ask("toots", "c", 2)]) == [False, True]
        assert await slots.exchange([ask("room", "a")], [ask("room", "d")]) == [True]
    finally:
        slots.close()
        elsewhere.close()
        await link.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "redis unreachable: caching in-process until it answers again"
    ]


@pytest.mark.acceptance  # a process of its own, killed
async def test_machine_slots_hold_across_processes_and_a_killed_process_frees_its_own(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "slots"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys, time\n"
            "from pathlib import Path\n"
            "from postpilot.cache.slots import MachineAccountSlots, Slot\n"
            f"slots = MachineAccountSlots(Path({str(directory)!r}))\n"
            "asked = [Slot('room', 'other:a', 1), Slot('toots', 'other:b', 2)]\n"
            "print(asyncio.run(slots.exchange([], asked)), flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "[True, True]"
        slots = MachineAccountSlots(directory)
        asked = [ask("room", "a"), ask("toots", "b", 2), ask("toots", "c", 2)]
        assert await slots.exchange([], asked) == [False, True, False]
        holder.kill()
        holder.wait()
        assert await slots.exchange([], [ask("room", "a"), ask("toots", "c", 2)]) == [True, True]
        assert await slots.exchange([], [ask("room", "d")]) == [False], "one process, one cap"
        slots.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_returned_machine_slot_is_free_for_others_and_one_descriptor_serves_one_holder(
    tmp_path: Path,
) -> None:
    slots = MachineAccountSlots(tmp_path / "slots")
    other = MachineAccountSlots(tmp_path / "slots")  # its own descriptors: another process's
    try:
        assert await slots.exchange([], [ask("room", "a"), ask("room", "b")]) == [True, False]
        # "a" gives back a file kept open: "b" takes it, "c" in this process still may not.
        assert await slots.exchange([ask("room", "a")], [ask("room", "b")]) == [True]
        assert await slots.exchange([], [ask("room", "c")]) == [False]
        assert await other.exchange([], [ask("room", "x")]) == [False]
        assert await slots.exchange([ask("room", "b")], []) == []
        assert await other.exchange([], [ask("room", "x")]) == [True], "unlocked, though open"
        assert await slots.exchange([], [ask("room", "c")]) == [False]
    finally:
        slots.close()
        other.close()


async def test_machine_slots_keep_at_most_their_idle_limit_of_files_open(tmp_path: Path) -> None:
    before = open_descriptors()
    slots = MachineAccountSlots(tmp_path / "slots", idle_limit=3)
    asked = [ask(f"account-{n}", f"h{n}") for n in range(10)]
    assert await slots.exchange([], asked) == [True] * 10
    assert open_descriptors() == before + 10, "one per holder while held"
    assert await slots.exchange(asked, []) == []
    assert open_descriptors() == before + 3
    # A file closed for the limit is opened again; the others' locks still hold.
    assert await slots.exchange([], asked[:5]) == [True] * 5
    other = MachineAccountSlots(tmp_path / "slots")
    assert await other.exchange([], [ask(f"account-{n}", "x") for n in range(6)]) == [
        *[False] * 5,
        True,
    ]
    other.close()
    slots.close()
    assert open_descriptors() == before


async def test_an_unusable_slots_directory_leaves_caps_per_process_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    taken = tmp_path / "a file"
    taken.write_text("")
    slots = MachineAccountSlots(taken)
    assert await slots.exchange([], [ask("room", "a"), ask("room", "b")]) == [True, True]
    assert await slots.exchange([ask("room", "a")], [ask("room", "c")]) == [True]
    slots.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["account slots directory unusable: caps hold per process only"]


async def two_runtimes(
    db: Database, sandbox: SandboxClient, redis: str, tmp_path: Path
) -> list[ServiceRuntime]:
    # One JOURNAL_DIR: two processes of one machine (its lock files are the Redis fallback).
    settings = make_settings(
        db, sandbox, REDIS_URL=redis, JOURNAL_DIR=str(tmp_path / "journal"), REDIS_RETRY_SECONDS=60
    )
    return [build_runtime(settings, db=db), build_runtime(settings, db=db)]


async def room_posts(db: Database, sandbox: SandboxClient, count: int) -> None:
    tokens = sandbox.issue_token("matrix", "@bot:sandbox.test")
    workspace, room = await workspace_with_accounts(
        db,
        sandbox,
        platform="matrix",
        credentials={"access_token": tokens["access_token"]},
        options={"room_id": ROOM},
    )
    await due_posts(db, workspace, room, count=count, at=datetime.now(UTC))


async def publish_in_two_passes(runtimes: list[ServiceRuntime], each: int) -> int:
    reports = await asyncio.gather(
        *(run_pass(rt, scheduler="optimized", limit=each, concurrency=10) for rt in runtimes)
    )
    assert all(report.claimed == each for report in reports), "each pass held half the room"
    return sum(report.published for report in reports)


def room_sends(sandbox: SandboxClient) -> list[dict[str, object]]:
    return [r for r in sandbox.requests("matrix") if "/send/" in str(r["path"])]


def assert_each_once(sandbox: SandboxClient, count: int) -> None:
    texts = Counter(record["text"] for record in sandbox.records("matrix"))
    assert len(texts) == count and set(texts.values()) == {1}


async def test_two_processes_passes_send_one_at_a_time_to_a_room_through_redis(
    pg_db: Database, sandbox: SandboxClient, redis_url: str, tmp_path: Path
) -> None:
    sandbox.configure(latency_ms=30)  # sends long enough to overlap if they were let
    await room_posts(pg_db, sandbox, count=12)
    runtimes = await two_runtimes(pg_db, sandbox, redis_url, tmp_path)
    try:
        assert await publish_in_two_passes(runtimes, each=6) == 12
    finally:
        for rt in runtimes:
            await rt.close()
    sends = room_sends(sandbox)
    assert len(sends) == 12 and max(int(str(r["concurrent"])) for r in sends) == 1
    assert_each_once(sandbox, 12)


async def test_redis_cut_mid_pass_keeps_the_cap_on_the_machine_and_sends_each_once(
    pg_db: Database,
    sandbox: SandboxClient,
    redis_proxy: RedisProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.configure(latency_ms=30)
    await room_posts(pg_db, sandbox, count=12)
    runtimes = await two_runtimes(pg_db, sandbox, redis_proxy.url, tmp_path)
    try:
        passes = asyncio.create_task(publish_in_two_passes(runtimes, each=6))
        await wait_until(lambda: len(sandbox.records("matrix")) >= 3, timeout=20)
        await redis_proxy.cut()
        assert await asyncio.wait_for(passes, timeout=60) == 12, "nothing stuck"
    finally:
        for rt in runtimes:
            await rt.close()
    sends = room_sends(sandbox)
    assert len(sends) == 12 and max(int(str(r["concurrent"])) for r in sends) == 1
    assert_each_once(sandbox, 12)
    assert any(r.getMessage().startswith("redis unreachable") for r in caplog.records)
