"""An occurrence whose time passed while no worker ran is made late and published at once,
with its lateness kept, when it is at most MAX_LATE late; later than that it is skipped, and so
is one that passed while the rule was paused. Through the API process, the plans step and the
scheduler's cron pass, with a clock the test moves, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from postpilot.sandbox.client import SandboxClient
from postpilot.store import recurrence
from postpilot.store.database import Database
from tests.clock import Clock
from tests.helpers import ApiServer, api_server, mastodon_account
from tests.queues.test_recurrences import PLANS, daily

# Weekly at 09:00 Paris (08:00 UTC in March): a week ahead holds one occurrence at a time.
WEEKLY = {"rrule": "FREQ=WEEKLY;COUNT=3"}
FIRST = datetime(2027, 3, 1, 8, tzinfo=UTC)


async def weekly_rule(api: ApiServer, sandbox: SandboxClient) -> tuple[Clock, dict[str, Any]]:
    """The API's clock two hours before FIRST, and a weekly rule from FIRST to a Mastodon
    account: the test moves the clock."""
    clock = Clock(FIRST - timedelta(hours=2))
    api.runtime.clock = clock
    account = await mastodon_account(api, sandbox)
    return clock, await daily(api, account, "2027-03-01T09:00:00", **WEEKLY)


async def test_a_missed_occurrence_is_made_late_and_published(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        clock, made = await weekly_rule(api, sandbox)
        assert [o["late_seconds"] for o in made["occurrences"]] == [None]

        # No worker ran across the second occurrence: two hours after it, it is made late (the
        # third, a week ahead now, is made ahead as usual).
        clock.at = FIRST + timedelta(days=7, hours=2)
        plans = await api.client.post(PLANS, headers=api.cron())
        assert plans.json()["occurrences_made"] == 2, plans.text
        shown = (await api.client.get(f"/api/recurrences/{made['id']}")).json()
        second = shown["occurrences"][1]
        assert datetime.fromisoformat(second["occurrence_at"]) == FIRST + timedelta(days=7)
        assert [o["late_seconds"] for o in shown["occurrences"]] == [None, 2 * 3600, None]
        summary = await api.client.post(
            "/api/cron/scheduler-optimized", headers=api.cron(), json={"limit": 10}
        )
        assert summary.json()["published"] == 2, "the first, and the second late"
        post = (await api.client.get(f"/api/posts/{second['post_id']}")).json()
        assert post["status"] == "published"
        assert len(sandbox.records("mastodon")) == 2


async def test_an_occurrence_later_than_the_bound_is_skipped(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        clock, made = await weekly_rule(api, sandbox)
        clock.at = FIRST + timedelta(days=7) + recurrence.MAX_LATE + timedelta(minutes=1)
        plans = await api.client.post(PLANS, headers=api.cron())
        assert plans.json()["occurrences_made"] == 1, "the third only, ahead"
        shown = (await api.client.get(f"/api/recurrences/{made['id']}")).json()
        assert [o["occurrence_at"][:10] for o in shown["occurrences"]] == [
            "2027-03-01",
            "2027-03-15",
        ]


async def test_an_occurrence_passed_while_paused_is_not_made_late(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        clock, made = await weekly_rule(api, sandbox)
        clock.at = FIRST + timedelta(days=6)
        paused = await api.client.patch(f"/api/recurrences/{made['id']}", json={"paused": True})
        assert paused.status_code == 200, paused.text
        clock.at = FIRST + timedelta(days=7, hours=1)  # the second passes while paused
        resumed = await api.client.patch(f"/api/recurrences/{made['id']}", json={"paused": False})
        assert resumed.status_code == 200, resumed.text
        assert (await api.client.post(PLANS, headers=api.cron())).json()["occurrences_made"] == 0
        shown = (await api.client.get(f"/api/recurrences/{made['id']}")).json()
        # The first was cancelled by the pause; the second is not made late; the third ahead.
        assert [o["occurrence_at"][:10] for o in shown["occurrences"]] == ["2027-03-15"]


async def test_a_patch_that_changes_nothing_keeps_the_missed_occurrence(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        clock, made = await weekly_rule(api, sandbox)
        clock.at = FIRST + timedelta(days=7, hours=1)
        same = await api.client.patch(f"/api/recurrences/{made['id']}", json={"paused": False})
        assert same.status_code == 200, same.text
        assert [o["late_seconds"] for o in same.json()["occurrences"]] == [None, 3600, None]
