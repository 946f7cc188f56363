"""Input safety at the API edge, on a real server: text the databases cannot store, sizes,
out-of-range times and numbers are refused with a 4xx in the error shape and change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Account, Post
from tests.helpers import ApiServer, api_server, mastodon_account


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def future(days: int = 2) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def refused(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


@pytest.fixture
async def api(any_db: Database, sandbox: SandboxClient) -> AsyncIterator[ApiServer]:
    async with api_server(any_db, sandbox) as server:
        yield server


async def test_unstorable_text_anywhere_is_refused_and_nothing_is_written(
    api: ApiServer, any_db: Database, sandbox: SandboxClient
) -> None:
    account_id = await mastodon_account(api, sandbox)
    post = {"text": "hi", "targets": [account_id], "scheduled_at": future()}
    bodies: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/posts", {**post, "text": "a\u0000b"}, "text"),
        ("POST", "/api/posts", {**post, "targets": ["\u0000"]}, "targets.0"),
        ("POST", "/api/posts", {**post, "timezone": "Europe/Paris\u0000"}, "timezone"),
        (
            "POST",
            "/api/posts",
            {**post, "media_urls": ["http://nonexistent.invalid/\u0000.png"]},
            "media_urls.0",
        ),
        ("POST", "/api/posts", {**post, "overrides": {"mastodon\u0000": "x"}}, "overrides"),
        ("POST", "/api/posts", {**post, "text": "\ud800"}, "text"),
        (
            "POST",
            "/api/accounts",
            {
                "platform": "mastodon",
                "handle": "@x",
                "base_url": sandbox.platform_url("mastodon"),
                "options": {"deep": [{"k": "v\u0000"}]},
                "credentials": {"access_token": "t"},
            },
            "options.deep.0.k",
        ),
        ("PATCH", f"/api/accounts/{account_id}", {"handle": "@\u0000"}, "handle"),
        ("PATCH", f"/api/accounts/{account_id}", {"credentials": {"a\u0000": "t"}}, "credentials"),
    ]
    for method, path, body, field in bodies:
        # Sent escaped (\\u0000, \\ud800) as a JSON client would.
        raw = json.dumps(body).encode()
        sent = await api.client.request(
            method, path, content=raw, headers={"content-type": "application/json"}
        )
        error = refused(sent)
        assert error["details"][0]["field"].startswith(field), (body, error)
        assert "\u0000" not in json.dumps(error, ensure_ascii=False)
    for path in (
        "/api/posts?platform=%00",
        "/api/posts?account_id=a%00",
        "/api/posts/%00",
        f"/api/posts/{account_id}%00/activity",
        "/api/accounts?platform=%00",
    ):
        error = refused(await api.client.get(path))
        assert "NUL" in error["message"], path
    actor = await api.client.put(
        "/api/scheduler", json={"active": "optimized", "actor": "eve\u0000"}, headers=api.cron()
    )
    assert "actor" in refused(actor)["message"]
    # JSON has no NaN: PostgreSQL's JSON refuses it, so it is refused here, as is deep nesting.
    for raw in (
        b'{"platform": "mastodon", "handle": "@n", "options": {"x": NaN}, "credentials": {}}',
        b'{"text": "x", "targets": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"text": "x", "targets": ["' + b"1" * 10 + b'"], "n": 1' + b"0" * 5000 + b"}",
    ):
        response = await api.client.post(
            "/api/posts", content=raw, headers={"content-type": "application/json"}
        )
        refused(response)
    assert await count(any_db, Post) == 0
    assert await count(any_db, Account) == 1
    stored = (await api.client.get(f"/api/accounts/{account_id}")).json()
    assert stored["handle"] == "@me"


async def test_numbers_times_and_zones_out_of_range_are_422(api: ApiServer) -> None:
    for query in (
        "offset=9223372036854775808",
        "limit=9223372036854775808",
        "scheduled_from=9999-12-31T23:59:59-14:00",
        "scheduled_to=0001-01-01T00:00:00%2B14:00",
        "scheduled_from=0.5",
        "platform=" + "x" * 51,
        "account_id=" + "x" * 101,
    ):
        refused(await api.client.get(f"/api/posts?{query}"))
    refused(await api.client.get("/api/accounts?platform=" + "x" * 51))
    refused(await api.client.get("/api/deliveries?limit=9223372036854775808"))
    base = {"text": "hi", "targets": ["x"]}
    for extra, words in (
        ({"timezone": "A" * 300}, "at most 64 characters"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"timezone": "America"}, "unknown time zone"),
        ({"scheduled_at": "9999-12-31T23:59:59-14:00"}, "out of range"),
        ({"scheduled_at": "0001-01-01T00:00:00+14:00"}, "out of range"),
        ({"scheduled_at": 1_900_000_000}, "ISO 8601"),
    ):
        error = refused(await api.client.post("/api/posts", json={**base, **extra}))
        assert words in error["message"], error
    token = {"platform": "mastodon", "handle": "@t", "credentials": {"access_token": "t"}}
    error = refused(
        await api.client.post(
            "/api/accounts", json={**token, "token_expires_at": "9999-12-31T23:59:59-14:00"}
        )
    )
    assert error["details"][0]["field"] == "token_expires_at"


async def test_a_local_time_that_overflows_once_zoned_is_422(
    api: ApiServer, sandbox: SandboxClient
) -> None:
    account_id = await mastodon_account(api, sandbox)
    error = refused(
        await api.client.post(
            "/api/posts",
            json={
                "text": "hi",
                "targets": [account_id],
                "scheduled_at": "9999-12-31T23:00:00",
                "timezone": "Pacific/Kiritimati",
            },
        )
    )
    assert "out of range" in error["message"]


async def test_bodies_and_objects_have_size_limits(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox, API_MAX_BODY_BYTES=64 * 1024) as api:
        account_id = await mastodon_account(api, sandbox)
        big = {"text": "x" * 70_000, "targets": [account_id]}
        error = refused(await api.client.post("/api/posts", json=big), 413)
        assert error["code"] == "body_too_large" and "65536 bytes" in error["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked encoding
            yield b'{"text": "'
            for _ in range(100):
                yield b"x" * 1024
            yield b'"}'

        chunked = await api.client.post(
            "/api/posts", content=chunks(), headers={"content-type": "application/json"}
        )
        refused(chunked, 413)
        assert chunked.request.headers["transfer-encoding"] == "chunked"

        options = {"platform": "mastodon", "handle": "@o", "credentials": {"access_token": "t"}}
        for extra, words in (
            ({"options": {"blob": "x" * 20_000}}, "at most 16384"),
            ({"credentials": {"access_token": "t" * 20_000}}, "at most 16384"),
            ({"options": {"a": [[[[[[[[[1]]]]]]]]]}}, "nested more than 8"),
            ({"handle": "h" * 201}, "handle"),
        ):
            error = refused(await api.client.post("/api/accounts", json={**options, **extra}))
            assert words in error["message"], error
        for extra in (
            {"media_urls": ["https://example.com/" + "a" * 3000]},
            {"targets": ["t" * 101]},
            {"overrides": {f"p{i}": "x" for i in range(21)}},
        ):
            refused(await api.client.post("/api/posts", json={"text": "x", **extra}))
        assert await count(sqlite_db, Account) == 1
        assert await count(sqlite_db, Post) == 0


def _last_sunday(year: int, month: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


async def test_dst_gap_and_overlap_need_a_choice_on_create_and_edit(
    api: ApiServer, sandbox: SandboxClient
) -> None:
    account_id = await mastodon_account(api, sandbox)
    year = datetime.now(UTC).year + 1
    gap = f"{_last_sunday(year, 3).isoformat()}T02:30:00"  # Paris: 02:00 -> 03:00
    overlap = f"{_last_sunday(year, 10).isoformat()}T02:30:00"  # Paris: 03:00 -> 02:00
    post = {"text": "hi", "targets": [account_id], "timezone": "Europe/Paris"}

    error = refused(await api.client.post("/api/posts", json={**post, "scheduled_at": gap}))
    assert error["code"] == "dst_choice_needed"
    assert "does not exist in Europe/Paris" in error["message"]
    choices = error["details"][0]["choices"]
    day = gap[:10]
    assert [(c["dst"], c["utc"]) for c in choices] == [
        ("earlier", f"{day}T00:30:00+00:00"),
        ("later", f"{day}T01:30:00+00:00"),
    ]
    assert choices[1]["local"] == f"{day}T03:30:00+02:00"

    created = await api.client.post(
        "/api/posts", json={**post, "scheduled_at": gap, "dst": "later"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["scheduled_at"].startswith(f"{day}T01:30:00")
    post_id = created.json()["id"]

    edit = await api.client.patch(f"/api/posts/{post_id}", json={"scheduled_at": overlap})
    error = refused(edit)
    assert "happens twice in Europe/Paris" in error["message"]
    assert [c["dst"] for c in error["details"][0]["choices"]] == ["earlier", "later"]
    edited = await api.client.patch(
        f"/api/posts/{post_id}", json={"scheduled_at": overlap, "dst": "earlier"}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["scheduled_at"].startswith(f"{overlap[:10]}T00:30:00")
    assert edited.json()["scheduled_at_local"].startswith(f"{overlap}+02:00")
    # An explicit offset needs no choice.
    explicit = await api.client.patch(
        f"/api/posts/{post_id}", json={"scheduled_at": f"{overlap}+01:00"}
    )
    assert explicit.status_code == 200, explicit.text
    assert explicit.json()["scheduled_at"].startswith(f"{overlap[:10]}T01:30:00")


async def test_body_numbers_are_numbers_and_knob_text_is_bounded(api: ApiServer) -> None:
    # JSON `true` or "5" is not a count: taken as 1 or 5 it would change a knob by accident.
    for body in (
        {"concurrency": True},
        {"batch_size": "5"},
        {"interval": True},
        {"interval": "1" * 5000 + "s"},
    ):
        error = refused(await api.client.put("/api/scheduler", json=body, headers=api.cron()))
        assert len(error["message"]) < 1000, body
    refused(await api.client.post("/api/cron/scheduler", json={"limit": True}, headers=api.cron()))
    current = (await api.client.get("/api/scheduler", headers=api.cron())).json()
    assert current["concurrency"] is None and current["batch_size"] is None
