"""Rows for tests, written through the store (not the API) when a test needs many of them."""

from __future__ import annotations

from datetime import datetime

from postpilot.crypto import CredentialCipher
from postpilot.sandbox.client import SandboxClient
from postpilot.store import posts, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account
from tests.helpers import TEST_SECRET_KEY

cipher = CredentialCipher(TEST_SECRET_KEY)


async def workspace_with_accounts(
    db: Database,
    sandbox: SandboxClient,
    count: int = 1,
    platform: str = "mastodon",
    credentials: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> tuple[str, list[Account]]:
    async with db.transaction() as session:
        created = await workspaces.create_workspace(session, name="factory")
        accounts = [
            Account(
                workspace_id=created.workspace.id,
                platform=platform,
                handle=f"@user{i}",
                base_url=sandbox.platform_url(platform),
                options=options or {},
                credentials=cipher.encrypt(credentials or {"access_token": f"token-{i}"}),
            )
            for i in range(count)
        ]
        session.add_all(accounts)
    return created.workspace.id, accounts


async def telegram_workspace(db: Database, sandbox: SandboxClient) -> tuple[str, list[Account]]:
    """A workspace with one Telegram account: the platform that cannot deduplicate a repeat."""
    return await workspace_with_accounts(
        db,
        sandbox,
        platform="telegram",
        credentials={"bot_token": "123:secret"},
        options={"chat_id": "@news"},
    )


async def due_posts(
    db: Database,
    workspace_id: str,
    accounts: list[Account],
    *,
    count: int,
    at: datetime,
    text: str = "post",
    media_urls: list[str] | None = None,
) -> list[str]:
    ids = []
    async with db.transaction() as session:
        for i in range(count):
            post = await posts.create_post(
                session,
                workspace_id=workspace_id,
                text_=f"{text} {i}",
                media_urls=media_urls or [],
                overrides={},
                scheduled_at=at,
                timezone="UTC",
                accounts=accounts,
                now=at,
            )
            ids.append(post.id)
    return ids
