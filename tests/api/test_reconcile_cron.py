"""/api/cron/reconcile: cron-only setups settle `unknown` deliveries the way workers do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import api_server


async def test_cron_reconcile_needs_the_cron_secret_and_settles_what_it_can(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox, RECONCILE_SETTLE_SECONDS=0) as api:
        refused = await api.client.get("/api/cron/reconcile")
        assert refused.status_code == 401 and "error" in refused.json()
        workspace, accounts = await workspace_with_accounts(
            sqlite_db,
            sandbox,
            platform="slack",
            credentials={"access_token": "xoxb-cron"},
            options={"channel": "C0CRON"},
        )
        earlier = datetime.now(UTC) - timedelta(minutes=10)
        await due_posts(sqlite_db, workspace, accounts, count=1, at=earlier)
        async with sqlite_db.transaction() as session:
            await session.execute(
                update(Delivery).values(status="unknown", due_at=earlier, updated_at=earlier)
            )
        answer = await api.client.post("/api/cron/reconcile", headers=api.cron())
        assert answer.status_code == 200
        assert answer.json() == {"looked": 1, "published": 0, "retried": 1, "undecided": 0}
        async with sqlite_db.session() as session:
            assert (await session.execute(select(Delivery.status))).scalar_one() == "scheduled"
        again = await api.client.get("/api/cron/reconcile", headers=api.cron())
        assert again.json()["looked"] == 0
