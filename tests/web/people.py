"""Test helpers for the web app: people made in the store, and an httpx client that signs in
through the real forms (reading each page's CSRF token as a browser would)."""

from __future__ import annotations

import re

import httpx

from postpilot import passwords
from postpilot.core.roles import Role
from postpilot.store import users
from postpilot.store.database import Database
from postpilot.store.tables import utcnow
from tests.helpers import ApiServer

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_HEADER_TOKEN = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


async def add_person(
    db: Database, workspace_id: str, email: str, role: Role, password: str = PASSWORD
) -> str:
    """A user with `role` in the workspace; returns the user's id."""
    async with db.transaction() as session:
        user = await users.user_by_email(session, email)
        if user is None:
            user = await users.create_user(
                session, email=email, password_hash=passwords.hash_password(password), now=utcnow()
            )
        await users.add_membership(
            session, user=user, workspace_id=workspace_id, role=role, actor="test", now=utcnow()
        )
        return user.id


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html) or _HEADER_TOKEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def browser(api: ApiServer) -> httpx.AsyncClient:
    """A client without an API key, keeping cookies like a browser; closed with the server."""
    client = httpx.AsyncClient(base_url=api.url, timeout=30, headers={"Accept": "text/html"})
    api.closing.push_async_callback(client.aclose)
    return client


async def sign_in(api: ApiServer, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
    client = await browser(api)
    form = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text
    return client


async def page_token(client: httpx.AsyncClient, path: str = "/settings") -> str:
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)
