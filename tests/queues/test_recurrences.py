"""Recurring posts through the API process, the plans step and the scheduler's cron pass,
with a clock the test moves: one post per occurrence at 09:00 local across the Paris DST
changes, materialising again (or concurrently) makes no duplicate on SQLite and PostgreSQL,
and an occurrence is published once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from postpilot.sandbox.client import SandboxClient
from postpilot.store import recurrence
from postpilot.store.database import Database
from postpilot.store.tables import Occurrence, Post
from tests.clock import Clock
from tests.helpers import ApiServer, api_server, mastodon_account, new_workspace

PARIS = ZoneInfo("Europe/Paris")
PLANS = "/api/cron/plans"


async def daily(api: ApiServer, account: str, starts_at: str, **extra: Any) -> dict[str, Any]:
    answer = await api.client.post(
        "/api/recurrences",
        json={
            "rrule": "FREQ=DAILY;COUNT=20",
            "starts_at": starts_at,
            "timezone": "Europe/Paris",
            "text": "Good morning",
            "targets": [account],
            **extra,
        },
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def local_times(occurrences: list[dict[str, Any]]) -> list[str]:
    return [
        datetime.fromisoformat(o["occurrence_at"]).astimezone(PARIS).strftime("%m-%d %H:%M")
        for o in occurrences
    ]


async def post_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Post))).scalar_one())


@pytest.mark.parametrize(
    ("now", "starts_at", "expected"),
    [
        # Clocks go forward in Paris on 28 March 2027, back on 31 October.
        (datetime(2027, 3, 25, 12, tzinfo=UTC), "2027-03-26T09:00:00", range(26, 32)),
        (datetime(2027, 10, 28, 12, tzinfo=UTC), "2027-10-29T09:00:00", range(29, 32)),
    ],
)
async def test_a_daily_rule_makes_one_post_a_day_at_nine_local_across_dst(
    sqlite_db: Database,
    sandbox: SandboxClient,
    now: datetime,
    starts_at: str,
    expected: range,
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        api.runtime.clock = Clock(now)
        account = await mastodon_account(api, sandbox)
        made = await daily(api, account, starts_at)
        occurrences = made["occurrences"]
        # The week ahead of `now`, one a day, all at 09:00 Paris time.
        month = starts_at[5:7]
        assert local_times(occurrences)[: len(expected)] == [
            f"{month}-{d:02d} 09:00" for d in expected
        ]
        assert len({o["occurrence_at"] for o in occurrences}) == len(occurrences)
        offsets = {
            datetime.fromisoformat(o["occurrence_at"]).astimezone(PARIS).utcoffset()
            for o in occurrences
        }
        assert len(offsets) == 2, "the week spans the change"
        for occurrence in occurrences:
            post = (await api.client.get(f"/api/posts/{occurrence['post_id']}")).json()
            assert post["text"] == "Good morning" and post["status"] == "scheduled"
            assert post["scheduled_at"] == occurrence["occurrence_at"]


async def test_materialising_again_makes_no_duplicate(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        clock = Clock(datetime(2027, 3, 1, 6, tzinfo=UTC))
        api.runtime.clock = clock
        account = await mastodon_account(api, sandbox)
        made = await daily(api, account, "2027-03-01T09:00:00")
        assert len(made["occurrences"]) == 7
        posts = await post_count(any_db)

        again = await api.client.post(PLANS, headers=api.cron())
        assert again.status_code == 200, again.text
        assert again.json()["occurrences_made"] == 0
        # Two workers at once, each in its own transaction: one post per occurrence.
        clock.at += timedelta(days=2)

        async def step() -> int:
            async with any_db.transaction() as session:
                return await recurrence.materialise(session, now=clock.at)

        if any_db.url.startswith("sqlite"):
            results = [await step(), await step()]
        else:
            results = list(await asyncio.gather(step(), step()))
        assert sorted(results) == [0, 2], results
        assert await post_count(any_db) == posts + 2
        async with any_db.session() as session:
            instants = (await session.execute(select(Occurrence.occurrence_at))).scalars().all()
        assert len(instants) == len(set(instants)) == 9


async def test_an_occurrence_is_published_once(sqlite_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        clock = Clock(datetime(2027, 3, 1, 6, tzinfo=UTC))
        api.runtime.clock = clock
        account = await mastodon_account(api, sandbox)
        made = await daily(api, account, "2027-03-01T09:00:00", rrule="FREQ=DAILY;COUNT=2")
        first = made["occurrences"][0]
        clock.at = datetime.fromisoformat(first["occurrence_at"])
        for _ in range(2):
            await api.client.post(PLANS, headers=api.cron())
            summary = await api.client.post(
                "/api/cron/scheduler-optimized", headers=api.cron(), json={"limit": 10}
            )
            assert summary.status_code == 200, summary.text
        assert [r["text"] for r in sandbox.records("mastodon")] == ["Good morning"]
        post = (await api.client.get(f"/api/posts/{first['post_id']}")).json()
        assert post["status"] == "published"
        listed = (await api.client.get(f"/api/recurrences/{made['id']}")).json()
        assert len(listed["occurrences"]) == 2, "COUNT=2: two occurrences in all"


async def test_pause_resume_and_delete(sqlite_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        api.runtime.clock = Clock(datetime(2027, 3, 1, 6, tzinfo=UTC))
        account = await mastodon_account(api, sandbox)
        made = await daily(api, account, "2027-03-01T09:00:00")
        first_posts = [o["post_id"] for o in made["occurrences"]]
        paused = await api.client.patch(f"/api/recurrences/{made['id']}", json={"paused": True})
        assert paused.status_code == 200 and paused.json()["occurrences"] == []
        statuses = {(await api.client.get(f"/api/posts/{p}")).json()["status"] for p in first_posts}
        assert statuses == {"cancelled"}
        resumed = await api.client.patch(f"/api/recurrences/{made['id']}", json={"paused": False})
        assert len(resumed.json()["occurrences"]) == 7
        deleted = await api.client.delete(f"/api/recurrences/{made['id']}")
        assert deleted.status_code == 204
        assert (await api.client.get(f"/api/recurrences/{made['id']}")).status_code == 404
        assert (await api.client.post(PLANS, headers=api.cron())).json()["occurrences_made"] == 0


@pytest.mark.parametrize(
    ("rrule", "named"),
    [
        ("FREQ=DAILY", "give an end, UNTIL or COUNT"),
        ("FREQ=MINUTELY;COUNT=3", "FREQ must be one of"),
        ("FREQ=DAILY;COUNT=3;BYDAY=XX", "rrule: "),
    ],
)
async def test_a_bad_rule_is_a_422_naming_it_and_stores_nothing(
    sqlite_db: Database, sandbox: SandboxClient, rrule: str, named: str
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account = await mastodon_account(api, sandbox)
        answer = await api.client.post(
            "/api/recurrences",
            json={
                "rrule": rrule,
                "starts_at": "2030-01-01T09:00:00",
                "text": "x",
                "targets": [account],
            },
        )
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_rrule" and named in error["message"]
        assert error["details"][0]["field"] == "rrule"
        assert (await api.client.get("/api/recurrences")).json() == []
        assert await post_count(sqlite_db) == 0


async def test_recurrences_stay_in_their_workspace(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account = await mastodon_account(api, sandbox)
        made = await daily(api, account, "2030-01-01T09:00:00")
        _, key = await new_workspace(sqlite_db, "other")
        stranger = api.client_for(key)
        assert (await stranger.get(f"/api/recurrences/{made['id']}")).status_code == 404
        assert (await stranger.delete(f"/api/recurrences/{made['id']}")).status_code == 404
        assert (await stranger.get("/api/recurrences")).json() == []
        foreign = await stranger.post(
            "/api/recurrences",
            json={
                "rrule": "FREQ=DAILY;COUNT=2",
                "starts_at": "2030-01-01T09:00:00",
                "text": "x",
                "targets": [account],
            },
        )
        assert foreign.status_code == 422, "another workspace's account is not a target"
