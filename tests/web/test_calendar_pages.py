"""The calendar, composer and post pages through the real server (no browser): posts on the
right day in the viewer's zone, filters, the list view's pages, the counters' agreement with
core/limits.py, roles, and another workspace's posts staying out of sight."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from postpilot.core import limits
from postpilot.core.roles import Role
from postpilot.store.database import Database
from tests.helpers import ApiServer, api_server, mastodon_account, new_workspace
from tests.web.people import add_person, page_token, sign_in


@pytest.fixture
async def api(sqlite_db: Database) -> AsyncIterator[ApiServer]:
    async with api_server(sqlite_db) as server:
        yield server


def next_month_day(hour: int) -> datetime:
    """The 15th of next month at `hour` UTC: always in the future, always mid-month."""
    now = datetime.now(UTC)
    first = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first.replace(day=15, hour=hour, minute=0, second=0, microsecond=0)


async def schedule(api: ApiServer, account_id: str, text: str, at: datetime) -> str:
    answer = await api.client.post(
        "/api/posts",
        json={"text": text, "targets": [account_id], "scheduled_at": at.isoformat()},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def day_cell(html: str, day: str) -> str:
    """The month grid's cell of `day` (YYYY-MM-DD)."""
    found = re.search(rf'data-day="{day}".*?</section>', html, re.S)
    assert found, f"no cell for {day}"
    return found.group(0)


async def test_posts_show_on_their_day_in_the_viewers_zone(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    account = await mastodon_account(api)
    at = next_month_day(20)  # 20:00 UTC is 05:00 the next day in Tokyo
    post_id = await schedule(api, account, "late evening in London", at)
    client = await sign_in(api, "ed@example.com")
    month = f"/calendar?view=month&date={at.date().isoformat()}"
    utc = (await client.get(month + "&tz=UTC")).text
    assert post_id in day_cell(utc, at.date().isoformat())
    client.cookies.set("pp_tz", "Asia/Tokyo")  # what calendar.js sets from the browser
    tokyo = (await client.get(month)).text
    next_day = (at + timedelta(days=1)).date().isoformat()
    assert post_id in day_cell(tokyo, next_day)
    assert post_id not in day_cell(tokyo, at.date().isoformat())
    assert ">05:00<" in day_cell(tokyo, next_day)
    assert 'draggable="true"' in tokyo, "an editor may move a scheduled post"
    week = (await client.get(f"/calendar?view=week&date={at.date().isoformat()}&tz=UTC")).text
    assert post_id in day_cell(week, at.date().isoformat())
    # An unknown zone is not an error: the page falls back to UTC.
    assert (await client.get(month + "&tz=Mars/Base")).status_code == 200


async def test_filters_by_account_status_and_author(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    first = await mastodon_account(api, handle="@first")
    second = await mastodon_account(api, handle="@second")
    at = next_month_day(9)
    by_key = await schedule(api, first, "from the key", at)
    client = await sign_in(api, "ed@example.com")
    token = await page_token(client, "/calendar")
    by_person = await client.post(
        "/api/posts",
        json={"text": "from a person", "targets": [second], "scheduled_at": at.isoformat()},
        headers={"X-CSRF-Token": token},
    )
    assert by_person.status_code == 201, by_person.text
    person_post = by_person.json()["id"]
    base = f"/calendar?view=list&date={at.date().isoformat()}&tz=UTC"
    both = (await client.get(base)).text
    assert by_key in both and person_post in both
    only_second = (await client.get(base + f"&account={second}")).text
    assert person_post in only_second and by_key not in only_second
    only_person = (await client.get(base + "&author=user:ed@example.com")).text
    assert person_post in only_person and by_key not in only_person
    published = (await client.get(base + "&status=published")).text
    assert by_key not in published and person_post not in published
    bad = await client.get(base + "&status=sleeping")
    assert bad.status_code == 422


async def test_list_view_pages(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    account = await mastodon_account(api)
    at = next_month_day(8)
    ids = [await schedule(api, account, f"post {n}", at + timedelta(minutes=n)) for n in range(52)]
    client = await sign_in(api, "vi@example.com")
    base = f"/calendar?view=list&date={at.date().isoformat()}&tz=UTC"
    first = (await client.get(base)).text
    second = (await client.get(base + "&offset=50")).text
    assert all(i in first for i in ids[:50]) and ids[50] not in first
    assert ids[50] in second and ids[51] in second and ids[0] not in second
    assert "Next page" in first and "Next page" not in second
    assert 'draggable="true"' not in first, "a viewer cannot move posts"
    assert "Reschedule" not in first


async def test_counters_use_the_limits_the_api_checks(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    client = await sign_in(api, "ed@example.com")
    token = await page_token(client, "/compose")
    text = "👩‍👩‍👧 see https://example.com/a/very/long/path " + "é" * 10
    answer = await client.post(
        "/compose/counts",
        json={
            "text": text,
            "overrides": {"mastodon": "x" * 501},
            "platforms": ["x", "bluesky", "mastodon", "nowhere"],
            "media_count": 0,
            "accounts": {"acct-1": {"platform": "bluesky", "text": "é" * 301}},
        },
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()["counts"]
    own = [c for c in found if c.get("account_id") == "acct-1"]
    assert [(c["count"], c["limit"]) for c in own] == [(301, 300)] and own[0]["problems"]
    counts = {c["platform"]: c for c in found if "account_id" not in c}
    assert set(counts) == {"x", "bluesky", "mastodon"}
    assert counts["x"]["count"] == limits.count_x_weighted(text)
    assert counts["bluesky"]["count"] == limits.count_graphemes(text)
    assert counts["bluesky"]["unit"] == "graphemes"
    assert counts["mastodon"]["count"] == 501 and counts["mastodon"]["remaining"] == -1
    assert counts["mastodon"]["problems"] == limits.LIMITS["mastodon"].problems("x" * 501, 0)
    refused = await client.post(
        "/compose/counts", json={"text": 5}, headers={"X-CSRF-Token": token}
    )
    assert refused.status_code == 422
    assert set(refused.json()["error"]) == {"code", "message", "details"}
    no_token = await client.post("/compose/counts", json={"text": "hi"})
    assert no_token.status_code == 403
    viewer = await sign_in(api, "vi@example.com")
    viewer_token = await page_token(viewer, "/calendar")
    forbidden = await viewer.post(
        "/compose/counts", json={"text": "hi"}, headers={"X-CSRF-Token": viewer_token}
    )
    assert forbidden.status_code == 403
    assert (await viewer.get("/compose")).status_code == 403


async def test_post_page_shows_targets_and_activity_to_its_workspace_only(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    other, _ = await new_workspace(sqlite_db, "B")
    await add_person(sqlite_db, other, "b@example.com", Role.OWNER)
    account = await mastodon_account(api, handle="@shown")
    post_id = await schedule(api, account, "hello page", next_month_day(10))
    viewer = await sign_in(api, "vi@example.com")
    shown = await viewer.get(f"/posts/{post_id}")
    assert shown.status_code == 200
    assert "hello page" in shown.text and "@shown" in shown.text
    assert "created" in shown.text, "the activity timeline"
    assert "/compose/" not in shown.text, "a viewer gets no edit link"
    stranger = await sign_in(api, "b@example.com")
    for path in (f"/posts/{post_id}", f"/compose/{post_id}"):
        assert (await stranger.get(path)).status_code == 404
    month = await stranger.get("/calendar?view=list&date=2000-01-01")
    assert post_id not in month.text and "hello page" not in month.text


async def test_composer_edits_its_own_workspaces_post(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    account = await mastodon_account(api)
    at = next_month_day(11)
    post_id = await schedule(api, account, "to be edited", at)
    client = await sign_in(api, "ed@example.com")
    page = await client.get(f"/compose/{post_id}")
    assert page.status_code == 200
    assert "to be edited" in page.text
    assert f'value="{at.strftime("%Y-%m-%dT%H:%M")}"' in page.text
    assert re.search(rf'value="{account}"[^>]*checked', page.text)
    assert isinstance(page, httpx.Response)
