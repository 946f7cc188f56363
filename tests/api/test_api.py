"""The HTTP API: authorization per workspace, write-only secrets, clear errors that change
nothing, editing, cancelling, and settling unknown deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery, Post
from tests.helpers import TEST_SECRET_KEY, api_server, mastodon_account, new_workspace


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def future(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


async def test_requests_need_a_valid_key_and_stay_in_their_workspace(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        anonymous = await api.client_for(None).get("/api/accounts")
        assert anonymous.status_code == 401
        assert "Authorization: Bearer" in anonymous.json()["error"]["message"]
        bad = await api.client_for("pp_nope").get("/api/accounts")
        assert bad.status_code == 401

        _, other_key = await new_workspace(sqlite_db, "other")
        other = api.client_for(other_key)
        assert (await other.get("/api/accounts")).json() == []
        assert (await other.get(f"/api/accounts/{account_id}")).status_code == 404
        stolen = await other.post(
            "/api/posts", json={"text": "hi", "targets": [account_id], "scheduled_at": future()}
        )
        assert stolen.status_code == 422
        assert account_id in stolen.json()["error"]["message"]
        assert await count(sqlite_db, Post) == 0


async def test_credentials_are_write_only_and_encrypted_at_rest(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox, handle="@secret")
        for response in (
            await api.client.get(f"/api/accounts/{account_id}"),
            await api.client.get("/api/accounts"),
        ):
            assert "token-@secret" not in response.text
            assert "credentials" not in response.text
        async with sqlite_db.session() as session:
            stored = (await session.execute(select(Account.credentials))).scalar_one()
        assert "token-@secret" not in stored
        assert TEST_SECRET_KEY not in stored


async def test_bad_input_gets_a_clear_error_and_writes_nothing(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        cases = [
            ({"text": "hi", "targets": [], "scheduled_at": future()}, "targets"),
            ({"text": "hi", "targets": [account_id], "timezone": "Mars/Base"}, "Mars/Base"),
            ({"text": "x" * 501, "targets": [account_id]}, "mastodon: text is 501 characters"),
            ({"text": "", "targets": [account_id]}, "text must not be empty"),
            (
                {"text": "hi", "targets": [account_id], "media_urls": ["file:///etc/passwd"]},
                "only http and https",
            ),
            (
                {"text": "hi", "targets": [account_id], "scheduled_at": "2020-01-01T00:00:00Z"},
                "in the past",
            ),
            ({"text": "hi", "targets": [account_id], "overrides": {"myspace": "x"}}, "myspace"),
            ({"text": "hi", "targets": [account_id], "surprise": 1}, "surprise"),
            ({"text": "hi", "targets": [account_id, account_id]}, "more than once"),
        ]
        for body, words in cases:
            response = await api.client.post("/api/posts", json=body)
            assert response.status_code == 422, (body, response.text)
            assert words in response.json()["error"]["message"], response.text
        bad_account = await api.client.post(
            "/api/accounts",
            json={"platform": "myspace", "handle": "@x", "credentials": {"t": "x"}},
        )
        assert bad_account.status_code == 422
        assert "mastodon" in bad_account.json()["error"]["message"]
        assert await count(any_db, Post) == 0
        assert await count(any_db, Account) == 1


async def test_local_time_in_a_zone_is_stored_as_utc(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        year = datetime.now(UTC).year + 1
        response = await api.client.post(
            "/api/posts",
            json={
                "text": "bonjour",
                "targets": [account_id],
                "scheduled_at": f"{year}-07-01T09:00:00",
                "timezone": "Europe/Paris",
            },
        )
        post = response.json()
        assert post["scheduled_at"].startswith(f"{year}-07-01T07:00:00")
        assert post["scheduled_at_local"].startswith(f"{year}-07-01T09:00:00+02:00")
        assert post["timezone"] == "Europe/Paris"


async def test_edit_reschedule_retarget_and_cancel(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        first = await mastodon_account(api, sandbox, "@one")
        second = await mastodon_account(api, sandbox, "@two")
        post = (
            await api.client.post(
                "/api/posts", json={"text": "draft", "targets": [first], "scheduled_at": future()}
            )
        ).json()
        edited = await api.client.patch(
            f"/api/posts/{post['id']}",
            json={"text": "final", "targets": [second], "scheduled_at": future(60)},
        )
        assert edited.status_code == 200, edited.text
        body = edited.json()
        assert body["text"] == "final"
        assert [t["account_id"] for t in body["targets"]] == [second]
        assert body["targets"][0]["next_attempt_at"] == body["scheduled_at"]

        too_long = await api.client.patch(f"/api/posts/{post['id']}", json={"text": "y" * 600})
        assert too_long.status_code == 422
        assert (await api.client.get(f"/api/posts/{post['id']}")).json()["text"] == "final"

        listed = (await api.client.get("/api/posts", params={"status": "scheduled"})).json()
        assert [p["id"] for p in listed["items"]] == [post["id"]]

        cancelled = await api.client.post(f"/api/posts/{post['id']}/cancel")
        assert cancelled.json()["post"]["status"] == "cancelled"
        assert cancelled.json()["still_publishing"] == []
        again = await api.client.patch(f"/api/posts/{post['id']}", json={"text": "zombie"})
        assert again.status_code == 409
        events = [
            a["event"] for a in (await api.client.get(f"/api/posts/{post['id']}/activity")).json()
        ]
        assert events == ["created", "updated", "cancelled"]


async def test_a_published_post_cannot_be_edited(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        post = (
            await api.client.post("/api/posts", json={"text": "now", "targets": [account_id]})
        ).json()
        await api.client.post("/api/cron/scheduler-optimized", headers=api.cron())
        response = await api.client.patch(f"/api/posts/{post['id']}", json={"text": "later"})
        assert response.status_code == 409
        assert "started publishing" in response.json()["error"]["message"]


async def test_unknown_deliveries_are_listed_and_resolved(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        post = (
            await api.client.post("/api/posts", json={"text": "?", "targets": [account_id]})
        ).json()
        delivery_id = post["targets"][0]["id"]
        async with sqlite_db.transaction() as session:
            await session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(status="unknown")
            )
        unknown = (await api.client.get("/api/deliveries", params={"status": "unknown"})).json()
        assert [d["id"] for d in unknown] == [delivery_id]
        assert (await api.client.get(f"/api/posts/{post['id']}")).json()[
            "status"
        ] == "needs_attention"

        missing_id = await api.client.post(
            f"/api/deliveries/{delivery_id}/resolve", json={"resolution": "published"}
        )
        assert missing_id.status_code == 422
        resolved = await api.client.post(
            f"/api/deliveries/{delivery_id}/resolve",
            json={"resolution": "published", "platform_post_id": "123", "note": "seen on the web"},
        )
        assert resolved.status_code == 200
        assert resolved.json()["status"] == "published"
        assert (await api.client.get(f"/api/posts/{post['id']}")).json()["status"] == "published"
        twice = await api.client.post(
            f"/api/deliveries/{delivery_id}/resolve", json={"resolution": "retry"}
        )
        assert twice.status_code == 409


async def test_deleting_an_account_cancels_what_it_still_owed(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        post = (
            await api.client.post(
                "/api/posts",
                json={"text": "later", "targets": [account_id], "scheduled_at": future()},
            )
        ).json()
        assert (await api.client.delete(f"/api/accounts/{account_id}")).status_code == 204
        assert (await api.client.get(f"/api/accounts/{account_id}")).status_code == 404
        after = (await api.client.get(f"/api/posts/{post['id']}")).json()
        assert after["status"] == "cancelled"
        assert after["targets"][0]["last_error"] == "the account was deleted"
