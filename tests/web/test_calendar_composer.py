"""The calendar, composer and post page in a real browser: compose a post with an uploaded
image (counters, preview), schedule it, see it on the calendar, drag it to another day, bring it
forward with the keyboard form, watch a worker process publish it, and open its page; a viewer
cannot edit, and another workspace's session sees nothing."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, expect
from sqlalchemy import update

from postpilot.core.roles import Role
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.helpers import new_workspace
from tests.web.conftest import Served, screenshot_path
from tests.web.people import PASSWORD, add_person
from tests.workers import worker_env

pytestmark = [pytest.mark.browser, pytest.mark.acceptance]

ZONE = "Europe/Paris"


@pytest.fixture
def served(
    request: pytest.FixtureRequest, sandbox: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> Served:
    """The `server` fixture, told where the sandbox is (its accounts' address is allowed)."""
    monkeypatch.setenv("SANDBOX_URL", sandbox.url)
    server: Served = request.getfixturevalue("server")
    return server


class Workers:
    """`postpilot worker` processes against the sandbox, started when the test says."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        command = [sys.executable, "-m", "postpilot.cli.main", "worker"]
        self.started.append(subprocess.Popen(command, env=self.env, cwd=self.cwd))

    def stop(self) -> None:
        for process in self.started:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(sqlite_db: Database, sandbox: SandboxClient, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(worker_env(sqlite_db, sandbox, WORKER_POLL_SECONDS="0.5"), tmp_path)
    yield running
    running.stop()


async def open_page(browser: Browser, served: Served, *, phone: bool = False) -> Page:
    size = ViewportSize(width=390, height=844) if phone else ViewportSize(width=1280, height=900)
    context = await browser.new_context(base_url=served.url, viewport=size, timezone_id=ZONE)
    return await context.new_page()


async def sign_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Calendar")).to_be_visible()
    # The first calendar learns the browser's zone and shows itself again in it.
    await expect(page.locator(".cal-range")).to_contain_text(ZONE)


def png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (36, 84, 197)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


async def mastodon_account(served: Served, sandbox: SandboxClient, handle: str) -> str:
    made = await served.client.post(
        "/api/accounts",
        json={
            "platform": "mastodon",
            "handle": handle,
            "base_url": sandbox.platform_url("mastodon"),
            "credentials": {"access_token": f"token-{handle}"},
            "verify": False,
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_compose_schedule_drag_publish(
    chromium: Browser,
    served: Served,
    sqlite_db: Database,
    sandbox: SandboxClient,
    workers: Workers,
    tmp_path: Path,
) -> None:
    await add_person(sqlite_db, served.workspace_id, "ed@example.com", Role.EDITOR)
    await mastodon_account(served, sandbox, "@studio")
    page = await open_page(chromium, served)
    errors: list[str] = []

    def keep_errors(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep_errors)
    await sign_in(page, "ed@example.com")

    # Compose: an account, text with a URL (X would count it 23; Mastodon counts characters).
    await page.goto("/compose")
    await page.get_by_label(re.compile(r"mastodon\s+@studio")).check()
    text = "Launch day 🚀 details at https://example.com/launch"
    await page.get_by_label("Text", exact=True).fill(text)
    counter = page.locator('#counters li[data-platform="mastodon"]')
    await expect(counter).to_contain_text(f"{len(text)} / 500 characters")
    await page.get_by_label(re.compile("^Image")).set_input_files(png(tmp_path / "launch.png"))
    await page.get_by_label(re.compile("^Alt text")).fill("A blue launch banner")
    await page.get_by_role("button", name="Upload").click()
    await expect(page.locator("#media-list img")).to_have_attribute("alt", "A blue launch banner")
    preview = page.get_by_role("article", name="Preview on mastodon @studio")
    await expect(preview).to_contain_text(text)
    await expect(preview.locator("img")).to_have_count(1)
    # A variant too long for Mastodon: its counter and, on submit, the API's 422 by the field.
    await page.get_by_text("Variant for mastodon").click()
    await page.get_by_label("Text on mastodon").fill("x" * 501)
    await expect(counter).to_contain_text("501 / 500")
    await expect(counter).to_have_class(re.compile("over"))
    tomorrow = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    await page.get_by_label("Date and time").fill(f"{tomorrow.isoformat()}T10:30")
    await expect(page.get_by_label("Time zone")).to_have_value(ZONE)
    await page.get_by_role("button", name="Schedule").click()
    problem = page.locator('.field-problem[data-for="override-mastodon"]')
    await expect(problem).to_contain_text("the limit is 500")
    await page.get_by_label("Text on mastodon").fill("")
    await expect(problem).to_be_hidden()
    await expect(counter).to_contain_text(f"{len(text)} / 500 characters")
    await expect(preview.locator("img")).to_have_attribute("alt", "A blue launch banner")
    await page.screenshot(path=screenshot_path("composer"), full_page=True)
    await page.get_by_role("button", name="Schedule").click()
    await expect(page).to_have_url(re.compile(r"/posts/[0-9a-f-]{36}$"))
    post_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator(".delivery-status")).to_have_text("scheduled")

    # The calendar, in the browser's zone: the post on its day at 10:30.
    await page.goto(f"/calendar?view=week&date={tomorrow.isoformat()}")
    await expect(page.locator(".cal-range")).to_contain_text(ZONE)
    day = page.locator(f'.cal-day[data-day="{tomorrow.isoformat()}"]')
    post = page.locator(f'.cal-post[data-post-id="{post_id}"]')
    await expect(day.locator(post)).to_contain_text("10:30")
    # Dragged to the next day: same local time, through PATCH /api/posts/{id}.
    after = tomorrow + timedelta(days=1)
    target = page.locator(f'.cal-day[data-day="{after.isoformat()}"]')
    await post.drag_to(target)
    await expect(target.locator(post)).to_contain_text("10:30")
    moved = (await served.client.get(f"/api/posts/{post_id}")).json()
    assert moved["scheduled_at_local"].startswith(f"{after.isoformat()}T10:30")
    await page.goto(f"/calendar?view=month&date={after.isoformat()}")
    await expect(page.locator(f'.cal-post[data-post-id="{post_id}"]')).to_be_visible()
    await page.screenshot(path=screenshot_path("calendar-month"), full_page=True)

    # The keyboard way: the Reschedule form brings it to now; a worker publishes it.
    await page.goto(f"/calendar?view=week&date={after.isoformat()}")
    await post.get_by_text("Reschedule").click()
    now = datetime.now(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")
    await post.get_by_label(re.compile("^New time")).fill(now)
    async with page.expect_navigation():  # the calendar shows itself again once moved
        await post.get_by_role("button", name="Move").click()
    await page.goto(f"/posts/{post_id}")
    workers.start()
    await expect(page.locator(".delivery-status")).to_have_text("published", timeout=60_000)
    await expect(page.get_by_role("link", name="Open on mastodon")).to_be_visible()
    await expect(page.locator(".timeline")).to_contain_text("published")
    await expect(page.get_by_role("img", name="A blue launch banner")).to_be_visible()
    await page.screenshot(path=screenshot_path("post-page"), full_page=True)
    published = sandbox.records("mastodon")
    assert len(published) == 1
    # The one refusal on purpose (the over-long variant) is the only console error.
    assert [e for e in errors if "status of 422" not in e] == [], errors
    assert len(errors) == 1, errors


async def test_a_viewer_sees_but_cannot_edit_and_another_workspace_sees_nothing(
    chromium: Browser, served: Served, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, served.workspace_id, "vi@example.com", Role.VIEWER)
    other, _ = await new_workspace(sqlite_db, "B")
    await add_person(sqlite_db, other, "b@example.com", Role.OWNER)
    account = await mastodon_account(served, sandbox, "@team")
    when = datetime.now(ZoneInfo(ZONE)).replace(second=0, microsecond=0) + timedelta(days=2)
    made = await served.client.post(
        "/api/posts",
        json={
            "text": "Only for our workspace",
            "targets": [account],
            "scheduled_at": when.replace(tzinfo=None).isoformat(),
            "timezone": ZONE,
        },
    )
    assert made.status_code == 201, made.text
    post_id = made.json()["id"]

    viewer = await open_page(chromium, served, phone=True)
    await sign_in(viewer, "vi@example.com")
    await viewer.goto(f"/calendar?view=list&date={when.date().isoformat()}")
    post = viewer.locator(f'.cal-post[data-post-id="{post_id}"]')
    await expect(post).to_contain_text("Only for our workspace")
    await expect(post).not_to_have_attribute("draggable", "true")
    await expect(post.get_by_text("Reschedule")).to_have_count(0)
    await viewer.screenshot(path=screenshot_path("calendar-list-phone"), full_page=True)
    await viewer.goto(f"/posts/{post_id}")
    await expect(viewer.get_by_role("heading", name=re.compile("^Post"))).to_be_visible()
    await expect(viewer.get_by_role("link", name="Edit")).to_have_count(0)
    await viewer.goto(f"/compose/{post_id}")
    await expect(viewer.get_by_role("alert")).to_contain_text("needs the editor role")
    moved = await viewer.evaluate(
        """async (id) => {
            const token = JSON.parse(document.querySelector('[hx-headers]')
                .getAttribute('hx-headers'))['X-CSRF-Token'];
            const answer = await fetch('/api/posts/' + id, {method: 'PATCH',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                body: JSON.stringify({text: 'changed'})});
            return answer.status;
        }""",
        post_id,
    )
    assert moved == 403

    stranger = await open_page(chromium, served)
    await sign_in(stranger, "b@example.com")
    await stranger.goto(f"/calendar?view=list&date={when.date().isoformat()}")
    await expect(stranger.locator(".cal-post")).to_have_count(0)
    await expect(stranger.get_by_text("Only for our workspace")).to_have_count(0)
    await stranger.goto(f"/posts/{post_id}")
    await expect(stranger.get_by_role("alert")).to_contain_text("does not exist")


async def test_a_per_account_variant_and_add_to_queue(
    chromium: Browser, served: Served, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, served.workspace_id, "ed@example.com", Role.EDITOR)
    first = await mastodon_account(served, sandbox, "@first")
    await mastodon_account(served, sandbox, "@second")
    queue = await served.client.post(
        "/api/queues",
        json={
            "name": "Mornings",
            "timezone": ZONE,
            "slots": [{"day": d, "time": "09:15"} for d in range(7)],
            "accounts": [first],
        },
    )
    assert queue.status_code == 201, queue.text
    page = await open_page(chromium, served)
    await sign_in(page, "ed@example.com")
    await page.goto("/compose")
    await page.get_by_role("checkbox", name=re.compile(r"mastodon\s+@first")).check()
    await page.get_by_role("checkbox", name=re.compile(r"mastodon\s+@second")).check()
    await page.get_by_label("Text", exact=True).fill("For everyone")
    await page.get_by_text("Variant for @first on mastodon").click()
    await page.get_by_label("Text for @first").fill("Just for first")
    await expect(page.get_by_role("article", name="Preview on mastodon @first")).to_contain_text(
        "Just for first"
    )
    await expect(page.get_by_role("article", name="Preview on mastodon @second")).to_contain_text(
        "For everyone"
    )
    await expect(page.locator(f'#counters li[data-account-id="{first}"]')).to_contain_text(
        "14 / 500"
    )
    # The queue serves @first only: the API's refusal lands by the queue.
    await page.get_by_role("button", name="Add to queue").click()
    refusal = page.locator('.field-problem[data-for="queue_id"]')
    await expect(refusal).to_contain_text("this queue does not serve")
    await page.get_by_role("checkbox", name=re.compile(r"mastodon\s+@second")).uncheck()
    await page.get_by_role("button", name="Add to queue").click()
    await expect(page).to_have_url(re.compile(r"/posts/[0-9a-f-]{36}$"))
    post = (await served.client.get(f"/api/posts/{page.url.rsplit('/', 1)[1]}")).json()
    assert post["account_overrides"] == {first: {"text": "Just for first", "media_ids": None}}
    assert post["scheduled_at_local"][11:16] == "09:15"
    await expect(page.get_by_text("09:15")).to_be_visible()
    # Edit it, then cancel it from the composer (after confirming).
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Text for @first")).to_have_value("Just for first")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel post").click()
    await expect(page.locator(".badge")).to_have_text("cancelled")


def spring_forward(year: int) -> date:
    """Europe's clocks skip 02:00-03:00 on the last Sunday of March."""
    last = date(year, 3, 31)
    return last - timedelta(days=(last.weekday() - 6) % 7)


async def test_a_reschedule_into_a_dst_gap_is_refused_next_to_the_post(
    chromium: Browser, served: Served, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, served.workspace_id, "ed@example.com", Role.EDITOR)
    account = await mastodon_account(served, sandbox, "@dst")
    gap = spring_forward(datetime.now(ZoneInfo(ZONE)).year + 1)
    made = await served.client.post(
        "/api/posts",
        json={
            "text": "Before the clocks change",
            "targets": [account],
            "scheduled_at": f"{(gap - timedelta(days=1)).isoformat()}T02:30:00",
            "timezone": ZONE,
        },
    )
    assert made.status_code == 201, made.text
    post_id = made.json()["id"]
    page = await open_page(chromium, served)
    await sign_in(page, "ed@example.com")
    await page.goto(f"/calendar?view=week&date={gap.isoformat()}")
    post = page.locator(f'.cal-post[data-post-id="{post_id}"]')
    await expect(post).to_contain_text("02:30")
    # Dragged onto the Sunday: 02:30 does not exist there, and the API says so by the post.
    await post.drag_to(page.locator(f'.cal-day[data-day="{gap.isoformat()}"]'))
    await expect(post.get_by_role("alert")).to_contain_text("does not exist in Europe/Paris")
    after = (await served.client.get(f"/api/posts/{post_id}")).json()
    assert after["scheduled_at"] == made.json()["scheduled_at"], "nothing changed"
    # The Reschedule form says which instant it means: the later one, 03:30 summer time.
    await post.get_by_text("Reschedule").click()
    await post.get_by_label(re.compile("^New time")).fill(f"{gap.isoformat()}T02:30")
    await post.get_by_label("If the clocks change then").select_option("later")
    async with page.expect_navigation():
        await post.get_by_role("button", name="Move").click()
    moved = (await served.client.get(f"/api/posts/{post_id}")).json()
    assert moved["scheduled_at_local"].startswith(f"{gap.isoformat()}T03:30")


async def test_retry_a_failed_delivery_and_settle_an_unknown_one_from_the_post_page(
    chromium: Browser, served: Served, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, served.workspace_id, "ed@example.com", Role.EDITOR)
    first = await mastodon_account(served, sandbox, "@one")
    second = await mastodon_account(served, sandbox, "@two")
    made = await served.client.post(
        "/api/posts",
        json={
            "text": "Went wrong",
            "targets": [first, second],
            "scheduled_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        },
    )
    post_id = made.json()["id"]
    # What a pass would have left: one refused, one sent without an answer.
    async with sqlite_db.transaction() as session:
        for account, status, error in (
            (first, "failed", "refused: bad token"),
            (second, "unknown", None),
        ):
            await session.execute(
                update(Delivery)
                .where(Delivery.post_id == post_id, Delivery.account_id == account)
                .values(status=status, attempts=1, last_error=error)
            )
    page = await open_page(chromium, served)
    await sign_in(page, "ed@example.com")
    await page.goto(f"/posts/{post_id}")
    failed = page.locator("tr.delivery", has_text="@one")
    unknown = page.locator("tr.delivery", has_text="@two")
    await expect(failed).to_contain_text("refused: bad token")
    async with page.expect_navigation():
        await failed.get_by_role("button", name="Retry").click()
    await expect(failed.locator(".delivery-status")).to_contain_text("scheduled")
    await unknown.locator("summary", has_text="Settle").click()
    await unknown.get_by_label("It was").select_option("published")
    await unknown.get_by_role("button", name="Settle").click()
    # Published needs the platform's id: the API's 422 shows in the row, nothing changes.
    await expect(unknown.get_by_role("alert")).to_contain_text("platform_post_id")
    await unknown.get_by_label(re.compile("^Its id on mastodon")).fill("109876")
    async with page.expect_navigation():
        await unknown.get_by_role("button", name="Settle").click()
    await expect(unknown.locator(".delivery-status")).to_have_text("published")
    await expect(page.locator(".timeline")).to_contain_text("resolved")
