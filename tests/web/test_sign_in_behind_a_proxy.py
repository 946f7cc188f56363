"""The per-address sign-in limit behind a reverse proxy, through the real server: with the
proxy in TRUSTED_PROXIES each client's X-Forwarded-For address is counted apart; without it
the header is ignored and everyone counts as the proxy."""

from __future__ import annotations

import httpx

from postpilot.core.roles import Role
from postpilot.store.database import Database
from tests.helpers import api_server
from tests.web.people import add_person, csrf_of


async def wrong_sign_in(url: str, forwarded_for: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        form = await client.get("/login")
        assert form.status_code == 200, (form.status_code, form.headers)
        token = csrf_of(form.text)
        answer = await client.post(
            "/login",
            data={"email": f"x{forwarded_for}@example.com", "password": "wrong-password-1",
                  "csrf_token": token},
            headers={"X-Forwarded-For": forwarded_for},
        )  # fmt: skip
        return answer.status_code


async def test_a_trusted_proxys_clients_are_limited_apart(sqlite_db: Database) -> None:
    async with api_server(sqlite_db, LOGIN_RATE_LIMIT_PER_IP=2, TRUSTED_PROXIES="127.0.0.1") as api:
        await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
        first = [await wrong_sign_in(api.url, "198.51.100.7") for _ in range(3)]
        assert first == [401, 401, 429]
        assert await wrong_sign_in(api.url, "198.51.100.8") == 401, "another client is not"


async def test_without_trust_the_header_is_ignored(sqlite_db: Database) -> None:
    async with api_server(sqlite_db, LOGIN_RATE_LIMIT_PER_IP=2) as api:
        await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
        answers = [await wrong_sign_in(api.url, f"198.51.100.{n}") for n in range(3)]
        assert answers == [401, 401, 429], "every address claimed is the one connection"
