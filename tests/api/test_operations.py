"""Operations through the API, on SQLite and PostgreSQL: API keys listed, created, revoked and
rotated with activity naming the key that acted; `Idempotency-Key` on post creation; deleting an
account cancels what it still owed without dropping a delivery a pass is publishing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from postpilot.core.states import DeliveryStatus
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from postpilot.store.tables import Activity, ApiKey, Delivery, IdempotencyKey, Post
from tests.helpers import ApiServer, api_server, mastodon_account, new_workspace
from tests.waiting import wait_until


def future(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def client(api: ApiServer, key: str) -> httpx.AsyncClient:
    return api.client_for(key)


async def rows(db: Database, model: type, *where: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def own_key(api: ApiServer) -> dict[str, Any]:
    listed = (await api.client.get("/api/keys")).json()
    return next(k for k in listed if api.api_key.startswith(k["prefix"]))


def actor_of(key: dict[str, Any]) -> str:
    return f"key:{key['prefix']}:{key['id']}"


# --- API keys ---------------------------------------------------------------------------------


async def test_keys_are_listed_without_secrets_and_created_once(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        created = await api.client.post("/api/keys", json={"name": "ci"})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith(created.json()["prefix"])
        assert (await client(api, secret).get("/api/accounts")).status_code == 200

        listed = await api.client.get("/api/keys")
        assert listed.status_code == 200
        assert {k["name"] for k in listed.json()} == {"default", "ci"}
        assert set(listed.json()[0]) == {
            "id",
            "name",
            "prefix",
            "active",
            "created_at",
            "last_used_at",
            "revoked_at",
        }
        stored_hashes = [k.key_hash for k in await rows(any_db, ApiKey)]
        for text in (secret, api.api_key, *stored_hashes):
            assert text not in listed.text
        used = next(k for k in listed.json() if k["name"] == "ci")
        assert used["last_used_at"] is not None and used["active"] is True

        log = await rows(any_db, Activity, Activity.event == "key_created")
        assert [a.actor for a in log] == [actor_of(await own_key(api))]
        assert secret not in log[0].detail

        for bad in ({"name": ""}, {"name": "a\u0000b"}, {"name": "x" * 201}, {}):
            refused = await api.client.post("/api/keys", json=bad)
            assert refused.status_code == 422
            assert "name" in refused.json()["error"]["message"]
        assert await count(any_db, ApiKey) == 2


async def test_a_revoked_key_is_refused_at_once(any_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(any_db, sandbox) as api:
        other = (await api.client.post("/api/keys", json={"name": "laptop"})).json()
        assert (await client(api, other["secret"]).get("/api/posts")).status_code == 200

        revoked = await api.client.post(f"/api/keys/{other['id']}/revoke")
        assert revoked.status_code == 200
        assert revoked.json()["active"] is False and revoked.json()["revoked_at"]
        refused = await client(api, other["secret"]).get("/api/posts")
        assert refused.status_code == 401
        assert "revoked" in refused.json()["error"]["message"]

        again = await api.client.post(f"/api/keys/{other['id']}/revoke")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "key_revoked"
        log = await rows(any_db, Activity, Activity.event == "key_revoked")
        assert [a.actor for a in log] == [actor_of(await own_key(api))]


async def test_the_last_active_key_cannot_revoke_itself(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        mine = await own_key(api)
        refused = await api.client.post(f"/api/keys/{mine['id']}/revoke")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "last_active_key"
        assert "last active" in refused.json()["error"]["message"]
        assert (await api.client.get("/api/keys")).status_code == 200  # still works

        spare = (await api.client.post("/api/keys", json={"name": "spare"})).json()
        assert (await api.client.post(f"/api/keys/{mine['id']}/revoke")).status_code == 200
        assert (await api.client.get("/api/keys")).status_code == 401
        assert (await client(api, spare["secret"]).get("/api/keys")).status_code == 200


async def test_two_keys_revoking_each_other_at_once_leave_one_active(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        mine = await own_key(api)
        other = (await api.client.post("/api/keys", json={"name": "other"})).json()
        answers = await asyncio.gather(
            api.client.post(f"/api/keys/{other['id']}/revoke"),
            client(api, other["secret"]).post(f"/api/keys/{mine['id']}/revoke"),
        )
        codes = sorted(a.status_code for a in answers)
        # The second either finds its own key revoked (401) or is the last one (409).
        assert codes[0] == 200 and codes[1] in (401, 409)
        active = [k for k in await rows(any_db, ApiKey) if k.revoked_at is None]
        assert len(active) == 1


async def test_rotate_replaces_a_key_atomically(any_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(any_db, sandbox) as api:
        mine = await own_key(api)
        rotated = await api.client.post(f"/api/keys/{mine['id']}/rotate")
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()
        assert new["replaces"] == mine["id"] and new["name"] == mine["name"]
        assert new["secret"] != api.api_key
        assert (await api.client.get("/api/keys")).status_code == 401  # the old secret
        fresh = client(api, new["secret"])
        listed = {k["id"]: k for k in (await fresh.get("/api/keys")).json()}
        assert listed[mine["id"]]["active"] is False
        assert listed[new["id"]]["active"] is True

        stale = await fresh.post(f"/api/keys/{mine['id']}/rotate")
        assert stale.status_code == 409
        assert len(await rows(any_db, ApiKey)) == 2  # the refused rotation made nothing
        log = await rows(any_db, Activity, Activity.event == "key_rotated")
        assert [a.actor for a in log] == [actor_of(mine)]

        missing = await fresh.post("/api/keys/00000000-0000-0000-0000-000000000000/rotate")
        assert missing.status_code == 404 and "error" in missing.json()
        malformed = await fresh.post("/api/keys/not-a-key/revoke")
        assert malformed.status_code == 422 and "error" in malformed.json()


async def test_keys_stay_in_their_workspace(any_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(any_db, sandbox) as api:
        mine = await own_key(api)
        _, other_secret = await new_workspace(any_db, "other")
        other = client(api, other_secret)
        assert mine["id"] not in {k["id"] for k in (await other.get("/api/keys")).json()}
        for action in ("revoke", "rotate"):
            response = await other.post(f"/api/keys/{mine['id']}/{action}")
            assert response.status_code == 404
        assert (await api.client.get("/api/keys")).status_code == 200


async def test_activity_names_the_key_that_made_each_change(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        second = (await api.client.post("/api/keys", json={"name": "second"})).json()
        post = (
            await api.client.post(
                "/api/posts",
                json={"text": "hi", "targets": [account_id], "scheduled_at": future()},
            )
        ).json()
        edited = await client(api, second["secret"]).patch(
            f"/api/posts/{post['id']}", json={"text": "hello"}
        )
        assert edited.status_code == 200
        await api.client.post(f"/api/posts/{post['id']}/cancel")
        activity = (await api.client.get(f"/api/posts/{post['id']}/activity")).json()
        mine = actor_of(await own_key(api))
        assert [(a["event"], a["actor"]) for a in activity] == [
            ("created", mine),
            ("updated", actor_of(second)),
            ("cancelled", mine),
        ]
        for entry in activity:
            assert api.api_key not in entry["actor"] and second["secret"] not in entry["actor"]


async def test_workspace_activity_lists_account_and_key_changes_by_key(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox, handle="@audited")
        patched = await api.client.patch(
            f"/api/accounts/{account_id}",
            json={"handle": "@renamed", "credentials": {"access_token": "token-new-secret"}},
        )
        assert patched.status_code == 200
        spare = (await api.client.post("/api/keys", json={"name": "spare"})).json()
        await client(api, spare["secret"]).delete(f"/api/accounts/{account_id}")

        listed = await api.client.get("/api/activity")
        assert listed.status_code == 200
        entries = listed.json()
        mine = actor_of(await own_key(api))
        assert [(e["event"], e["actor"]) for e in entries] == [
            ("account_deleted", actor_of(spare)),
            ("key_created", mine),
            ("account_updated", mine),
            ("account_created", mine),
        ]
        assert entries[2]["detail"].endswith(": credentials, handle")
        assert all(e["post_id"] is None for e in entries)
        for secret in ("token-new-secret", "token-@audited", api.api_key, spare["secret"]):
            assert secret not in listed.text

        older = await api.client.get(
            "/api/activity", params={"before": entries[1]["id"], "limit": 1}
        )
        assert [e["event"] for e in older.json()] == ["account_updated"]
        for bad in ({"before": 0}, {"before": 2**63}, {"limit": 0}, {"limit": 501}):
            refused = await api.client.get("/api/activity", params=bad)
            assert refused.status_code == 422 and "error" in refused.json()

        _, other_secret = await new_workspace(any_db, "other")
        assert (await client(api, other_secret).get("/api/activity")).json() == []


# --- Idempotency-Key --------------------------------------------------------------------------


async def test_a_retried_create_returns_the_first_post(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        body = {"text": "once", "targets": [account_id], "scheduled_at": future()}
        headers = {"Idempotency-Key": "order-42"}
        first = await api.client.post("/api/posts", json=body, headers=headers)
        assert first.status_code == 201
        again = await api.client.post(
            "/api/posts", json=dict(reversed(body.items())), headers=headers
        )
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await count(any_db, Post) == 1

        other = await api.client.post(
            "/api/posts", json={**body, "text": "something else"}, headers=headers
        )
        assert other.status_code == 422
        assert other.json()["error"]["code"] == "idempotency_key_reused"
        assert await count(any_db, Post) == 1

        without = await api.client.post("/api/posts", json=body)
        assert without.status_code == 201 and without.json()["id"] != first.json()["id"]


async def test_a_refused_create_keeps_its_key_free(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        headers = {"Idempotency-Key": "k1"}
        bad = await api.client.post(
            "/api/posts", json={"text": "x" * 501, "targets": [account_id]}, headers=headers
        )
        assert bad.status_code == 422
        assert await count(any_db, IdempotencyKey) == 0
        good = await api.client.post(
            "/api/posts", json={"text": "short", "targets": [account_id]}, headers=headers
        )
        assert good.status_code == 201

        for key in ("", "x" * 256, "has space", "caf\u00e9"):
            refused = await api.client.post(
                "/api/posts",
                json={"text": "short", "targets": [account_id]},
                headers={"Idempotency-Key": key.encode()},
            )
            assert refused.status_code == 422, key
            assert "Idempotency-Key" in refused.json()["error"]["message"]
        assert await count(any_db, Post) == 1


async def test_idempotency_keys_are_per_workspace(any_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(any_db, sandbox) as api:
        mine = await mastodon_account(api, sandbox)
        _, other_secret = await new_workspace(any_db, "other")
        other = client(api, other_secret)
        created = await other.post(
            "/api/accounts",
            json={
                "platform": "mastodon",
                "handle": "@them",
                "base_url": sandbox.platform_url("mastodon"),
                "credentials": {"access_token": "token-them"},
                "verify": False,
            },
        )
        theirs = created.json()["id"]
        headers = {"Idempotency-Key": "same-key"}
        a = await api.client.post(
            "/api/posts", json={"text": "a", "targets": [mine]}, headers=headers
        )
        b = await other.post("/api/posts", json={"text": "b", "targets": [theirs]}, headers=headers)
        assert (a.status_code, b.status_code) == (201, 201)
        assert a.json()["id"] != b.json()["id"]
        assert b.json()["text"] == "b"
        assert await count(any_db, Post) == 2


async def test_concurrent_duplicates_create_one_post(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        body = {"text": "race", "targets": [account_id], "scheduled_at": future()}
        answers = await asyncio.gather(
            *(
                api.client.post("/api/posts", json=body, headers={"Idempotency-Key": "race"})
                for _ in range(8)
            )
        )
        assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert await count(any_db, Post) == 1
        assert await count(any_db, Delivery) == 1


async def test_a_late_retry_is_answered_though_its_time_has_passed(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        body = {"text": "soon", "targets": [account_id], "scheduled_at": future(1)}
        headers = {"Idempotency-Key": "late"}
        first = await api.client.post("/api/posts", json=body, headers=headers)
        later = datetime.now(UTC) + timedelta(hours=2)
        api.runtime.clock = lambda: later
        retry = await api.client.post("/api/posts", json=body, headers=headers)
        assert (first.status_code, retry.status_code) == (201, 201)
        assert retry.json() == first.json()
        fresh = await api.client.post("/api/posts", json=body, headers={"Idempotency-Key": "new"})
        assert fresh.status_code == 422 and "in the past" in fresh.json()["error"]["message"]


async def test_a_key_may_be_used_again_after_24_hours(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        body = {"text": "daily", "targets": [account_id]}
        headers = {"Idempotency-Key": "daily"}
        first = await api.client.post("/api/posts", json=body, headers=headers)
        later = datetime.now(UTC) + timedelta(hours=24, minutes=1)
        api.runtime.clock = lambda: later
        second = await api.client.post("/api/posts", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json()["id"] != second.json()["id"]
        assert "Idempotent-Replayed" not in second.headers
        assert await count(any_db, IdempotencyKey) == 1  # the expired record was cleared


# --- deleting an account ----------------------------------------------------------------------


async def test_deleting_an_account_cancels_its_pending_deliveries_with_activity(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        gone = await mastodon_account(api, sandbox, handle="@gone")
        kept = await mastodon_account(api, sandbox, handle="@kept")
        both = (
            await api.client.post(
                "/api/posts",
                json={"text": "both", "targets": [gone, kept], "scheduled_at": future()},
            )
        ).json()
        retrying = (
            await api.client.post("/api/posts", json={"text": "retry", "targets": [gone]})
        ).json()
        async with any_db.transaction() as session:  # a failed attempt, waiting to retry
            await session.execute(
                update(Delivery)
                .where(Delivery.post_id == retrying["id"])
                .values(attempts=1, due_at=datetime.now(UTC) + timedelta(minutes=5))
            )
        assert (await api.client.get(f"/api/posts/{retrying['id']}")).json()[
            "status"
        ] == "publishing"

        assert (await api.client.delete(f"/api/accounts/{gone}")).status_code == 204

        after = (await api.client.get(f"/api/posts/{retrying['id']}")).json()
        assert after["status"] == "cancelled"
        assert after["targets"][0]["status"] == "cancelled"
        view = (await api.client.get(f"/api/posts/{both['id']}")).json()
        assert view["status"] == "scheduled"  # the other target still goes out
        assert {t["handle"]: t["status"] for t in view["targets"]} == {
            "@gone": "cancelled",
            "@kept": "scheduled",
        }
        me = actor_of(await own_key(api))
        for post in (both, retrying):
            activity = (await api.client.get(f"/api/posts/{post['id']}/activity")).json()
            cancelled = [a for a in activity if a["event"] == "cancelled"]
            assert len(cancelled) == 1 and cancelled[0]["actor"] == me
            assert "@gone on mastodon was deleted" in cancelled[0]["detail"]
            assert cancelled[0]["delivery_id"] is not None


async def test_posts_of_a_deleted_account_stay_editable(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        gone = await mastodon_account(api, sandbox, handle="@gone")
        kept = await mastodon_account(api, sandbox, handle="@kept")
        shared = (
            await api.client.post(
                "/api/posts", json={"text": "a", "targets": [gone, kept], "scheduled_at": future()}
            )
        ).json()
        alone = (
            await api.client.post(
                "/api/posts", json={"text": "b", "targets": [gone], "scheduled_at": future()}
            )
        ).json()
        await api.client.delete(f"/api/accounts/{gone}")

        edited = await api.client.patch(
            f"/api/posts/{shared['id']}", json={"text": "edited", "scheduled_at": future(60)}
        )
        assert edited.status_code == 200, edited.text
        targets = {t["handle"]: t for t in edited.json()["targets"]}
        assert targets["@gone"]["status"] == "cancelled"
        assert targets["@kept"]["status"] == "scheduled"
        assert edited.json()["status"] == "scheduled"

        moved = await api.client.patch(f"/api/posts/{alone['id']}", json={"targets": [kept]})
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "scheduled"
        assert [t["status"] for t in moved.json()["targets"]] == ["cancelled", "scheduled"]

        readd = await api.client.patch(f"/api/posts/{alone['id']}", json={"targets": [gone]})
        assert readd.status_code == 422  # a deleted account is no target


async def test_a_delivery_being_published_when_its_account_is_deleted_finishes(
    any_db: Database, sandbox: SandboxClient
) -> None:
    """The pass holding the lease sends it and records the outcome: nothing is dropped or sent
    twice, and the post ends published, not stuck."""
    sandbox.configure(latency_ms=1500)
    async with api_server(any_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        post = (
            await api.client.post("/api/posts", json={"text": "now", "targets": [account_id]})
        ).json()
        publishing = asyncio.create_task(run_pass(api.runtime, scheduler="optimized"))

        async def claimed() -> bool:
            assert not publishing.done()
            return (await rows(any_db, Delivery))[0].status == DeliveryStatus.CLAIMED.value

        await wait_until(claimed, timeout=10, every=0.01)

        assert (await api.client.delete(f"/api/accounts/{account_id}")).status_code == 204
        assert (await rows(any_db, Delivery))[0].status == DeliveryStatus.CLAIMED.value
        report = await publishing
        assert report.published == 1
        assert len(sandbox.records("mastodon")) == 1

        view = (await api.client.get(f"/api/posts/{post['id']}")).json()
        assert view["status"] == "published"
        events = [
            a["event"] for a in (await api.client.get(f"/api/posts/{post['id']}/activity")).json()
        ]
        assert events == ["created", "account_deleted", "published"]

        again = await run_pass(api.runtime, scheduler="optimized")
        assert again.claimed == 0 and len(sandbox.records("mastodon")) == 1
