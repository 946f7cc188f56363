"""The calendar's grids with busy days, through the real server on SQLite and PostgreSQL: a
month cell shows its first posts in time order and links to the day for the rest, the counts
follow the filters, and days are the viewer's local days across clock changes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from postpilot.core.roles import Role
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from postpilot.web.calendar import PER_DAY
from tests.helpers import ApiServer, api_server, mastodon_account
from tests.web.people import add_person, sign_in

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def api(any_db: Database) -> AsyncIterator[ApiServer]:
    async with api_server(any_db) as server:
        yield server


async def schedule(api: ApiServer, account_id: str, text: str, local: datetime) -> str:
    """A post at `local` wall-clock time in Europe/Paris."""
    answer = await api.client.post(
        "/api/posts",
        json={
            "text": text,
            "targets": [account_id],
            "scheduled_at": local.replace(tzinfo=None).isoformat(),
            "timezone": "Europe/Paris",
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def day_cell(html: str, day: date) -> str:
    found = re.search(rf'data-day="{day.isoformat()}".*?</section>', html, re.S)
    assert found, f"no cell for {day}"
    return found.group(0)


def post_ids(html: str) -> list[str]:
    return re.findall(r'class="cal-post[^"]*"[^>]*data-post-id="([0-9a-f-]{36})"', html)


def last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)
    return last - timedelta(days=(last.weekday() - 6) % 7)


async def test_a_busy_day_shows_its_first_posts_and_links_to_the_rest(
    api: ApiServer, any_db: Database
) -> None:
    await add_person(any_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    account = await mastodon_account(api)
    busy = datetime.now(PARIS).date() + timedelta(days=40)
    at = datetime(busy.year, busy.month, busy.day, 8, tzinfo=PARIS)
    count = PER_DAY["month"] + 2
    # Made out of order, so the page's order is the query's.
    hours = list(range(count))[::-1]
    made = {
        h: await schedule(api, account, f"post at {8 + h}", at + timedelta(hours=h)) for h in hours
    }
    in_order = [made[h] for h in range(count)]
    next_day = await schedule(api, account, "the day after", at + timedelta(days=1))
    client = await sign_in(api, "vi@example.com")
    month = f"/calendar?view=month&date={busy.isoformat()}&tz=Europe/Paris"
    html = (await client.get(month)).text
    cell = day_cell(html, busy)
    assert post_ids(cell) == in_order[: PER_DAY["month"]], "the first posts, in time order"
    more = re.search(r'<a class="cal-more" href="([^"]+)">\+(\d+) more', cell)
    assert more and int(more.group(2)) == 2
    assert post_ids(day_cell(html, busy + timedelta(days=1))) == [next_day]
    assert "cal-more" not in day_cell(html, busy + timedelta(days=1))

    # "+2 more" opens the day: all of its posts, in order, and none of the next day's.
    link = more.group(1).replace("&amp;", "&")
    assert "view=day" in link and f"date={busy.isoformat()}" in link
    answer = await client.get(link)
    assert answer.status_code == 200, (link, answer.text[-3000:])
    day = answer.text
    assert post_ids(day) == in_order
    assert 'aria-current="page">Day<' in day

    # The week has room for them all.
    week = (await client.get(month.replace("view=month", "view=week"))).text
    assert post_ids(day_cell(week, busy)) == in_order

    # Counts follow the filters: one failed post is the day's only one under status=failed.
    async with any_db.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.post_id == in_order[-1]).values(status="failed")
        )
    failed = (await client.get(month + "&status=failed")).text
    assert post_ids(day_cell(failed, busy)) == [in_order[-1]]
    assert "cal-more" not in failed
    scheduled = (await client.get(month + "&status=scheduled")).text
    assert re.search(r"\+1 more", day_cell(scheduled, busy))
    only_failed = (await client.get(link + "&status=failed")).text
    assert post_ids(only_failed) == [in_order[-1]]


async def test_days_are_local_days_across_clock_changes(api: ApiServer, any_db: Database) -> None:
    await add_person(any_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    account = await mastodon_account(api)
    year = datetime.now(UTC).year + 1
    client = await sign_in(api, "vi@example.com")
    for change in (last_sunday(year, 3), last_sunday(year, 10)):  # 23 and 25 hours
        before, after = change - timedelta(days=1), change + timedelta(days=1)

        def local(day: date, hour: int, minute: int) -> datetime:
            return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)

        placed = {
            before: await schedule(api, account, "late", local(before, 23, 30)),
            change: await schedule(api, account, "first", local(change, 0, 30)),
            after: await schedule(api, account, "early", local(after, 0, 15)),
        }
        last = await schedule(api, account, "last", local(change, 23, 45))
        for day, post_id in placed.items():
            # The month that shows `day` (a grid ends on a Sunday: the Monday after a change
            # at the end of October is next month's).
            shown = f"/calendar?view=month&date={day.isoformat()}&tz=Europe/Paris"
            html = (await client.get(shown)).text
            expected = [post_id, last] if day == change else [post_id]
            assert post_ids(day_cell(html, day)) == expected, (change, day)
        html = (
            await client.get(f"/calendar?view=month&date={change.isoformat()}&tz=Europe/Paris")
        ).text
        assert ">23:45<" in day_cell(html, change)
        shown_day = f"/calendar?view=day&date={change.isoformat()}&tz=Europe/Paris"
        assert post_ids((await client.get(shown_day)).text) == [placed[change], last]
