"""The accounts page, the attention queue and the performance dashboard through the real server
and the sandbox process: first as forms over HTTP (refusals, roles, workspaces apart), then in
Debian's chromium (marker `browser`): connect through the sandbox's consent page, settle an
unknown delivery, charts drawn from real passes, switch and roll back with confirmation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from postpilot.core.roles import Role
from postpilot.sandbox.client import SandboxClient
from postpilot.store import posts
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery, SchedulerChange
from tests.factories import cipher
from tests.helpers import ApiServer, api_server, new_workspace
from tests.web.people import add_person, csrf_of, sign_in

X_APP = {"CONNECT_X_CLIENT_ID": "my-x-app", "CONNECT_X_CLIENT_SECRET": "s3cret-value"}
CALLBACK = "http://127.0.0.1:8000/api/connect/callback"  # PUBLIC_BASE_URL's default


@pytest.fixture
async def api(sqlite_db: Database, sandbox: SandboxClient) -> AsyncIterator[ApiServer]:
    async with api_server(sqlite_db, sandbox, **X_APP) as server:
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

    started = await post_form(admin, "/accounts", "/accounts/connect/x")
    assert started.status_code == 303
    back = await consent_at_sandbox(started.headers["location"])
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
    assert len(counts) == 6 and all(n >= 2 for n in counts), counts
    assert 'class="pt pt-reference"' in live.text and 'class="pt pt-optimized"' in live.text

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
    page = await admin.get("/dashboard")
    assert "user:ad@example.com" in page.text


async def run_passes(api: ApiServer, db: Database, account: Account) -> None:
    """Passes of both schedulers, each publishing to the sandbox, in two minutes' buckets."""
    for minute, path in enumerate(("scheduler", "scheduler-optimized") * 2):
        now = datetime.now(UTC)
        async with db.transaction() as session:
            await posts.create_post(
                session,
                workspace_id=account.workspace_id,
                text_=f"pass {minute}",
                media_urls=[],
                overrides={},
                scheduled_at=now,
                timezone="UTC",
                accounts=[account],
                now=now,
            )
        ran = await api.client.post(f"/api/cron/{path}", headers=api.cron(), json={"limit": 10})
        assert ran.status_code == 200, ran.text
