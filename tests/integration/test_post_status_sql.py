"""The SQL filter on a post's derived status agrees with the Python derivation."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import update

from postpilot.core.states import DeliveryStatus, PostStatus, derive_post_status
from postpilot.sandbox.client import SandboxClient
from postpilot.store import posts
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.factories import due_posts, workspace_with_accounts


async def test_status_filter_matches_python(any_db: Database, sandbox: SandboxClient) -> None:
    workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=3)
    post_ids = await due_posts(any_db, workspace, accounts, count=120, at=datetime.now(UTC))
    rng = random.Random(20261129)
    expected: dict[str, PostStatus] = {}
    async with any_db.transaction() as session:
        for post_id in post_ids:
            combo = []
            for account in accounts:
                status = rng.choice(list(DeliveryStatus))
                attempts = rng.choice([0, 0, 1, 2])
                combo.append((status, attempts))
                await session.execute(
                    update(Delivery)
                    .where(Delivery.post_id == post_id, Delivery.account_id == account.id)
                    .values(status=status.value, attempts=attempts)
                )
            expected[post_id] = derive_post_status(combo)
    async with any_db.session() as session:
        for status in PostStatus:
            views, total = await posts.list_posts(session, workspace, status=status, limit=500)
            want = {p for p, s in expected.items() if s is status}
            assert {v.post.id for v in views} == want, status
            assert total == len(want)
            assert all(v.status is status for v in views)
