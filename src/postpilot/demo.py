"""Demo data against the sandbox: a workspace, sandbox accounts and posts marked `source=demo`,
so `postpilot demo clean` can remove exactly those."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.crypto import CredentialCipher
from postpilot.store import posts, workspaces
from postpilot.store.tables import Account, Workspace

DEMO_WORKSPACE = "demo"
DEMO_SOURCE = "demo"

DEMO_TEXTS = (
    "Good morning! Our spring collection is live.",
    "Three tips for scheduling posts across time zones (thread)",
    "We are hiring: backend engineers who like exactly-once semantics.",
    "Behind the scenes: how we test against a sandbox of every platform.",
    "Reminder: webinar at 5 pm UTC today.",
    "Thank you for 10,000 followers!",
)


@dataclass(frozen=True, slots=True)
class DemoSetup:
    workspace_id: str
    api_key: str
    account_ids: list[str]
    post_ids: list[str]


async def demo_workspace(session: AsyncSession) -> tuple[Workspace, str]:
    """The demo workspace (made once) and a fresh API key for it."""
    found = (
        await session.execute(select(Workspace).where(Workspace.name == DEMO_WORKSPACE))
    ).scalar_one_or_none()
    if found is None:
        created = await workspaces.create_workspace(session, name=DEMO_WORKSPACE, key_name="demo")
        return created.workspace, created.api_key
    key = await workspaces.create_api_key(session, workspace_id=found.id, name="demo")
    return found, key


async def sandbox_accounts(
    session: AsyncSession, workspace: Workspace, cipher: CredentialCipher, sandbox_url: str
) -> list[Account]:
    """Two Mastodon accounts on the sandbox (made once per workspace)."""
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
    if existing:
        return existing
    made = [
        Account(
            workspace_id=workspace.id,
            platform="mastodon",
            handle=handle,
            base_url=f"{sandbox_url}/mastodon",
            options={"demo": True},
            credentials=cipher.encrypt({"access_token": f"demo-token-{handle}"}),
        )
        for handle in ("@news@sandbox.local", "@brand@sandbox.local")
    ]
    session.add_all(made)
    await session.flush()
    return made


async def seed_posts(
    session: AsyncSession,
    *,
    workspace: Workspace,
    accounts: list[Account],
    count: int,
    start: datetime,
    spread: timedelta,
    sandbox_url: str,
    now: datetime,
) -> list[str]:
    """`count` posts due between `start` and `start + spread`, every third with an image."""
    ids = []
    step = spread / max(1, count - 1) if count > 1 else timedelta(0)
    for index in range(count):
        text = DEMO_TEXTS[index % len(DEMO_TEXTS)]
        media = [f"{sandbox_url}/_sandbox/media/demo-{index}.png"] if index % 3 == 1 else []
        post = await posts.create_post(
            session,
            workspace_id=workspace.id,
            text_=f"{text} #{index + 1}",
            media_urls=media,
            overrides={},
            scheduled_at=start + step * index,
            timezone="UTC",
            accounts=accounts,
            source=DEMO_SOURCE,
            now=now,
        )
        ids.append(post.id)
    return ids
