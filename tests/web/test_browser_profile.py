"""Your settings in a real browser: two people whose browsers are in other zones each see the
same post at their own saved zone's local time (calendar, post page, composer), and a bad zone
typed in the form is refused next to its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from postpilot.core.roles import Role
from postpilot.store.database import Database
from tests.web.conftest import Served, screenshot_path
from tests.web.people import PASSWORD, add_person

pytestmark = [pytest.mark.browser, pytest.mark.acceptance]


async def signed_in(browser: Browser, served: Served, email: str, browser_zone: str) -> Page:
    context = await browser.new_context(
        base_url=served.url,
        viewport=ViewportSize(width=1280, height=800),
        timezone_id=browser_zone,
    )
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Calendar")).to_be_visible()
    return page


async def choose_zone(page: Page, zone: str) -> None:
    await page.get_by_title("Your settings").click()
    await expect(page.get_by_role("heading", name="Your settings")).to_be_visible()
    await page.get_by_label("Time zone").fill(zone)
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(page.get_by_label("Time zone")).to_have_value(zone)


async def test_each_person_sees_the_same_post_at_their_own_zones_time(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "tokyo@example.com", Role.EDITOR)
    await add_person(sqlite_db, server.workspace_id, "paris@example.com", Role.EDITOR)
    account = await server.client.post(
        "/api/v1/accounts",
        json={
            "platform": "mastodon",
            "handle": "@zones",
            "base_url": "https://mastodon.example",
            "credentials": {"access_token": "token-zones"},
            "verify": False,
        },
    )
    assert account.status_code == 201, account.text
    # 22:30 UTC on the 15th of next month: the 16th at 07:30 in Tokyo (no DST there), the 15th
    # at 23:30 or 00:30 in Paris depending on the season, so the page's own zone is checked.
    now = datetime.now(UTC)
    first = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    at = first.replace(day=15, hour=22, minute=30, second=0, microsecond=0)
    post = await server.client.post(
        "/api/v1/posts",
        json={
            "text": "one instant",
            "targets": [account.json()["id"]],
            "scheduled_at": at.isoformat(),
        },
    )
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    paris_local = at.astimezone(ZoneInfo("Europe/Paris"))

    # Both browsers are in New York: each person's saved zone decides, not the browser's.
    tokyo = await signed_in(chromium, server, "tokyo@example.com", "America/New_York")
    paris = await signed_in(chromium, server, "paris@example.com", "America/New_York")
    await choose_zone(tokyo, "Asia/Tokyo")
    await choose_zone(paris, "Europe/Paris")

    for page, zone, day, clock in (
        (tokyo, "Asia/Tokyo", (at + timedelta(days=1)).date().isoformat(), "07:30"),
        (paris, "Europe/Paris", paris_local.date().isoformat(), paris_local.strftime("%H:%M")),
    ):
        await page.goto(f"/calendar?view=month&date={day}")
        cell = page.locator(f'[data-day="{day}"]')
        await expect(cell.locator(f'article[data-post-id="{post_id}"]')).to_contain_text(clock)
        await page.goto(f"/posts/{post_id}")
        scheduled = page.locator("p", has_text="Scheduled for")
        await expect(scheduled).to_contain_text(f"{clock} ({zone})")
    await tokyo.screenshot(path=screenshot_path("post-in-your-zone"), full_page=True)
    # The composer's default zone for a new post is the person's own.
    await paris.goto("/compose")
    await expect(paris.get_by_label("Time zone", exact=True)).to_have_value("Europe/Paris")


async def test_a_bad_zone_is_refused_next_to_its_field(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "ed@example.com", Role.EDITOR)
    page = await signed_in(chromium, server, "ed@example.com", "Europe/Berlin")
    await page.get_by_title("Your settings").click()
    field = page.get_by_label("Time zone")
    await expect(page.get_by_text("Empty: your browser's (Europe/Berlin)")).to_be_visible()
    await field.fill("Europe/Atlantis")
    await page.get_by_role("button", name="Save").click()
    problem = page.locator("#me-timezone-error")
    await expect(problem).to_contain_text("unknown time zone 'Europe/Atlantis'")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(field).to_have_value("Europe/Atlantis")
    await page.screenshot(path=screenshot_path("your-settings-refused"), full_page=True)
    # Nothing was saved: the calendar still follows the browser.
    await page.goto("/calendar")
    await expect(page.locator(".calendar")).to_have_attribute("data-zone", "Europe/Berlin")
