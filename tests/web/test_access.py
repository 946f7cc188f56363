"""People and access through the real server (no browser): first run, sign-in and its rate
limit, CSRF refusals, roles on pages and on the API, workspaces kept apart, invitations used
once, the last owner kept."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from postpilot.core.roles import Role
from postpilot.store.database import Database
from postpilot.store.tables import Activity, Membership, User
from tests.helpers import ApiServer, api_server, new_workspace
from tests.web.people import PASSWORD, add_person, browser, csrf_of, page_token, sign_in


@pytest.fixture
async def api(sqlite_db: Database) -> AsyncIterator[ApiServer]:
    async with api_server(sqlite_db, LOGIN_RATE_LIMIT=3) as server:
        yield server


def error_of(answer: httpx.Response) -> dict[str, object]:
    body = answer.json()
    assert set(body["error"]) == {"code", "message", "details"}
    error: dict[str, object] = body["error"]
    return error


async def test_first_run_page_makes_the_owner_then_disappears(
    api: ApiServer, sqlite_db: Database
) -> None:
    client = await browser(api)
    assert (await client.get("/")).headers["location"] == "/setup"
    form = await client.get("/setup")
    answer = await client.post(
        "/setup",
        data={
            "workspace": "Acme",
            "email": "Owner@Example.com",
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
        },
    )
    assert answer.status_code == 200
    assert re.search(r'value="pp_[\w-]+"', answer.text), "the first API key is shown once"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert (await client.get("/")).headers["location"] == "/calendar"
    async with sqlite_db.session() as session:
        role = await session.scalar(select(Membership.role))
        email = await session.scalar(select(User.email))
    assert (role, email) == ("owner", "owner@example.com")
    # Once someone exists, the first-run page is gone for everyone.
    stranger = await browser(api)
    assert (await stranger.get("/setup")).headers["location"] == "/login"


async def test_first_run_refuses_a_short_password_and_changes_nothing(
    api: ApiServer, sqlite_db: Database
) -> None:
    client = await browser(api)
    form = await client.get("/setup")
    answer = await client.post(
        "/setup",
        data={
            "workspace": "A",
            "email": "o@example.com",
            "password": "short",
            "csrf_token": csrf_of(form.text),
        },
    )
    assert answer.status_code == 422
    assert "at least 10 characters" in answer.text
    async with sqlite_db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_sign_in_wrong_password_and_rate_limit(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await browser(api)
    token = csrf_of((await client.get("/login")).text)
    for _ in range(3):
        wrong = await client.post(
            "/login",
            data={"email": "ed@example.com", "password": "nope-nope-nope", "csrf_token": token},
        )
        assert wrong.status_code == 401
        assert "The email or password is wrong." in wrong.text
    # The limit counts failures per email: now even the right password waits.
    limited = await client.post(
        "/login", data={"email": "ed@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert limited.status_code == 429
    assert "Too many failed sign-ins" in limited.text
    # Another person is not locked out by someone else's failures.
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    assert (await sign_in(api, "vi@example.com")).cookies.get("pp_session")


async def test_unknown_email_is_refused_like_a_wrong_password(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await browser(api)
    token = csrf_of((await client.get("/login")).text)
    answer = await client.post(
        "/login", data={"email": "who@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 401
    assert "The email or password is wrong." in answer.text


async def test_forms_without_the_csrf_token_are_refused(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "own@example.com", Role.OWNER)
    anonymous = await browser(api)
    await anonymous.get("/login")
    refused = await anonymous.post(
        "/login", data={"email": "own@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "csrf_failed"
    client = await sign_in(api, "own@example.com")
    for data in ({"name": "sneaky"}, {"name": "sneaky", "csrf_token": "0" * 64}):
        answer = await client.post("/settings/keys", data=data)
        assert answer.status_code == 403
        assert error_of(answer)["code"] == "csrf_failed"
    # htmx acting for a person gets the refusal as a page it can show.
    page = await client.post("/settings/keys", data={"name": "x"}, headers={"HX-Request": "true"})
    assert page.status_code == 403 and "security token is missing" in page.text
    # The API, called with the session cookie, wants the token in X-CSRF-Token.
    no_header = await client.post("/api/keys", json={"name": "x"})
    assert no_header.status_code == 403 and error_of(no_header)["code"] == "csrf_failed"
    token = await page_token(client)
    made = await client.post("/api/keys", json={"name": "x"}, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    async with sqlite_db.session() as session:
        actors = set((await session.scalars(select(Activity.actor))).all())
    assert "user:own@example.com" in actors


async def test_a_viewer_reads_but_cannot_write(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "vi@example.com", Role.VIEWER)
    client = await sign_in(api, "vi@example.com")
    calendar = await client.get("/calendar")
    assert calendar.status_code == 200
    assert 'href="/compose"' not in calendar.text, "the navigation hides what the role cannot do"
    compose = await client.get("/compose")
    assert compose.status_code == 403 and "needs the editor role" in compose.text
    token = csrf_of(calendar.text)
    listed = await client.get("/api/posts")
    assert listed.status_code == 200
    post = await client.post("/api/posts", json={"text": "hi"}, headers={"X-CSRF-Token": token})
    assert post.status_code == 403
    assert error_of(post)["code"] == "forbidden"
    settings = await client.get("/settings")
    assert "Create invitation link" not in settings.text and "API keys" not in settings.text
    invite = await client.post(
        "/settings/invitations",
        data={"email": "x@example.com", "role": "viewer", "csrf_token": token},
    )
    assert invite.status_code == 403


async def test_an_editor_cannot_manage_keys_through_the_api(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await sign_in(api, "ed@example.com")
    token = await page_token(client, "/calendar")
    answer = await client.post("/api/keys", json={"name": "x"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 403
    assert "needs the admin role" in str(error_of(answer)["message"])


async def test_a_session_of_another_workspace_sees_nothing_of_this_one(
    api: ApiServer, sqlite_db: Database
) -> None:
    a_owner = await add_person(sqlite_db, api.workspace_id, "a@example.com", Role.OWNER)
    b_workspace, _ = await new_workspace(sqlite_db, "B")
    await add_person(sqlite_db, b_workspace, "b@example.com", Role.OWNER)
    account = await api.client.post(
        "/api/accounts",
        json={
            "platform": "mastodon",
            "handle": "@a",
            "base_url": "https://mastodon.example",
            "credentials": {"access_token": "t"},
            "verify": False,
        },
    )
    assert account.status_code == 201, account.text
    b = await sign_in(api, "b@example.com")
    assert (await b.get("/api/accounts")).json() == []
    assert (await b.get(f"/api/accounts/{account.json()['id']}")).status_code == 404
    token = await page_token(b)
    for path in (f"/settings/members/{a_owner}/remove", f"/settings/members/{a_owner}/role"):
        answer = await b.post(path, data={"csrf_token": token, "role": "viewer"})
        assert answer.status_code == 404
    settings = await b.get("/settings")
    assert "a@example.com" not in settings.text


async def test_invitation_link_works_once(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "own@example.com", Role.OWNER)
    owner = await sign_in(api, "own@example.com")
    token = await page_token(owner)
    made = await owner.post(
        "/settings/invitations",
        data={"email": "new@example.com", "role": "editor", "csrf_token": token},
    )
    assert made.status_code == 200
    link = re.search(r'id="invite-link" class="secret" readonly value="([^"]+)"', made.text)
    assert link
    path = "/invite/" + link.group(1).rsplit("/invite/", 1)[1]
    guest = await browser(api)
    form = await guest.get(path)
    assert form.status_code == 200 and "new@example.com" in form.text
    joined = await guest.post(path, data={"password": PASSWORD, "csrf_token": csrf_of(form.text)})
    assert joined.status_code == 303 and joined.headers["location"] == "/calendar"
    assert '<span class="role">editor</span>' in (await guest.get("/calendar")).text
    again = await browser(api)
    assert (await again.get(path)).status_code == 404
    reused = await again.post(path, data={"password": PASSWORD, "csrf_token": csrf_of(form.text)})
    assert reused.status_code in (403, 404)


async def test_an_admin_cannot_make_owners_and_the_last_owner_stays(
    api: ApiServer, sqlite_db: Database
) -> None:
    owner_id = await add_person(sqlite_db, api.workspace_id, "own@example.com", Role.OWNER)
    await add_person(sqlite_db, api.workspace_id, "adm@example.com", Role.ADMIN)
    admin = await sign_in(api, "adm@example.com")
    token = await page_token(admin)
    promote = await admin.post(
        "/settings/invitations",
        data={"email": "x@example.com", "role": "owner", "csrf_token": token},
    )
    assert promote.status_code == 403
    demote = await admin.post(
        f"/settings/members/{owner_id}/role", data={"role": "viewer", "csrf_token": token}
    )
    assert demote.status_code == 403
    owner = await sign_in(api, "own@example.com")
    token = await page_token(owner)
    last = await owner.post(f"/settings/members/{owner_id}/remove", data={"csrf_token": token})
    assert last.status_code == 409 and "last owner" in last.text
    async with sqlite_db.session() as session:
        assert (
            await session.scalar(select(Membership.role).where(Membership.user_id == owner_id))
            == "owner"
        )


async def test_keys_created_shown_once_and_revoked_from_the_page(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "adm@example.com", Role.ADMIN)
    admin = await sign_in(api, "adm@example.com")
    token = await page_token(admin)
    made = await admin.post("/settings/keys", data={"name": "ci", "csrf_token": token})
    secret = re.search(r'id="new-key" class="secret" readonly value="(pp_[^"]+)"', made.text)
    assert secret
    assert secret.group(1) not in (await admin.get("/settings")).text
    works = api.client_for(secret.group(1))
    keys = (await works.get("/api/keys")).json()
    ci = next(k for k in keys if k["name"] == "ci")
    revoked = await admin.post(f"/settings/keys/{ci['id']}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert (await works.get("/api/keys")).status_code == 401
    other = await admin.post("/settings/keys/not-a-key/revoke", data={"csrf_token": token})
    assert other.status_code == 404


async def test_sign_out_ends_the_session(api: ApiServer, sqlite_db: Database) -> None:
    await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
    client = await sign_in(api, "ed@example.com")
    cookie = client.cookies.get("pp_session")
    token = await page_token(client, "/calendar")
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    stale = await browser(api)
    stale.cookies.set("pp_session", str(cookie))
    assert (await stale.get("/calendar")).headers["location"] == "/login"
    assert (
        await stale.get("/api/posts", headers={"Accept": "application/json"})
    ).status_code == 401


async def test_switching_workspace_changes_what_the_session_sees(
    api: ApiServer, sqlite_db: Database
) -> None:
    await add_person(sqlite_db, api.workspace_id, "ann@example.com", Role.OWNER)
    b_workspace, _ = await new_workspace(sqlite_db, "B")
    c_workspace, _ = await new_workspace(sqlite_db, "C")
    await add_person(sqlite_db, b_workspace, "ann@example.com", Role.VIEWER)
    client = await sign_in(api, "ann@example.com")
    page = await client.get("/settings")
    assert 'id="workspace-choice"' in page.text and "Create API key" in page.text
    token = csrf_of(page.text)
    moved = await client.post("/workspace", data={"workspace_id": b_workspace, "csrf_token": token})
    assert moved.status_code == 303
    there = await client.get("/settings")
    assert "Settings · B" in there.text and "Create API key" not in there.text
    refused = await client.post(
        "/workspace", data={"workspace_id": c_workspace, "csrf_token": token}
    )
    assert refused.status_code == 404
    assert "Settings · B" in (await client.get("/settings")).text
