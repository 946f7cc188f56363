"""A user's own settings through the real server (no browser): the time zone and name saved
and used by the pages, a bad zone refused next to its field, the browser's zone adopted at a
first sign-in, the password changed (other sessions signed out), and the first-run page making
exactly one owner when two submissions arrive at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from postpilot import passwords
from postpilot.core.roles import Role
from postpilot.store.database import Database
from postpilot.store.tables import FirstRun, Membership, User
from tests.helpers import ApiServer, api_server, mastodon_account
from tests.web.people import PASSWORD, add_person, browser, csrf_of, page_token, sign_in
from tests.web.test_calendar_pages import next_month_day, schedule


@pytest.fixture
async def api(sqlite_db: Database) -> AsyncIterator[ApiServer]:
    async with api_server(sqlite_db, LOGIN_RATE_LIMIT=3) as server:
        yield server


async def user(db: Database, email: str) -> User:
    async with db.session() as session:
        found = await session.scalar(select(User).where(User.email == email))
    assert found is not None
    return found


async def test_a_bad_zone_is_refused_next_to_its_field_and_changes_nothing(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await sign_in(api, "ed@example.com")
    token = await page_token(client, "/me")
    bad = await client.post(
        "/me", data={"name": "Ed", "timezone": "Mars/Olympus", "csrf_token": token}
    )
    assert bad.status_code == 422
    assert 'id="me-timezone-error"' in bad.text
    assert "unknown time zone &#39;Mars/Olympus&#39;" in bad.text
    assert 'value="Mars/Olympus"' in bad.text, "what was typed stays in the field"
    unchanged = await user(sqlite_db, "ed@example.com")
    assert (unchanged.name, unchanged.timezone) == (None, None)


async def test_the_saved_zone_wins_over_the_browsers_on_every_page(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    account = await mastodon_account(api)
    at = next_month_day(20)  # 20:00 UTC: 05:00 the next day in Tokyo, 15:00 or 16:00 in NY
    post_id = await schedule(api, account, "evening in London", at)
    client = await sign_in(api, "ed@example.com")
    client.cookies.set("pp_tz", "UTC")  # the browser's zone
    token = await page_token(client, "/me")
    saved = await client.post(
        "/me", data={"name": " Ed Itor ", "timezone": "Asia/Tokyo", "csrf_token": token}
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/me?saved=1"
    found = await user(sqlite_db, "ed@example.com")
    assert (found.name, found.timezone) == ("Ed Itor", "Asia/Tokyo")
    month = (await client.get(f"/calendar?view=month&date={at.date().isoformat()}")).text
    assert 'data-zone="Asia/Tokyo"' in month
    assert ">Ed Itor</a>" in month, "the layout names the user"
    post_page = (await client.get(f"/posts/{post_id}")).text
    assert "05:00" in post_page and "Asia/Tokyo" in post_page
    composer = (await client.get("/compose")).text
    assert "<option selected>Asia/Tokyo</option>" in composer
    # Emptied: the browser's zone again.
    token = await page_token(client, "/me")
    await client.post("/me", data={"name": "", "timezone": "", "csrf_token": token})
    month = (await client.get(f"/calendar?view=month&date={at.date().isoformat()}")).text
    assert 'data-zone="UTC"' in month


async def test_a_first_sign_in_adopts_the_browsers_zone_once(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await browser(api)
    client.cookies.set("pp_tz", "America%2FNew_York")  # as api.js writes it
    form = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"email": "ed@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 303
    assert (await user(sqlite_db, "ed@example.com")).timezone == "America/New_York"
    # Later sign-ins from another zone keep the user's choice.
    other = await browser(api)
    other.cookies.set("pp_tz", "Asia/Tokyo")
    form = await other.get("/login")
    await other.post(
        "/login",
        data={"email": "ed@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert (await user(sqlite_db, "ed@example.com")).timezone == "America/New_York"


async def test_changing_the_password_signs_out_the_other_sessions(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    here = await sign_in(api, "ed@example.com")
    elsewhere = await sign_in(api, "ed@example.com")
    token = await page_token(here, "/me")
    wrong = await here.post(
        "/me/password",
        data={
            "current_password": "not-my-password",
            "new_password": "a new long one",
            "csrf_token": token,
        },
    )
    assert wrong.status_code == 422
    assert 'id="me-current-password-error"' in wrong.text
    short = await here.post(
        "/me/password",
        data={"current_password": PASSWORD, "new_password": "short", "csrf_token": token},
    )
    assert short.status_code == 422
    assert 'id="me-new-password-error"' in short.text and "at least 10 characters" in short.text
    assert passwords.verify((await user(sqlite_db, "ed@example.com")).password_hash, PASSWORD)
    changed = await here.post(
        "/me/password",
        data={"current_password": PASSWORD, "new_password": "a new long one", "csrf_token": token},
    )
    assert changed.status_code == 200
    assert "your 1 other session was signed out" in changed.text
    stored = (await user(sqlite_db, "ed@example.com")).password_hash
    assert stored.startswith("$argon2id$") and passwords.verify(stored, "a new long one")
    assert (await here.get("/me")).status_code == 200, "this session stays"
    assert (await elsewhere.get("/me")).headers["location"] == "/login"
    await sign_in(api, "ed@example.com", "a new long one")
    old = await browser(api)
    form = await old.get("/login")
    refused = await old.post(
        "/login",
        data={"email": "ed@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert refused.status_code == 401


async def test_wrong_current_passwords_count_toward_the_sign_in_limit(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await sign_in(api, "ed@example.com")
    token = await page_token(client, "/me")
    answers = [
        await client.post(
            "/me/password",
            data={"current_password": f"guess-{i}-guess", "new_password": "a new long one",
                  "csrf_token": token},
        )
        for i in range(4)
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [422, 422, 422, 429]
    assert "Too many wrong passwords" in answers[-1].text


async def test_two_first_run_submissions_at_once_make_one_owner(any_db: Database) -> None:
    db = any_db
    async with api_server(db) as api:
        clients = [await browser(api), await browser(api)]
        tokens = [csrf_of((await c.get("/setup")).text) for c in clients]

        async def submit(i: int) -> httpx.Response:
            return await clients[i].post(
                "/setup",
                data={
                    "workspace": f"W{i}",
                    "email": f"owner{i}@example.com",
                    "password": PASSWORD,
                    "csrf_token": tokens[i],
                },
            )

        answers = await asyncio.gather(submit(0), submit(1))
        assert sorted(a.status_code for a in answers) == [200, 303]
        assert [a.headers["location"] for a in answers if a.status_code == 303] == ["/login"]
        async with db.session() as session:
            owners = await session.scalar(
                select(func.count()).select_from(Membership).where(Membership.role == "owner")
            )
            people = await session.scalar(select(func.count()).select_from(User))
            guard = await session.scalar(select(func.count()).select_from(FirstRun))
        assert (owners, people, guard) == (1, 1, 1)
