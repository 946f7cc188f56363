"""Test data for a migration rehearsal: realistic posts against sandbox accounts, and a clean-up
that removes exactly those.

Seeded rows reuse the demo's markers (`demo.py`): posts carry `source = "demo"`, accounts carry
`options.demo = true` and live in the `demo` workspace. Every seeded account's `base_url` is the
sandbox, so even a worker without SANDBOX_URL publishes them to the sandbox, never to a platform.
`clean` deletes demo posts (with their deliveries and activity) and demo accounts no other post
still targets, then the demo workspace if nothing is left in it; nothing else.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot import demo
from postpilot.crypto import CredentialCipher
from postpilot.store import posts, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity, Delivery, Post, Workspace

MAX_POSTS = 10_000
# The sandbox's Bluesky treats a token it never issued as this DID's (sha256 of "sandbox").
SANDBOX_DID = "did:plc:" + hashlib.sha256(b"sandbox").hexdigest()[:24]
# (platform, handle, credentials): what each platform's publisher needs to talk to the sandbox,
# which accepts tokens it never issued.
SEED_ACCOUNTS = (
    ("mastodon", "@news@sandbox.local", {"access_token": "demo-token-news"}),
    ("mastodon", "@brand@sandbox.local", {"access_token": "demo-token-brand"}),
    ("x", "@brand_x", {"access_token": "demo-token-x", "client_id": "demo-app"}),
    (
        "bluesky",
        "brand.sandbox.local",
        {"did": SANDBOX_DID, "access_jwt": "demo-jwt", "refresh_jwt": "demo-refresh"},
    ),
)
TIMEZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
HASHTAGS = ("#launch", "#tips", "#hiring", "#behindthescenes", "#webinar", "#thanks")


@dataclass(frozen=True, slots=True)
class Seeded:
    workspace_id: str
    account_ids: list[str]
    post_ids: list[str]
    deliveries: int
    first_due: datetime
    last_due: datetime


@dataclass(frozen=True, slots=True)
class Cleaned:
    posts: int
    deliveries: int
    activity: int
    accounts: int
    workspaces: int
    kept_accounts: list[str]  # demo accounts that a non-demo post still targets


async def _workspace(session: AsyncSession) -> Workspace:
    found = (
        (
            await session.execute(
                select(Workspace)
                .where(Workspace.name == demo.DEMO_WORKSPACE)
                .order_by(Workspace.id)
            )
        )
        .scalars()
        .first()
    )
    if found is not None:
        return found
    created = await workspaces.create_workspace(session, name=demo.DEMO_WORKSPACE, key_name="demo")
    return created.workspace


async def _accounts(
    session: AsyncSession, workspace: Workspace, cipher: CredentialCipher, sandbox_url: str
) -> list[Account]:
    existing = list(
        (
            await session.execute(
                select(Account).where(
                    Account.workspace_id == workspace.id,
                    Account.options["demo"].as_boolean().is_(True),
                    Account.deleted_at.is_(None),
                )
            )
        ).scalars()
    )
    have = {(a.platform, a.handle) for a in existing}
    made = [
        Account(
            workspace_id=workspace.id,
            platform=platform,
            handle=handle,
            base_url=f"{sandbox_url.rstrip('/')}/{platform}",
            options={"demo": True},
            credentials=cipher.encrypt(credentials),
        )
        for platform, handle, credentials in SEED_ACCOUNTS
        if (platform, handle) not in have
    ]
    session.add_all(made)
    await session.flush()
    return sorted(existing + made, key=lambda a: (a.platform, a.handle))


def post_text(index: int, batch: str) -> str:
    """Varied texts, unique per seeding (`batch`): X refuses a repeated text for a day, so a
    second seeding must not repeat the first one's."""
    base = demo.DEMO_TEXTS[index % len(demo.DEMO_TEXTS)]
    return f"{base} {HASHTAGS[index % len(HASHTAGS)]} ({batch}-{index + 1})"


async def seed(
    db: Database,
    cipher: CredentialCipher,
    *,
    sandbox_url: str,
    count: int,
    start: datetime,
    spread: timedelta,
    now: datetime,
) -> Seeded:
    """`count` posts due evenly between `start` and `start + spread`, each to one to three of
    the demo accounts (rotating), every third with an image, every fifth with a shorter text
    for X, in a few time zones."""
    if not 1 <= count <= MAX_POSTS:
        raise ValueError(f"--posts must be between 1 and {MAX_POSTS} (got {count})")
    if spread < timedelta(0):
        raise ValueError("--spread must not be negative")
    step = spread / (count - 1) if count > 1 else timedelta(0)
    batch = secrets.token_hex(2)
    ids: list[str] = []
    deliveries = 0
    async with db.transaction() as session:
        workspace = await _workspace(session)
        accounts = await _accounts(session, workspace, cipher, sandbox_url)
        for index in range(count):
            fanout = 1 + index % 3
            targets = [accounts[(index + k) % len(accounts)] for k in range(fanout)]
            text = post_text(index, batch)
            media = [f"{sandbox_url.rstrip('/')}/_sandbox/media/seed-{index}.png"]
            post = await posts.create_post(
                session,
                workspace_id=workspace.id,
                text_=text,
                media_urls=media if index % 3 == 1 else [],
                overrides={"x": text[:200]} if index % 5 == 4 else {},
                scheduled_at=start + step * index,
                timezone=TIMEZONES[index % len(TIMEZONES)],
                accounts=targets,
                source=demo.DEMO_SOURCE,
                now=now,
            )
            ids.append(post.id)
            deliveries += len(targets)
        return Seeded(
            workspace_id=workspace.id,
            account_ids=[a.id for a in accounts],
            post_ids=ids,
            deliveries=deliveries,
            first_due=start,
            last_due=start + step * (count - 1),
        )


async def clean(db: Database) -> Cleaned:
    """Remove demo posts and what hangs off them, demo accounts nothing else targets, and the
    demo workspace once it is empty. One transaction."""
    async with db.transaction() as session:
        post_ids = select(Post.id).where(Post.source == demo.DEMO_SOURCE)
        activity = await session.execute(delete(Activity).where(Activity.post_id.in_(post_ids)))
        deliveries = await session.execute(delete(Delivery).where(Delivery.post_id.in_(post_ids)))
        removed_posts = await session.execute(delete(Post).where(Post.source == demo.DEMO_SOURCE))
        demo_accounts = list(
            (
                await session.execute(
                    select(Account).where(Account.options["demo"].as_boolean().is_(True))
                )
            ).scalars()
        )
        still_used = set(
            (
                await session.execute(
                    select(Delivery.account_id)
                    .where(Delivery.account_id.in_([a.id for a in demo_accounts]))
                    .distinct()
                )
            ).scalars()
        )
        removable = [a.id for a in demo_accounts if a.id not in still_used]
        kept = [f"{a.platform} {a.handle} ({a.id})" for a in demo_accounts if a.id in still_used]
        removed_accounts = 0
        if removable:
            result = await session.execute(delete(Account).where(Account.id.in_(removable)))
            removed_accounts = result.rowcount  # type: ignore[attr-defined]
        removed_workspaces = 0
        for workspace in (
            await session.execute(select(Workspace).where(Workspace.name == demo.DEMO_WORKSPACE))
        ).scalars():
            left = (
                await session.execute(
                    select(func.count()).select_from(Post).where(Post.workspace_id == workspace.id)
                )
            ).scalar_one() + (
                await session.execute(
                    select(func.count())
                    .select_from(Account)
                    .where(Account.workspace_id == workspace.id)
                )
            ).scalar_one()
            if not left:
                await session.delete(workspace)  # its API keys go with it (ON DELETE CASCADE)
                removed_workspaces += 1
        return Cleaned(
            posts=removed_posts.rowcount,  # type: ignore[attr-defined]
            deliveries=deliveries.rowcount,  # type: ignore[attr-defined]
            activity=activity.rowcount,  # type: ignore[attr-defined]
            accounts=removed_accounts,
            workspaces=removed_workspaces,
            kept_accounts=kept,
        )
