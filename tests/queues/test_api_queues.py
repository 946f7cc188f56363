"""Queues through the API process and the scheduler's cron pass against the sandbox, on SQLite
and PostgreSQL, with a clock the test moves: posts take the next slots in order, the slot's
post is published when due, a cancelled or rescheduled post frees its slot and the later ones
move up; reorder, shuffle, pause and resume; the refusals change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.clock import Clock
from tests.helpers import ApiServer, api_server, mastodon_account, new_workspace

PASS = "/api/cron/scheduler-optimized"
# Monday 1 March 2027, 08:00 UTC (09:00 in Paris).
START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
SLOTS = [
    {"day": 0, "time": "10:00"},  # Monday
    {"day": 2, "time": "10:00"},  # Wednesday
    {"day": 4, "time": "10:00"},  # Friday
]
MON, WED, FRI = "2027-03-01T09:00:00Z", "2027-03-03T09:00:00Z", "2027-03-05T09:00:00Z"
NEXT_MON = "2027-03-08T09:00:00Z"


@dataclass
class Setup:
    api: ApiServer
    clock: Clock
    account: str
    queue: str


@pytest.fixture
async def setup(any_db: Database, sandbox: SandboxClient) -> AsyncIterator[Setup]:
    async with api_server(any_db, sandbox) as api:
        clock = Clock(START)
        api.runtime.clock = clock
        account = await mastodon_account(api, sandbox)
        created = await api.client.post(
            "/api/queues",
            json={
                "name": "weekdays",
                "timezone": "Europe/Paris",
                "slots": SLOTS,
                "accounts": [account],
            },
        )
        assert created.status_code == 201, created.text
        yield Setup(api, clock, account, created.json()["id"])


async def queued(setup: Setup, text: str) -> str:
    answer = await setup.api.client.post(
        "/api/posts", json={"text": text, "targets": [setup.account], "queue_id": setup.queue}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def slots_of(setup: Setup) -> list[tuple[str, str]]:
    """(text, scheduled_at) of the waiting posts, in queue order."""
    answer = await setup.api.client.get(f"/api/queues/{setup.queue}/posts")
    assert answer.status_code == 200, answer.text
    return [(p["text"], _z(p["scheduled_at"])) for p in answer.json() if p["waiting"]]


def _z(moment: str) -> str:
    return moment.replace("+00:00", "Z")


async def due_at(setup: Setup, post_id: str) -> str:
    post = (await setup.api.client.get(f"/api/posts/{post_id}")).json()
    (target,) = post["targets"]
    return _z(target["next_attempt_at"]) if target["next_attempt_at"] else ""


async def run_pass(setup: Setup) -> dict[str, Any]:
    answer = await setup.api.client.post(PASS, headers=setup.api.cron(), json={"limit": 10})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_posts_take_the_next_slots_and_publish_when_due(
    setup: Setup, sandbox: SandboxClient
) -> None:
    first, second, third = [await queued(setup, t) for t in ("one", "two", "three")]
    assert await slots_of(setup) == [("one", MON), ("two", WED), ("three", FRI)]
    assert await due_at(setup, second) == WED

    assert (await run_pass(setup))["claimed"] == 0, "nothing is due before its slot"
    setup.clock.at = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    summary = await run_pass(setup)
    assert summary["claimed"] == 1 and summary["published"] == 1, summary
    assert [r["text"] for r in sandbox.records("mastodon")] == ["one"]
    published = (await setup.api.client.get(f"/api/posts/{first}")).json()
    assert published["status"] == "published"
    assert (await run_pass(setup))["claimed"] == 0, "published once"

    # Cancelling the Wednesday post frees its slot: the Friday one moves up.
    cancelled = await setup.api.client.post(f"/api/posts/{second}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert await slots_of(setup) == [("three", WED)]
    assert await due_at(setup, third) == WED

    # A new post takes the next free slot; a post given its own time leaves the queue.
    fourth = await queued(setup, "four")
    assert await slots_of(setup) == [("three", WED), ("four", FRI)]
    moved = await setup.api.client.patch(
        f"/api/posts/{third}", json={"scheduled_at": "2027-03-10T12:00:00Z"}
    )
    assert moved.status_code == 200, moved.text
    assert await slots_of(setup) == [("four", WED)]
    assert await due_at(setup, fourth) == WED
    assert await due_at(setup, third) == "2027-03-10T12:00:00Z"

    # Editing only the text keeps the slot.
    edited = await setup.api.client.patch(f"/api/posts/{fourth}", json={"text": "four!"})
    assert edited.status_code == 200, edited.text
    assert await slots_of(setup) == [("four!", WED)]


async def test_reorder_shuffle_pause_and_resume(setup: Setup) -> None:
    ids = [await queued(setup, t) for t in ("a", "b", "c")]
    reordered = await setup.api.client.put(
        f"/api/queues/{setup.queue}/posts", json={"post_ids": [ids[2], ids[0], ids[1]]}
    )
    assert reordered.status_code == 200, reordered.text
    assert await slots_of(setup) == [("c", MON), ("a", WED), ("b", FRI)]

    shuffled = await setup.api.client.post(f"/api/queues/{setup.queue}/shuffle")
    assert shuffled.status_code == 200, shuffled.text
    after = await slots_of(setup)
    assert sorted(t for t, _ in after) == ["a", "b", "c"]
    assert [at for _, at in after] == [MON, WED, FRI]

    paused = await setup.api.client.post(f"/api/queues/{setup.queue}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    setup.clock.at = datetime(2027, 3, 3, 9, 0, tzinfo=UTC)  # Wednesday's slot
    assert (await run_pass(setup))["claimed"] == 0, "a paused queue holds its posts"

    resumed = await setup.api.client.post(f"/api/queues/{setup.queue}/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    # Now is Wednesday's slot itself: the posts take the slots after it, in their order.
    assert [at for _, at in await slots_of(setup)] == [FRI, NEXT_MON, "2027-03-10T09:00:00Z"]
    assert [t for t, _ in await slots_of(setup)] == [t for t, _ in after]

    removed = await setup.api.client.delete(f"/api/queues/{setup.queue}/posts/{ids[0]}")
    assert removed.status_code == 200, removed.text
    assert len(await slots_of(setup)) == 2


async def test_editing_the_slots_retimes_the_waiting_posts(setup: Setup) -> None:
    await queued(setup, "a")
    await queued(setup, "b")
    changed = await setup.api.client.patch(
        f"/api/queues/{setup.queue}",
        json={"slots": [{"day": 1, "time": "18:00"}], "timezone": "America/New_York"},
    )
    assert changed.status_code == 200, changed.text
    # Tuesdays 18:00 in New York (UTC-5 until 14 March).
    assert await slots_of(setup) == [("a", "2027-03-02T23:00:00Z"), ("b", "2027-03-09T23:00:00Z")]


async def test_refusals_change_nothing(setup: Setup, any_db: Database) -> None:
    api = setup.api
    await queued(setup, "kept")
    before = await slots_of(setup)

    bad_slots = await api.client.post(
        "/api/queues",
        json={
            "name": "x",
            "timezone": "Europe/Paris",
            "slots": [{"day": 7, "time": "25:00"}],
            "accounts": [setup.account],
        },
    )
    assert bad_slots.status_code == 422
    assert bad_slots.json()["error"]["code"] == "invalid_request"
    twice = await api.client.post(
        "/api/queues",
        json={
            "name": "x",
            "timezone": "Europe/Paris",
            "slots": [SLOTS[0], SLOTS[0]],
            "accounts": [setup.account],
        },
    )
    assert twice.status_code == 422 and "twice" in twice.json()["error"]["message"]
    unknown_account = await api.client.post(
        "/api/queues",
        json={"name": "x", "timezone": "Europe/Paris", "slots": SLOTS, "accounts": ["nope"]},
    )
    assert unknown_account.status_code == 422
    assert "no account nope" in unknown_account.json()["error"]["message"]
    assert len((await api.client.get("/api/queues")).json()) == 1

    with_time = await api.client.post(
        "/api/posts",
        json={
            "text": "t",
            "targets": [setup.account],
            "queue_id": setup.queue,
            "scheduled_at": "2027-03-02T10:00:00Z",
        },
    )
    assert with_time.status_code == 422 and "scheduled_at" in with_time.json()["error"]["message"]
    no_queue = await api.client.post(
        "/api/posts", json={"text": "t", "targets": [setup.account], "queue_id": "nope"}
    )
    assert no_queue.status_code == 422 and "no queue nope" in no_queue.json()["error"]["message"]
    other = await mastodon_account(api, None, handle="@other")
    outside = await api.client.post(
        "/api/posts", json={"text": "t", "targets": [other], "queue_id": setup.queue}
    )
    assert outside.status_code == 422
    assert outside.json()["error"]["code"] == "queue_refused"
    assert (await api.client.get("/api/posts")).json()["total"] == 1, "no post was created"

    bad_order = await api.client.put(f"/api/queues/{setup.queue}/posts", json={"post_ids": []})
    assert bad_order.status_code == 409
    assert bad_order.json()["error"]["code"] == "queue_order_refused"
    assert await slots_of(setup) == before

    # Another workspace sees none of it.
    _, key = await new_workspace(any_db, "other")
    stranger = api.client_for(key)
    assert (await stranger.get(f"/api/queues/{setup.queue}")).status_code == 404
    assert (await stranger.get(f"/api/queues/{setup.queue}/posts")).status_code == 404
    assert (await stranger.post(f"/api/queues/{setup.queue}/shuffle")).status_code == 404
    assert (await stranger.delete(f"/api/queues/{setup.queue}")).status_code == 404
    assert (await stranger.get("/api/queues")).json() == []
    assert await slots_of(setup) == before


async def test_an_evergreen_post_comes_back_after_its_gap_cycling_its_texts(
    setup: Setup, sandbox: SandboxClient
) -> None:
    api = setup.api
    created = await api.client.post(
        "/api/posts", json={"text": "classic", "targets": [setup.account]}
    )
    post_id = created.json()["id"]
    added = await api.client.post(
        f"/api/queues/{setup.queue}/add",
        json={"post_id": post_id, "evergreen_gap_hours": 72, "variants": ["remix"]},
    )
    assert added.status_code == 200, added.text
    assert await slots_of(setup) == [("classic", MON)]
    again = await api.client.post(f"/api/queues/{setup.queue}/add", json={"post_id": post_id})
    assert again.status_code == 409 and "in a queue already" in again.json()["error"]["message"]

    plans = "/api/cron/plans"
    assert (await api.client.post(plans, headers=api.cron())).json()["evergreen_requeued"] == 0
    setup.clock.at = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert (await run_pass(setup))["published"] == 1
    back = await api.client.post(plans, headers=api.cron())
    assert back.json()["evergreen_requeued"] == 1
    # Published Monday 09:00 with a 72 h gap: Wednesday is too soon, Friday is the next slot.
    assert await slots_of(setup) == [("remix", FRI)]
    assert (await api.client.post(plans, headers=api.cron())).json()["evergreen_requeued"] == 0

    setup.clock.at = datetime(2027, 3, 5, 9, 0, tzinfo=UTC)
    assert (await run_pass(setup))["published"] == 1
    assert (await api.client.post(plans, headers=api.cron())).json()["evergreen_requeued"] == 1
    assert [t for t, _ in await slots_of(setup)] == ["classic"], "the texts take turns"
    assert [r["text"] for r in sandbox.records("mastodon")] == ["classic", "remix"]


async def test_a_post_whose_slot_has_come_keeps_it_until_a_worker_takes_it(
    setup: Setup, sandbox: SandboxClient
) -> None:
    first = await queued(setup, "one")
    await queued(setup, "two")
    # Monday's slot came half a minute ago and no pass has run yet: the queue changes.
    setup.clock.at = datetime(2027, 3, 1, 9, 0, 30, tzinfo=UTC)
    await queued(setup, "three")
    await setup.api.client.post(f"/api/queues/{setup.queue}/shuffle")
    assert await due_at(setup, first) == MON, "not pushed to a later slot"
    assert sorted(t for t, _ in await slots_of(setup)) == ["three", "two"]
    assert [at for _, at in await slots_of(setup)] == [WED, FRI]
    assert (await run_pass(setup))["published"] == 1
    assert [r["text"] for r in sandbox.records("mastodon")] == ["one"]
