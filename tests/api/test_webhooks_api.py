"""/api/webhooks over HTTP: subscriptions with a write-only secret, kept to their workspace; bad
URLs, private addresses and unknown events refused in the error shape with nothing saved; a
real pass's events reach a real receiver signed with the subscription's secret, and the delivery
log pages with a cursor and redelivers one event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from postpilot.monitor import webhooks as signing
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from postpilot.store.tables import Account, WebhookOutbox, WebhookSubscription
from tests.factories import cipher, due_posts
from tests.helpers import ApiServer, api_server, new_workspace
from tests.monitor.support import Receiver, receiver
from tests.waiting import wait_until


def loopback(hook: Receiver) -> str:
    """PRIVATE_HOSTS_ALLOWED for the receiver's loopback port only."""
    return hook.url.split("//", 1)[1].split("/", 1)[0]


async def subscriptions(db: Database) -> int:
    async with db.session() as session:
        found = await session.execute(select(func.count()).select_from(WebhookSubscription))
        return int(found.scalar_one())


async def accounts_in(db: Database, sandbox: SandboxClient, workspace_id: str) -> list[Account]:
    async with db.transaction() as session:
        made = [
            Account(
                workspace_id=workspace_id,
                platform="mastodon",
                handle=f"@hook{i}",
                base_url=sandbox.platform_url("mastodon"),
                options={},
                credentials=cipher.encrypt({"access_token": f"token-{i}"}),
            )
            for i in range(2)
        ]
        session.add_all(made)
    return made


def error(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


async def test_subscriptions_have_a_write_only_secret_and_stay_in_their_workspace(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        made = await api.client.post(
            "/api/webhooks",
            json={"url": "https://hooks.example.com/pp", "events": ["delivery.failed"]},
        )
        assert made.status_code == 201, made.text
        created = made.json()
        assert len(created["secret"]) >= 32, "generated and shown once"
        assert created["events"] == ["delivery.failed"] and created["enabled"] is True
        chosen = await api.client.post(
            "/api/webhooks",
            json={"url": "https://b.example.com/h", "secret": "my-own-secret-0123456789"},
        )
        assert chosen.json()["secret"] == "my-own-secret-0123456789"
        assert chosen.json()["events"] == ["*"]
        third = await api.client.post("/api/webhooks", json={"url": "https://c.example.com/h"})
        assert third.status_code == 201

        first = await api.client.get("/api/webhooks", params={"limit": 2})
        page = first.json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = await api.client.get(
            "/api/webhooks", params={"limit": 2, "cursor": page["next_cursor"]}
        )
        assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
        listed = page["items"] + rest.json()["items"]
        assert {w["id"] for w in listed} == {created["id"], chosen.json()["id"], third.json()["id"]}
        assert all("secret" not in w for w in listed)
        assert "secret" not in (await api.client.get(f"/api/webhooks/{created['id']}")).json()
        async with sqlite_db.session() as session:
            stored = await session.get(WebhookSubscription, created["id"])
            assert stored is not None and created["secret"] not in stored.secret, "encrypted"

        changed = await api.client.patch(
            f"/api/webhooks/{created['id']}",
            json={"enabled": False, "events": ["*", "delivery.published"], "secret": "x" * 20},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["enabled"] is False and changed.json()["events"] == ["*"]
        assert "secret" not in changed.json()

        _, other_key = await new_workspace(sqlite_db, "other")
        other = api.client_for(other_key)
        assert (await other.get("/api/webhooks")).json()["items"] == []
        for method, path in (
            ("GET", f"/api/webhooks/{created['id']}"),
            ("PATCH", f"/api/webhooks/{created['id']}"),
            ("DELETE", f"/api/webhooks/{created['id']}"),
            ("GET", f"/api/webhooks/{created['id']}/deliveries"),
        ):
            body = {"enabled": True} if method == "PATCH" else None
            assert error(await other.request(method, path, json=body), 404)["code"] == "not_found"
        assert (await api.client.get(f"/api/webhooks/{created['id']}")).json()["enabled"] is False

        gone = await api.client.delete(f"/api/webhooks/{created['id']}")
        assert gone.status_code == 204
        assert error(await api.client.get(f"/api/webhooks/{created['id']}"), 404)
        assert await subscriptions(sqlite_db) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/hook"}, "url"),
        ({"url": "http://localhost/hook"}, "url"),
        ({"url": "http://[::1]/hook"}, "url"),
        ({"url": "http://10.0.0.7/hook"}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "https://user:pw@example.com/hook"}, "url"),
        ({"url": "https://example.com/hook?token=1"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/h", "events": ["post.deleted"]}, "events"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "secret": "short"}, "secret"),
        ({"url": "https://example.com/h", "enabled": "maybe"}, "enabled"),
        ({"url": "https://example.com/h", "extra": 1}, "extra"),
    ],
)
async def test_bad_subscriptions_are_refused_and_nothing_is_saved(
    sqlite_db: Database, body: dict[str, Any], field: str
) -> None:
    async with api_server(sqlite_db) as api:
        refused = error(await api.client.post("/api/webhooks", json=body))
        assert refused["code"] == "invalid_request"
        assert any(field in (d.get("field") or "") for d in refused["details"]), refused
        assert "secret" not in json.dumps(refused) or field == "secret"
        assert await subscriptions(sqlite_db) == 0


async def test_bad_changes_and_cursors_are_refused_and_change_nothing(
    sqlite_db: Database,
) -> None:
    async with api_server(sqlite_db) as api:
        made = (await api.client.post("/api/webhooks", json={"url": "https://a.example/h"})).json()
        path = f"/api/webhooks/{made['id']}"
        for body in (
            {"url": "http://192.168.1.1/h"},
            {"url": None},
            {"enabled": None},
            {"events": ["nope"]},
        ):
            error(await api.client.patch(path, json=body))
        after = (await api.client.get(path)).json()
        assert after == {k: v for k, v in made.items() if k != "secret"}
        for params in ({"limit": 0}, {"limit": 10_000}):
            error(await api.client.get("/api/webhooks", params=params))
            error(await api.client.get(f"{path}/deliveries", params=params))
        for where in ("/api/webhooks", f"{path}/deliveries"):
            bad = await api.client.get(where, params={"cursor": "garbage"})
            assert error(bad, 400)["code"] == "invalid_cursor"
        error(await api.client.get(f"{path}/deliveries", params={"status": "lost"}))
        error(await api.client.get("/api/webhooks/not-an-id"))
        missing = f"{path}/deliveries/00000000-0000-0000-0000-000000000000/retry"
        assert error(await api.client.post(missing), 404)["code"] == "not_found"


async def send_pass(api: ApiServer, sandbox: SandboxClient, *, posts: int) -> None:
    """`posts` posts due now in the API's workspace, published by one real pass."""
    accounts = await accounts_in(api.runtime.db, sandbox, api.workspace_id)
    await due_posts(api.runtime.db, api.workspace_id, accounts, count=posts, at=datetime.now(UTC))
    report = await run_pass(api.runtime, scheduler="optimized")
    assert report.published == 2 * posts


async def test_events_reach_the_receiver_and_the_log_pages_and_redelivers(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with (
        receiver() as hook,
        api_server(
            any_db, sandbox, PRIVATE_HOSTS_ALLOWED=loopback(hook), WEBHOOK_OUTBOX_POLL_SECONDS=0.05
        ) as api,
    ):
        made = await api.client.post("/api/webhooks", json={"url": hook.url})
        assert made.status_code == 201, made.text
        secret, webhook_id = made.json()["secret"], made.json()["id"]
        await send_pass(api, sandbox, posts=3)
        # The API process's own sender (its lifespan runs it) delivers them.
        await wait_until(lambda: len(hook.accepted()) == 6, timeout=20, what="6 events")
        for request in hook.received:
            assert signing.verify(
                secret,
                body=request.body,
                timestamp=request.headers["x-postpilot-timestamp"],
                signature=request.headers["x-postpilot-signature"],
            )
            event = json.loads(request.body)
            assert event["type"] == request.headers["x-postpilot-event"] == "delivery.published"
            assert event["data"]["workspace_id"] == api.workspace_id

        log = f"/api/webhooks/{webhook_id}/deliveries"

        async def all_sent() -> bool:
            items = (await api.client.get(log, params={"status": "sent"})).json()["items"]
            return len(items) == 6

        await wait_until(all_sent, timeout=10, what="the log to say sent")
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
            page = (await api.client.get(log, params=params)).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 6 and len({d["id"] for d in seen}) == 6
        assert {d["status"] for d in seen} == {"sent"}
        assert all(d["attempts"] == 1 and d["last_status"] == 200 for d in seen)
        assert {d["event_id"] for d in seen} == {r.headers["x-postpilot-id"] for r in hook.received}

        again = await api.client.post(f"{log}/{seen[0]['id']}/retry")
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending" and again.json()["attempts"] == 0
        await wait_until(lambda: len(hook.accepted()) == 7, timeout=20, what="the redelivery")
        assert hook.received[-1].headers["x-postpilot-id"] == seen[0]["event_id"]

        # Deleting the subscription takes its log with it.
        assert (await api.client.delete(f"/api/webhooks/{webhook_id}")).status_code == 204
        async with any_db.session() as session:
            left = await session.execute(select(func.count()).select_from(WebhookOutbox))
            assert left.scalar_one() == 0
