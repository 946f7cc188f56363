"""The web app in a real browser: first run, signing in (wrong password, rate limit), CSRF,
roles, workspaces kept apart, invitations, and /docs and /redoc offline."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, ViewportSize, expect

from postpilot.core.roles import Role
from postpilot.store.database import Database
from tests.helpers import new_workspace
from tests.web.conftest import Served, screenshot_path
from tests.web.people import PASSWORD, add_person

pytestmark = [pytest.mark.browser, pytest.mark.acceptance]


async def open_page(browser: Browser, server: Served, *, phone: bool = False) -> Page:
    viewport = (
        ViewportSize(width=390, height=844) if phone else ViewportSize(width=1280, height=800)
    )
    context = await browser.new_context(base_url=server.url, viewport=viewport)
    return await context.new_page()


async def sign_in(page: Page, email: str, password: str = PASSWORD, *, ok: bool = True) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    if ok:
        await expect(page.get_by_role("heading", name="Calendar")).to_be_visible()


async def test_first_run_creates_the_owner(chromium: Browser, server: Served) -> None:
    page = await open_page(chromium, server)
    # A refused script or style (the pages' Content-Security-Policy) is a console error.
    errors: list[str] = []

    def keep_errors(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep_errors)
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/setup$"))
    await page.get_by_label("Workspace name").fill("Acme")
    await page.get_by_label("Your email").fill("owner@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create workspace and owner").click()
    await expect(page.get_by_label("API key")).to_have_value(re.compile(r"^pp_"))
    await page.get_by_role("link", name="Continue").click()
    await expect(page.get_by_role("heading", name="Calendar")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Calendar", "Compose", "Attention", "Accounts", "Dashboard", "Settings"):
        await expect(nav.get_by_role("link", name=label)).to_be_visible()
    await page.screenshot(path=screenshot_path("calendar-placeholder"), full_page=True)
    assert await page.evaluate("typeof htmx") == "object"
    assert errors == []


async def test_sign_in_wrong_password_and_rate_limit(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "ed@example.com", Role.EDITOR)
    page = await open_page(chromium, server)
    for _ in range(3):
        await sign_in(page, "ed@example.com", "not the password", ok=False)
        await expect(page.get_by_role("alert")).to_have_text("The email or password is wrong.")
    await page.screenshot(path=screenshot_path("sign-in-refused"))
    await sign_in(page, "ed@example.com", ok=False)
    await expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    await add_person(sqlite_db, server.workspace_id, "vi@example.com", Role.VIEWER)
    other = await open_page(chromium, server)
    await sign_in(other, "vi@example.com")


async def test_a_form_post_without_the_token_is_refused(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "own@example.com", Role.OWNER)
    page = await open_page(chromium, server)
    await sign_in(page, "own@example.com")
    # The browser's own cookies, without the page's token: what a forged form would send.
    answer = await page.request.post("/settings/keys", form={"name": "forged"})
    assert answer.status == 403
    assert (await answer.json())["error"]["code"] == "csrf_failed"
    await page.goto("/settings")
    await expect(page.get_by_role("cell", name="forged")).to_have_count(0)


async def test_a_viewer_cannot_reach_an_editor_action(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "vi@example.com", Role.VIEWER)
    page = await open_page(chromium, server)
    await sign_in(page, "vi@example.com")
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Calendar")).to_be_visible()
    await expect(nav.get_by_role("link", name="Compose")).to_have_count(0)
    await page.goto("/compose")
    await expect(page.get_by_role("alert")).to_contain_text("needs the editor role")
    status = await page.evaluate(
        """async () => {
            const token = JSON.parse(document.querySelector('[hx-headers]')
                .getAttribute('hx-headers'))['X-CSRF-Token'];
            const answer = await fetch('/api/posts', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                body: JSON.stringify({text: 'hello'})});
            return [answer.status, (await answer.json()).error.code];
        }"""
    )
    assert status == [403, "forbidden"]


async def test_a_session_of_workspace_b_sees_nothing_of_workspace_a(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "a@example.com", Role.OWNER)
    b_workspace, _ = await new_workspace(sqlite_db, "B")
    await add_person(sqlite_db, b_workspace, "b@example.com", Role.OWNER)
    made = await server.client.post(
        "/api/accounts",
        json={
            "platform": "mastodon",
            "handle": "@a",
            "base_url": "https://mastodon.example",
            "credentials": {"access_token": "t"},
            "verify": False,
        },
    )
    account_id = made.json()["id"]
    page = await open_page(chromium, server)
    await sign_in(page, "b@example.com")
    await page.goto("/settings")
    await expect(page.get_by_role("heading", name="Settings · B")).to_be_visible()
    await expect(page.get_by_text("a@example.com")).to_have_count(0)
    listed = await page.request.get("/api/accounts")
    assert await listed.json() == []
    one = await page.request.get(f"/api/accounts/{account_id}")
    assert one.status == 404


async def test_an_invitation_link_works_once(
    chromium: Browser, server: Served, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, server.workspace_id, "own@example.com", Role.OWNER)
    owner = await open_page(chromium, server)
    await sign_in(owner, "own@example.com")
    await owner.goto("/settings")
    await owner.get_by_label("Invite by email").fill("new@example.com")
    await owner.get_by_label("Role", exact=True).select_option("editor")
    await owner.get_by_role("button", name="Create invitation link").click()
    link = await owner.get_by_label("Invitation link").input_value()
    path = urlsplit(link).path
    await owner.screenshot(path=screenshot_path("settings"), full_page=True)

    guest = await open_page(chromium, server, phone=True)
    await guest.goto(path)
    await expect(guest.get_by_text("new@example.com")).to_be_visible()
    await guest.get_by_label("Choose a password").fill(PASSWORD)
    await guest.get_by_role("button", name="Create my account and join").click()
    await expect(guest.get_by_role("heading", name="Calendar")).to_be_visible()
    await expect(guest.locator(".role")).to_have_text("editor")
    await guest.goto("/settings")
    await guest.screenshot(path=screenshot_path("settings-phone"), full_page=True)

    again = await open_page(chromium, server)
    await again.goto(path)
    await expect(again.get_by_role("heading", name="Invitation not valid")).to_be_visible()


async def offline(page: Page) -> list[str]:
    """Abort every request that leaves the server: what a machine without internet sees."""
    left: list[str] = []

    async def only_local(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            left.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_local)
    return left


async def test_docs_and_redoc_render_offline(chromium: Browser, server: Served) -> None:
    page = await open_page(chromium, server)
    left = await offline(page)
    await page.goto("/docs")
    operations = page.locator(".opblock")
    await expect(operations.first).to_be_visible(timeout=30_000)
    # Swagger UI draws operations as they scroll into view, so count what the whole document
    # gave it instead: its last schema is drawn at the end of the page.
    models = page.locator(".models")
    await expect(models.get_by_text("WorkspaceActivity", exact=True)).to_be_attached()
    await expect(page.get_by_text("/api/posts").first).to_be_visible()
    await page.screenshot(path=screenshot_path("docs"))
    await page.goto("/redoc")
    await expect(page.get_by_role("heading", name=re.compile("postpilot"))).to_be_visible(
        timeout=30_000
    )
    assert left == []
