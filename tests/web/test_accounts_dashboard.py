"""The accounts page, the attention queue and the performance dashboard through the real server
and the sandbox process: first as forms over HTTP (refusals, roles, workspaces apart), then in
Debian's chromium (marker `browser`): connect through the sandbox's consent page, settle an
unknown delivery, charts drawn from real passes, switch and roll back with confirmation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect
from sqlalchemy import select, update

from postpilot.core.roles import Role
from postpilot.monitor import store as monitor_store
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler import control
from postpilot.store import posts
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery, SchedulerChange
from postpilot.web import charts, dashboard
from tests.clock import Clock
from tests.factories import cipher
from tests.helpers import ApiServer, api_server, new_workspace
from tests.web.conftest import screenshot_path
from tests.web.people import PASSWORD, add_person, csrf_of, sign_in

X_APP = {"CONNECT_X_CLIENT_ID": "my-x-app", "CONNECT_X_CLIENT_SECRET": "s3cret-value"}
CALLBACK = "http://127.0.0.1:8000/api/connect/callback"  # PUBLIC_BASE_URL's default


@pytest.fixture
async def api(sqlite_db: Database, sandbox: SandboxClient) -> AsyncIterator[ApiServer]:
    # No alert evaluation on a timer: the alerts a test opens stay as it left them.
    async with api_server(sqlite_db, sandbox, ALERT_EVALUATE_SECONDS=0, **X_APP) as server:
        yield server


async def add_account(
    db: Database, sandbox: SandboxClient, workspace_id: str, handle: str = "@alice_of_a"
) -> Account:
    """A mastodon account of the sandbox in the workspace, as connecting would leave it."""
    async with db.transaction() as session:
        account = Account(
            workspace_id=workspace_id,
            platform="mastodon",
            handle=handle,
            base_url=sandbox.platform_url("mastodon"),
            options={},
            credentials=cipher.encrypt({"access_token": "token-0"}),
        )
        session.add(account)
    return account


async def unknown_delivery(db: Database, workspace_id: str, account: Account) -> Delivery:
    """A post whose send may have gone out: what a timeout after the platform's commit leaves
    on a platform that cannot be read back."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        post = await posts.create_post(
            session,
            workspace_id=workspace_id,
            text_="sent or not?",
            media_urls=[],
            overrides={},
            scheduled_at=now - timedelta(minutes=5),
            timezone="UTC",
            accounts=[account],
            now=now,
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == post.id)
            .values(status="unknown", attempts=1, last_error="timed out after sending")
        )
    async with db.session() as session:
        return (await session.scalars(select(Delivery))).one()


async def post_form(client: httpx.AsyncClient, page: str, path: str, **data: str) -> httpx.Response:
    """Post a form of `page` (its CSRF token read from the page, as a browser sends it)."""
    shown = await client.get(page)
    return await client.post(path, data={"csrf_token": csrf_of(shown.text), **data})


async def consent_at_sandbox(authorize_url: str) -> str:
    """The sandbox's consent page, Allow clicked; the callback URL it sends the browser to."""
    async with httpx.AsyncClient(timeout=10) as person:
        shown = await person.get(authorize_url)
        assert shown.status_code == 200, shown.text  # connect_consent "ask": a page
        token = re.search(r'name="consent" value="([^"]+)"', shown.text)
        action = re.search(r'action="([^"]+)"', shown.text)
        assert token and action
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
        answer = await person.post(
            origin + action.group(1), data={"consent": token.group(1), "decision": "approve"}
        )
        assert answer.status_code == 302
        return answer.headers["location"]


async def test_an_admin_connects_through_the_consent_page_checks_and_disconnects(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    admin = await sign_in(api, "ad@example.com")
    shown = await admin.get("/accounts")
    assert shown.status_code == 200
    assert 'action="/accounts/connect/x"' in shown.text
    assert 'type="password"' in shown.text  # the direct platforms' secret inputs

    # Without scripts, a link to the consent page (the pages' CSP keeps forms on this site).
    linked = await post_form(admin, "/accounts", "/accounts/connect/x")
    assert linked.status_code == 200 and "Continue to x" in linked.text
    form = await admin.get("/accounts")
    started = await admin.post(
        "/accounts/connect/x",
        data={"csrf_token": csrf_of(form.text)},
        headers={"HX-Request": "true"},
    )
    assert started.status_code == 204
    back = await consent_at_sandbox(started.headers["hx-redirect"])
    assert back.startswith(CALLBACK)
    landed = await api.client_for(None).get(api.url + back.removeprefix("http://127.0.0.1:8000"))
    assert landed.status_code == 303
    success = urlsplit(landed.headers["location"])
    assert success.path == "/accounts" and "account_id=" in success.query

    listed = await admin.get(f"/accounts?{success.query}")
    assert "Connected 1 account" in listed.text
    async with sqlite_db.session() as session:
        account = (await session.scalars(select(Account))).one()
    assert account.token_expires_at is not None
    assert account.token_expires_at.strftime("%Y-%m-%d %H:%M UTC") in listed.text

    checked = await post_form(admin, "/accounts", f"/accounts/{account.id}/check")
    assert checked.status_code == 200 and "x says this is" in checked.text

    confirm = await admin.get(f"/accounts/{account.id}/disconnect")
    assert "Yes, disconnect" in confirm.text
    gone = await post_form(admin, confirm.url.path, f"/accounts/{account.id}/disconnect")
    assert gone.status_code == 200 and "was disconnected" in gone.text
    async with sqlite_db.session() as session:
        assert (await session.get(Account, account.id)).deleted_at is not None  # type: ignore[union-attr]


async def test_refusals_change_nothing(
    api: ApiServer, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    account = await add_account(sqlite_db, sandbox, api.workspace_id)
    viewer = await sign_in(api, "vi@example.com")
    page = await viewer.get("/accounts")
    assert "@alice_of_a" in page.text and "Connecting needs the admin role" in page.text
    for path in (f"/accounts/{account.id}/disconnect", "/accounts/connect/x"):
        refused = await post_form(viewer, "/accounts", path)
        assert refused.status_code == 403
    refused = await post_form(viewer, "/dashboard", "/dashboard/scheduler", action="switch")
    assert refused.status_code == 403

    admin = await sign_in(api, "ad@example.com")
    # A direct platform without its inputs: the service's words, nothing connected.
    missing = await post_form(admin, "/accounts", "/accounts/connect/bluesky")
    assert missing.status_code == 422 and 'role="alert"' in missing.text
    unknown = await post_form(admin, "/accounts", "/accounts/connect/myspace")
    assert unknown.status_code == 422 and "cannot be connected" in unknown.text
    bad_knob = await post_form(
        admin, "/dashboard", "/dashboard/scheduler", action="tune", concurrency="0", confirm="yes"
    )
    assert bad_knob.status_code == 422 and "Concurrency must be between" in bad_knob.text
    for form in (
        {"action": "tune", "concurrency": "many"},
        {"action": "tune", "interval_seconds": "soon"},
        {"action": "switch", "active": "fastest"},
        {"action": "switch", "active": "optimized"},  # already the active one
        {"action": "rollback"},  # nothing to roll back yet
        {"action": "explode"},
    ):
        refused = await post_form(admin, "/dashboard", "/dashboard/scheduler", **form)
        assert refused.status_code == 422 and 'role="alert"' in refused.text, form
    no_token = await admin.post("/dashboard/scheduler", data={"action": "switch"})
    assert no_token.status_code == 403
    async with sqlite_db.session() as session:
        assert (await session.scalars(select(SchedulerChange))).all() == []
        assert len((await session.scalars(select(Account))).all()) == 1


async def test_the_attention_queue_settles_an_unknown_delivery(
    api: ApiServer, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    account = await add_account(sqlite_db, sandbox, api.workspace_id)
    delivery = await unknown_delivery(sqlite_db, api.workspace_id, account)
    editor = await sign_in(api, "ed@example.com")
    assert ">1<" in (await editor.get("/attention/count")).text
    queue = await editor.get("/attention")
    assert "Sent or not?" in queue.text and delivery.id in queue.text

    path = f"/attention/deliveries/{delivery.id}/settle"
    bad = await post_form(editor, "/attention", path, outcome="published", link="not a link")
    assert bad.status_code == 422
    settled = await post_form(
        editor,
        "/attention",
        path,
        outcome="published",
        link="https://mastodon.example/@alice/111",
    )
    assert settled.status_code == 303
    async with sqlite_db.session() as session:
        found = await session.get(Delivery, delivery.id)
    assert found is not None and found.status == "published"
    assert found.platform_post_id == "111"
    assert (await editor.get("/attention/count")).text == ""
    again = await post_form(editor, "/attention", path, outcome="not_published")
    assert again.status_code == 409

    # The service's firing alerts are there too; an account's token alert is not (this
    # workspace's own accounts to reconnect are listed as such).
    async with sqlite_db.engine.begin() as conn:
        for rule, subject in (("error_rate", "reference"), ("token_refresh_failed", "acc-1")):
            await monitor_store.fire(
                conn,
                rule=rule,
                subject=subject,
                severity="critical",
                value=0.5,
                threshold=0.05,
                message=f"{rule} is too high",
                details={},
                now=datetime.now(UTC),
            )
    alerted = await editor.get("/attention")
    assert "Firing alerts (1)" in alerted.text and "error_rate is too high" in alerted.text
    assert "token_refresh_failed is too high" not in alerted.text
    assert ">1<" in (await editor.get("/attention/count")).text
    history = await editor.get("/dashboard")
    assert "error rate (reference)" in history.text and "acc-1" not in history.text

    # Another workspace sees none of it, and cannot settle it.
    other_id, _key = await new_workspace(sqlite_db, "other")
    await add_person(sqlite_db, other_id, "stranger@example.com", Role.OWNER)
    stranger = await sign_in(api, "stranger@example.com")
    assert "@alice_of_a" not in (await stranger.get("/attention")).text
    assert "@alice_of_a" not in (await stranger.get("/accounts")).text
    refused = await post_form(stranger, "/attention", path, outcome="retry")
    assert refused.status_code == 404


async def test_the_dashboard_charts_passes_and_records_the_user(
    api: ApiServer, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    account = await add_account(sqlite_db, sandbox, api.workspace_id)
    await run_passes(api, sqlite_db, account)
    admin = await sign_in(api, "ad@example.com")
    live = await admin.get("/dashboard/live?window=1h")
    counts = [int(n) for n in re.findall(r'data-points="(\d+)"', live.text)]
    assert len(counts) == 6 and all(n == 10 for n in counts), counts  # 5 passes of each
    assert 'class="pt pt-reference"' in live.text and 'class="pt pt-optimized"' in live.text
    # The long windows read the passes' rollups: each scheduler's five passes, 3 minutes
    # apart, fall in 2-3 buckets of 15 minutes, 1-2 of an hour.
    for window, fewest, most in (("24h", 4, 6), ("7d", 2, 4)):
        long = await admin.get(f"/dashboard/live?window={window}")
        counts = [int(n) for n in re.findall(r'data-points="(\d+)"', long.text)]
        assert len(counts) == 6 and all(fewest <= n <= most for n in counts), (window, counts)
        assert "Passes: reference 5, optimized 5" in long.text

    asked = await post_form(
        admin, "/dashboard", "/dashboard/scheduler", action="switch", active="reference"
    )
    assert asked.status_code == 200 and "Confirm" in asked.text
    async with sqlite_db.session() as session:
        assert (await session.scalars(select(SchedulerChange))).all() == []
    done = await admin.post(
        "/dashboard/scheduler",
        data={
            "csrf_token": csrf_of(asked.text),
            "action": "switch",
            "active": "reference",
            "confirm": "yes",
        },
    )
    assert done.status_code == 303
    rolled = await post_form(
        admin, "/dashboard", "/dashboard/scheduler", action="rollback", confirm="yes"
    )
    assert rolled.status_code == 303, re.findall(r"form-error.>([^<]*)", rolled.text)
    async with sqlite_db.session() as session:
        changes = (
            await session.scalars(select(SchedulerChange).order_by(SchedulerChange.id))
        ).all()
    assert [(c.actor, c.old_value, c.new_value) for c in changes] == [
        ("user:ad@example.com", "optimized", "reference"),
        ("user:ad@example.com", "reference", "optimized"),
    ]
    tuned = await post_form(
        admin,
        "/dashboard",
        "/dashboard/scheduler",
        action="tune",
        concurrency="8",
        batch_size="",
        interval_seconds="10m",
        confirm="yes",
    )
    assert tuned.status_code == 303
    async with sqlite_db.session() as session:
        rows = (await session.scalars(select(SchedulerChange).order_by(SchedulerChange.id))).all()
    assert [(c.actor, c.setting, c.new_value) for c in rows[2:]] == [
        ("user:ad@example.com", "concurrency", "8"),
        ("user:ad@example.com", "interval_seconds", "600.0"),
    ]
    page = await admin.get("/dashboard")
    assert "user:ad@example.com" in page.text
    assert "concurrency: 8 → default" in page.text  # what a roll back would do


async def one_pass(api: ApiServer, db: Database, account: Account, scheduler: str) -> None:
    """A post due now on the server's clock, and one pass of `scheduler` publishing it."""
    now = api.runtime.now()
    async with db.transaction() as session:
        await posts.create_post(
            session,
            workspace_id=account.workspace_id,
            text_=f"pass at {now.isoformat()}",
            media_urls=[],
            overrides={},
            scheduled_at=now - timedelta(seconds=1 + now.minute % 4),
            timezone="UTC",
            accounts=[account],
            now=now,
        )
    path = "scheduler" if scheduler == "reference" else "scheduler-optimized"
    ran = await api.client.post(f"/api/cron/{path}", headers=api.cron(), json={"limit": 10})
    assert ran.status_code == 200, ran.text


async def run_passes(api: ApiServer, db: Database, account: Account) -> Clock:
    """Passes of both schedulers over the last half hour, each publishing a post to the
    sandbox; the server's clock ends a minute after the last."""
    clock = Clock(datetime.now(UTC) - timedelta(minutes=30))
    api.runtime.clock = clock
    for scheduler in ("reference", "optimized") * 5:
        await one_pass(api, db, account, scheduler)
        clock.at += timedelta(minutes=3)
    clock.at += timedelta(minutes=1)
    return clock


# --- in the browser -------------------------------------------------------------------------


async def signed_in_page(browser: Browser, api: ApiServer, email: str) -> Page:
    """A browser context of its own, signed in through the form."""
    context = await browser.new_context(
        base_url=api.url, viewport=ViewportSize(width=1280, height=900)
    )
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).not_to_have_url(re.compile(r"/login$"))
    return page


@pytest.mark.browser
async def test_browser_connect_at_the_consent_page_then_disconnect(
    chromium: Browser, api: ApiServer, sqlite_db: Database
) -> None:
    # The platform sends the browser back to PUBLIC_BASE_URL: here, the test's server (its port
    # is known only once it serves).
    api.runtime.settings.PUBLIC_BASE_URL = api.url
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    page = await signed_in_page(chromium, api, "ad@example.com")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    await expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Connect x (consent page)").click()
    # The sandbox's consent page ("ask"): another site, the person clicks Allow there.
    await expect(page.get_by_role("button", name="Allow")).to_be_visible()
    await page.get_by_role("button", name="Allow").click()
    await expect(page.get_by_role("status").first).to_have_text("Connected 1 account.")
    row = page.locator("tr[data-account]")
    await expect(row).to_have_count(1)
    await expect(row.locator(".expiry")).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
    )
    await expect(row.locator(".state")).to_have_text("active")
    await page.screenshot(path=screenshot_path("accounts"), full_page=True)

    await row.get_by_role("link", name=re.compile("^Disconnect")).click()
    await page.get_by_role("button", name=re.compile("^Yes, disconnect")).click()
    await expect(page.get_by_role("status").first).to_contain_text("was disconnected")
    await expect(page.locator("tr[data-account]")).to_have_count(0)


@pytest.mark.browser
async def test_browser_attention_then_dashboard_switch_and_roll_back(
    chromium: Browser, api: ApiServer, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    account = await add_account(sqlite_db, sandbox, api.workspace_id)
    delivery = await unknown_delivery(sqlite_db, api.workspace_id, account)
    page = await signed_in_page(chromium, api, "ad@example.com")
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.locator(".count")).to_have_text("1")

    await nav.get_by_role("link", name=re.compile("^Attention")).click()
    item = page.locator(f'[data-delivery="{delivery.id}"]')
    await page.screenshot(path=screenshot_path("attention"), full_page=True)
    await item.get_by_label(re.compile("^Link to the post")).fill(
        "https://mastodon.example/@alice/111"
    )
    await item.get_by_role("button", name=re.compile("^Settle as published")).click()
    await expect(page.get_by_text("Nothing needs you right now.")).to_be_visible()
    await expect(page.locator(f'[data-delivery="{delivery.id}"]')).to_have_count(0)

    clock = await run_passes(api, sqlite_db, account)
    await nav.get_by_role("link", name="Dashboard").click()
    charts = page.locator("figure.chart svg")
    await expect(charts).to_have_count(6)
    processing = page.locator('svg[data-metric="processing_p95_ms"]')
    await expect(processing.locator("circle.pt-reference")).to_have_count(5)
    await expect(processing.locator("circle.pt-optimized")).to_have_count(5)
    await expect(processing.locator("polyline")).to_have_count(2)
    # While the page is open, passes run: the poll (every 5 s) draws them.
    for scheduler in ("reference", "optimized"):
        await one_pass(api, sqlite_db, account, scheduler)
        clock.at += timedelta(minutes=1)
    await expect(processing.locator("circle")).to_have_count(12, timeout=15_000)

    await page.get_by_label("Scheduler to run").select_option("reference")
    await page.get_by_role("button", name="Switch…").click()
    await expect(page.get_by_text("active scheduler → reference")).to_be_visible()
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator(".active-scheduler")).to_have_text("reference")
    await page.get_by_role("button", name="Roll back…").click()
    await expect(page.get_by_text("active_scheduler: reference → optimized")).to_be_visible()
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator(".active-scheduler")).to_have_text("optimized")
    actors = page.locator("table.changes td.actor")
    await expect(actors).to_have_text(["user:ad@example.com", "user:ad@example.com"])
    await page.screenshot(path=screenshot_path("dashboard"), full_page=True)
    await page.set_viewport_size(ViewportSize(width=390, height=844))  # a phone
    await expect(page.locator("figure.chart svg").first).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=screenshot_path("dashboard-phone"), full_page=True)

    viewer = await signed_in_page(chromium, api, "vi@example.com")
    await viewer.goto("/dashboard")
    await expect(viewer.locator("figure.chart svg")).to_have_count(6)
    await expect(viewer.get_by_role("button", name="Switch…")).to_have_count(0)
    await expect(viewer.get_by_text("needs the admin role")).to_be_visible()

    other_id, _key = await new_workspace(sqlite_db, "other")
    await add_person(sqlite_db, other_id, "stranger@example.com", Role.OWNER)
    stranger = await signed_in_page(chromium, api, "stranger@example.com")
    await stranger.goto("/accounts")
    await expect(stranger.locator("tr[data-account]")).to_have_count(0)
    await stranger.goto("/attention")
    await expect(stranger.get_by_text("Nothing needs you right now.")).to_be_visible()


async def follow_platform(api: ApiServer, authorize_url: str) -> httpx.Response:
    """The platform answers at once (connect_consent "approve") and sends the browser to our
    callback, whose answer (a redirect to the flow's success URL) is returned."""
    async with httpx.AsyncClient(timeout=10) as person:
        at_platform = await person.get(authorize_url)
    assert at_platform.status_code == 302, at_platform.text
    back = at_platform.headers["location"].removeprefix("http://127.0.0.1:8000")
    return await api.client_for(None).get(back)


async def hx_post(client: httpx.AsyncClient, page: str, path: str) -> httpx.Response:
    shown = await client.get(page)
    return await client.post(
        path, data={"csrf_token": csrf_of(shown.text)}, headers={"HX-Request": "true"}
    )


async def test_a_login_with_several_pages_asks_which_to_connect(
    api: ApiServer, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    sandbox.configure(connect_consent="approve")
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    admin = await sign_in(api, "ad@example.com")
    started = await hx_post(admin, "/accounts", "/accounts/connect/linkedin")
    landed = await follow_platform(api, started.headers["hx-redirect"])
    success = urlsplit(landed.headers["location"])
    assert "status=choosing" in success.query
    asked = await admin.get(f"/accounts?{success.query}", follow_redirects=True)
    choices = re.findall(r'name="platform_ids" value="([^"]+)"', asked.text)
    assert len(choices) == 2, asked.text
    organization = min(choices)  # urn:li:organization < urn:li:person
    path = urlsplit(str(asked.url)).path
    chosen = await post_form(admin, path, f"{path}/choose", platform_ids=organization)
    assert chosen.status_code == 303
    listed = await admin.get(chosen.headers["location"])
    assert "Connected 1 account" in listed.text
    async with sqlite_db.session() as session:
        (account,) = (await session.scalars(select(Account))).all()
    assert account.platform_id == organization


async def test_reconnect_then_retry_what_failed_on_the_old_token(
    api: ApiServer, sqlite_db: Database, sandbox: SandboxClient
) -> None:
    sandbox.configure(connect_consent="approve")
    await add_person(sqlite_db, api.workspace_id, "ad@example.com", Role.ADMIN)
    account = await add_account(sqlite_db, sandbox, api.workspace_id)
    sandbox.revoke("token-0")
    created = await api.client.post("/api/posts", json={"text": "hi", "targets": [account.id]})
    assert created.status_code == 201, created.text
    ran = await api.client.post("/api/cron/scheduler", headers=api.cron(), json={"limit": 10})
    assert ran.json()["failed"] == 1, ran.text
    admin = await sign_in(api, "ad@example.com")
    queue = await admin.get("/attention")
    assert "Accounts to reconnect (1)" in queue.text
    assert f'href="/accounts/{account.id}/reconnect"' in queue.text

    started = await hx_post(
        admin, f"/accounts/{account.id}/reconnect", f"/accounts/{account.id}/reconnect"
    )
    assert started.status_code == 204
    landed = await follow_platform(api, started.headers["hx-redirect"])
    back = await admin.get(landed.headers["location"].removeprefix("http://127.0.0.1:8000"))
    assert "1 delivery failed because the old token was refused" in back.text
    retried = await post_form(admin, "/accounts", f"/accounts/{account.id}/retry-failed")
    assert "Retried 1 failed delivery of " in retried.text
    async with sqlite_db.session() as session:
        (delivery,) = (await session.scalars(select(Delivery))).all()
    assert delivery.status == "scheduled"


# --- pure parts -----------------------------------------------------------------------------


def test_a_chart_scales_to_a_round_top_and_spans_buckets_without_a_pass() -> None:
    at = ["2026-12-01T10:00:00+00:00", "2026-12-01T10:01:00+00:00", "2026-12-01T10:02:00+00:00"]
    points: dict[str, list[dict[str, Any]]] = {
        "reference": [
            {"at": a, "cache_hit_rate": v} for a, v in zip(at, (0.5, None, 0.8), strict=True)
        ],
        "optimized": [{"at": a, "cache_hit_rate": None} for a in at],
    }
    drawn = charts.chart(charts.METRICS[2], points)
    reference, optimized = drawn.lines
    assert [p.value for p in reference.points] == [50.0, 80.0]  # a ratio drawn as a percentage
    assert [t.label for t in drawn.ticks] == ["0", "50.0", "100"]
    assert reference.path.count(",") == 2 and reference.latest == 80.0
    assert optimized.points == [] and optimized.path == "" and drawn.point_count == 2
    assert "optimized: 0 points, no passes" in drawn.summary
    assert (drawn.start_label, drawn.end_label) == ("10:00", "10:02")


def test_roll_back_undoes_the_latest_change_only() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def change(setting: str, old: str | None, new: str | None, at: datetime = now) -> Any:
        return control.ChangeRecord(at, "user:a@example.com", setting, old, new)

    tuned = [change("concurrency", None, "8"), change("interval_seconds", "30.0", None)]
    proposal = dashboard.rollback_of(
        [*tuned, change("active_scheduler", "optimized", "reference", now - timedelta(hours=1))]
    )
    assert proposal is not None
    assert proposal.values == {"concurrency": None, "interval_seconds": 30.0}
    # The same setting again is an earlier change, even within the same second.
    same_second = [
        change("active_scheduler", "reference", "optimized"),
        change("active_scheduler", "optimized", "reference"),
    ]
    again = dashboard.rollback_of(same_second)
    assert again is not None and again.values == {"active": "reference"}
    assert dashboard.rollback_of([]) is None
