"""API v1: every route under /api/v1, today's /api paths as deprecated aliases that answer as
before, and every v1 list as one page envelope walked with keyset cursors and filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from postpilot.api import pagination
from postpilot.core import roles
from postpilot.core.roles import Role
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity, ApiKey, Delivery, Post, WebhookSubscription
from tests.helpers import api_server, mastodon_account
from tests.web.people import add_person, page_token, sign_in

BASE = datetime(2030, 1, 1, 12, tzinfo=UTC)
COUNT = 120
PAGE = 50


@dataclass(frozen=True)
class Seeded:
    posts: list[str]
    deliveries: list[str]
    accounts: list[str]
    activity: list[int]
    keys: list[str]
    webhooks: list[str]


def tied(i: int) -> datetime:
    """Three rows per instant: the id must break the tie for the order to be stable."""
    return BASE + timedelta(seconds=i // 3)


def by_key(rows: list[Any]) -> list[str]:
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id))]


async def seed(db: Database, workspace_id: str) -> Seeded:
    """COUNT rows of each list, written through the store's tables in one transaction."""
    async with db.transaction() as session:
        accounts = [
            Account(
                workspace_id=workspace_id,
                platform="bluesky" if i < 40 else "mastodon",
                handle=f"@user{i}",
                credentials="sealed",
                status="needs_reconnect" if i % 10 == 0 else "active",
                created_at=tied(i),
            )
            for i in range(COUNT)
        ]
        posts = [
            Post(
                workspace_id=workspace_id,
                text=f"post {i}",
                scheduled_at=BASE + timedelta(hours=i),
                source="csv" if i % 4 == 0 else "api",
                created_at=tied(i),
            )
            for i in range(COUNT)
        ]
        keys = [
            ApiKey(
                workspace_id=workspace_id,
                name=f"key {i}",
                prefix=f"pp_{i:04d}",
                key_hash=f"{i:064x}",
                created_at=tied(i),
            )
            for i in range(COUNT)
        ]
        webhooks = [
            WebhookSubscription(
                workspace_id=workspace_id,
                url=f"https://hooks.example/{i}",
                events=["*"],
                secret="sealed",
                created_at=tied(i),
            )
            for i in range(COUNT)
        ]
        session.add_all([*accounts, *posts, *keys, *webhooks])
        await session.flush()
        deliveries = [
            Delivery(
                workspace_id=workspace_id,
                post_id=post.id,
                account_id=accounts[i % 3].id,
                platform=accounts[i % 3].platform,
                status="published" if i % 5 == 0 else "scheduled",
                scheduled_at=post.scheduled_at,
                due_at=post.scheduled_at,
                created_at=tied(i),
            )
            for i, post in enumerate(posts)
        ]
        session.add_all(deliveries)
        await session.flush()
        entries = [
            Activity(
                workspace_id=workspace_id,
                post_id=d.post_id,
                delivery_id=d.id,
                at=BASE + timedelta(minutes=i),
                event="published" if i % 5 == 0 else "scheduled",
                detail=f"entry {i}",
            )
            for i, d in enumerate(deliveries)
        ]
        session.add_all(entries)
        await session.flush()
        return Seeded(
            posts=by_key(posts),
            deliveries=by_key(deliveries),
            accounts=by_key(accounts),
            activity=[e.id for e in reversed(entries)],
            keys=by_key(keys),
            webhooks=list(reversed(by_key(webhooks))),
        )


async def walk(client: httpx.AsyncClient, path: str, limit: int = PAGE, **params: Any) -> list[Any]:
    """Every item of a v1 list, page by page; each page is the envelope and at most `limit`."""
    seen: list[Any] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        seen += [item["id"] if "id" in item else item["platform"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(seen) == len(set(seen)), "an item came twice"
            return seen
        assert len(page["items"]) == limit, "only the last page may be short"


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code
    return error


async def test_old_paths_answer_as_before_and_say_they_are_deprecated(
    sqlite_db: Database,
) -> None:
    async with api_server(sqlite_db) as api:
        account_id = await mastodon_account(api)
        accounts = await api.client.get("/api/accounts")
        assert [a["id"] for a in accounts.json()] == [account_id], "still a bare array"
        assert accounts.headers["Deprecation"] == "true"
        assert accounts.headers["Link"] == '</api/v1/accounts>; rel="successor-version"'
        deliveries = await api.client.get("/api/deliveries")
        assert deliveries.json() == [] and deliveries.headers["Deprecation"] == "true"
        posts = (await api.client.get("/api/posts")).json()
        assert posts == {"items": [], "total": 0, "limit": 50, "offset": 0}
        one = await api.client.get(f"/api/accounts/{account_id}")
        assert one.json()["id"] == account_id
        assert one.headers["Link"] == f'</api/v1/accounts/{account_id}>; rel="successor-version"'
        missing = await api.client.get("/api/accounts/nope")
        assert missing.status_code == 404 and missing.headers["Deprecation"] == "true"
        assert (await api.client.get("/api/health/live")).status_code == 200

        # The same resources under v1, not deprecated; the list is now the page envelope.
        current = await api.client.get("/api/v1/accounts")
        assert "Deprecation" not in current.headers
        assert current.json() == {"items": [one.json()], "next_cursor": None}
        assert (await api.client.get(f"/api/v1/accounts/{account_id}")).json() == one.json()

        # The callback URL operators register at the platforms stays, on both paths.
        for path in ("/api/connect/callback", "/api/v1/connect/callback"):
            callback = await api.client_for(None).get(path, params={"state": "made-up"})
            assert callback.status_code == 400 and "Deprecation" not in callback.headers

        document = (await api.client.get("/openapi.json")).json()["paths"]
        assert document["/api/accounts"]["get"]["deprecated"] is True
        assert not document["/api/v1/accounts"]["get"].get("deprecated")
        assert not document["/api/connect/callback"]["get"].get("deprecated")
        olds = [p for p in document if p.startswith("/api/") and not p.startswith("/api/v1/")]
        assert all(f"/api/v1/{p.removeprefix('/api/')}" in document for p in olds)


async def test_every_v1_list_pages_through_all_its_items_once(any_db: Database) -> None:
    async with api_server(any_db) as api:
        seeded = await seed(any_db, api.workspace_id)
        assert await walk(api.client, "/api/v1/posts") == seeded.posts
        assert await walk(api.client, "/api/v1/deliveries") == seeded.deliveries
        assert await walk(api.client, "/api/v1/accounts") == seeded.accounts
        assert await walk(api.client, "/api/v1/activity", kind="published") == [
            i for n, i in enumerate(seeded.activity) if (COUNT - 1 - n) % 5 == 0
        ]
        everything = await walk(api.client, "/api/v1/activity")
        assert everything[: len(seeded.activity)] == seeded.activity, "newest first"
        keys = await walk(api.client, "/api/v1/keys")
        assert keys[-COUNT:] == seeded.keys and len(keys) == COUNT + 1  # and the test's own
        assert await walk(api.client, "/api/v1/webhooks") == seeded.webhooks
        post_id = seeded.posts[7]
        assert len(await walk(api.client, f"/api/v1/posts/{post_id}/activity")) == 1
        platforms = await walk(api.client, "/api/v1/platforms", limit=4)
        assert platforms == sorted(platforms) and {"mastodon", "bluesky"} <= set(platforms)
        connectable = await walk(api.client, "/api/v1/connect", limit=5)
        assert connectable == sorted(connectable) and "mastodon" in connectable
        for path in ("/api/v1/media", f"/api/v1/webhooks/{seeded.webhooks[0]}/deliveries"):
            assert await walk(api.client, path) == []


async def test_a_cursor_survives_rows_added_while_paging(any_db: Database) -> None:
    async with api_server(any_db) as api:
        seeded = await seed(any_db, api.workspace_id)
        first = (await api.client.get("/api/v1/posts", params={"limit": PAGE})).json()
        async with any_db.transaction() as session:
            added = [
                Post(
                    workspace_id=api.workspace_id,
                    text="added",
                    scheduled_at=BASE,
                    created_at=BASE + timedelta(days=offset),
                )
                for offset in (-1, -1, 1, 1)
            ]
            session.add_all(added)
        rest = await walk(api.client, "/api/v1/posts", cursor=first["next_cursor"])
        seen = [p["id"] for p in first["items"]] + rest
        later = by_key([p for p in added if p.created_at > BASE])
        assert seen == seeded.posts + later, "no original twice or missing; newer at the end"


async def test_filters(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        seeded = await seed(sqlite_db, api.workspace_id)
        async with sqlite_db.session() as session:
            account_ids = list(
                (await session.execute(select(Delivery.account_id).distinct())).scalars()
            )
        client, one = api.client, account_ids[0]

        async def count(path: str, **params: Any) -> int:
            return len(await walk(client, path, **params))

        window = {
            "scheduled_from": "2030-01-01T13:00:00+01:00",
            "scheduled_to": "2030-01-01T22:00:00Z",
        }
        assert await count("/api/v1/posts", source="csv") == COUNT // 4
        assert await count("/api/v1/posts", status="published") == COUNT // 5
        assert await count("/api/v1/posts", status="scheduled", account_id=one) == 32
        assert await count("/api/v1/posts", **window) == 10  # 12:00Z to 21:00Z included
        assert await count("/api/v1/deliveries", **window) == 10
        assert await count("/api/v1/deliveries", account_id=one) == COUNT // 3
        assert await count("/api/v1/deliveries", post_id=seeded.posts[0]) == 1
        assert await count("/api/v1/deliveries", status="published", account_id=one) == 8
        assert await count("/api/v1/accounts", platform="bluesky") == 40
        assert await count("/api/v1/accounts", status="needs_reconnect") == COUNT // 10
        assert await count("/api/v1/activity", post_id=seeded.posts[3]) == 1
        assert await count("/api/v1/activity", account_id=one) == COUNT // 3
        hour = {"at_from": "2030-01-01T12:00:00Z", "at_to": "2030-01-01T13:00:00+00:00"}
        assert await count("/api/v1/activity", **hour, kind="scheduled") == 48


async def test_bad_cursors_and_filters_are_refused(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        await seed(sqlite_db, api.workspace_id)
        client = api.client
        cursor = (await client.get("/api/v1/posts", params={"limit": 2})).json()["next_cursor"]
        altered = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
        forged = pagination.encode("deliveries", ["2030-01-01T12:00:00+00:00", "x'; --"])
        for path, bad in (
            ("/api/v1/posts", "garbage"),
            ("/api/v1/posts", altered),
            ("/api/v1/deliveries", cursor),  # another list's cursor
            ("/api/v1/deliveries", forged),  # a well-formed one whose id is no id
            ("/api/v1/activity", cursor),
            ("/api/v1/platforms", cursor),
            ("/api/media", cursor),
        ):
            refused(await client.get(path, params={"cursor": bad}), 400, "invalid_cursor")
        for path, params in (
            ("/api/v1/posts", {"limit": 0}),
            ("/api/v1/posts", {"limit": 501}),
            ("/api/v1/posts", {"status": "lost"}),
            ("/api/v1/posts", {"scheduled_from": "2030-01-01T12:00:00"}),  # no offset
            ("/api/v1/posts", {"scheduled_from": "tomorrow"}),
            (
                "/api/v1/deliveries",
                {"scheduled_from": "2030-01-02T00:00:00Z", "scheduled_to": "2030-01-01T00:00:00Z"},
            ),
            ("/api/v1/deliveries", {"status": "gone"}),
            ("/api/v1/accounts", {"platform": "myspace"}),
            ("/api/v1/accounts", {"status": "asleep"}),
            ("/api/v1/activity", {"at_to": "1700000000"}),
        ):
            error = refused(await client.get(path, params=params), 422, "invalid_request")
            assert error["details"] and error["details"][0]["field"].startswith("query.")


async def test_an_editor_cannot_manage_keys_through_v1_either(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        await add_person(sqlite_db, api.workspace_id, "ed@example.com", Role.EDITOR)
        client = await sign_in(api, "ed@example.com")
        token = await page_token(client, "/calendar")
        for path in ("/api/keys", "/api/v1/keys"):
            answer = await client.post(path, json={"name": "x"}, headers={"X-CSRF-Token": token})
            assert "needs the admin role" in refused(answer, 403, "forbidden")["message"]
        assert (await client.get("/api/v1/keys")).status_code == 200, "reading needs no more"


def test_v1_writes_need_what_their_alias_needs() -> None:
    for method, path in (("POST", "/keys"), ("DELETE", "/accounts/a"), ("PUT", "/scheduler")):
        assert roles.api_permission(method, f"/api/v1{path}") == roles.api_permission(
            method, f"/api{path}"
        )
    assert roles.api_permission("POST", "/api/v1/keys") == roles.Permission.MANAGE_KEYS


async def test_queue_and_recurrence_lists_page_too(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        account_id = await mastodon_account(api)
        made = []
        for i in range(5):
            body = {
                "name": f"queue {i}",
                "timezone": "Europe/Paris",
                "slots": [{"day": 0, "time": "09:00"}],
                "accounts": [account_id],
            }
            created = await api.client.post("/api/v1/queues", json=body)
            assert created.status_code == 201, created.text
            made.append(created.json()["id"])
        assert await walk(api.client, "/api/v1/queues", limit=2) == made
        old = await api.client.get("/api/queues")
        assert [q["id"] for q in old.json()] == made, "the alias keeps its bare array"
        assert await walk(api.client, "/api/v1/recurrences", limit=2) == []
        cursor = (await api.client.get("/api/v1/queues", params={"limit": 2})).json()
        wrong = await api.client.get(
            "/api/v1/recurrences", params={"cursor": cursor["next_cursor"]}
        )
        refused(wrong, 400, "invalid_cursor")
