"""Demo data on the sandbox: the demo's accounts connected through the same flows a person's
are (`connect_accounts`: Mastodon and X through their consent pages, answered by the sandbox,
Bluesky with an app password), what `postpilot demo run` schedules and `postpilot demo seed`
adds for a migration rehearsal, and the clean-up that removes exactly that.

Seeded rows carry the demo's marks (`store/demo.py`): posts `source = "demo"`, accounts
`options.demo = true` in the `demo` workspace. Every demo account's `base_url` is the sandbox, so
even a worker without SANDBOX_URL publishes them to the sandbox, never to a platform. Cleaning
deletes demo posts (with their deliveries and activity) and demo accounts no other post still
targets, then the demo workspace if nothing is left in it; nothing else.

`seed` posts to the demo workspace's accounts; where there are none yet (tools and tests that
seed a database with no sandbox running) it writes sandbox accounts whose tokens the sandbox
accepts without having issued them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot import passwords
from postpilot.connect import flows
from postpilot.connect.outcomes import Finished
from postpilot.connect.service import ConnectService
from postpilot.core.roles import Role
from postpilot.core.states import DeliveryStatus
from postpilot.crypto import CredentialCipher
from postpilot.errors import PostpilotError
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.runtime import Runtime
from postpilot.store import demo as demo_rows
from postpilot.store import posts, users, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account, Workspace
from postpilot.store.work import Decision

MAX_POSTS = 10_000
# The sandbox's Bluesky treats a token it never issued as this DID's (sha256 of "sandbox").
SANDBOX_DID = "did:plc:" + hashlib.sha256(b"sandbox").hexdigest()[:24]
# Who signs in at the sandbox's consent page for each demo account connected through OAuth
# (platform, the sandbox's subject); and the Bluesky account, with an app password.
LOGINS = (("mastodon", "news"), ("mastodon", "brand"), ("x", "brand_x"))
BLUESKY_LOGIN = {"handle": "brand.sandbox.local", "app_password": "demo-app-pass-word"}
# Without a sandbox to connect through (platform, handle, credentials): what each platform's
# publisher needs to talk to the sandbox, which accepts tokens it never issued.
ACCOUNTS = (
    ("mastodon", "@news@sandbox.local", {"access_token": "demo-token-news"}),
    ("mastodon", "@brand@sandbox.local", {"access_token": "demo-token-brand"}),
    ("x", "@brand_x", {"access_token": "demo-token-x", "client_id": "demo-app"}),
    (
        "bluesky",
        "brand.sandbox.local",
        {"did": SANDBOX_DID, "access_jwt": "demo-jwt", "refresh_jwt": "demo-refresh"},
    ),
)
TEXTS = (
    "Good morning! Our spring collection is live.",
    "Three tips for scheduling posts across time zones (thread)",
    "We are hiring: backend engineers who like exactly-once semantics.",
    "Behind the scenes: how we test against a sandbox of every platform.",
    "Reminder: webinar at 5 pm UTC today.",
    "Thank you for 10,000 followers!",
)
TIMEZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
HASHTAGS = ("#launch", "#tips", "#hiring", "#behindthescenes", "#webinar", "#thanks")

Cleaned = demo_rows.Removed


@dataclass(frozen=True, slots=True)
class Seeded:
    workspace_id: str
    account_ids: list[str]
    platforms: list[str]
    post_ids: list[str]
    deliveries: int
    first_due: datetime
    last_due: datetime
    texts: dict[str, str] = field(default_factory=dict)  # post id -> its text
    targets: dict[str, int] = field(default_factory=dict)  # post id -> how many deliveries
    handles: dict[str, str] = field(default_factory=dict)  # account id -> its handle


# Where a delivery ends; a retried or rate-limited one is decided again later.
ENDED = (DeliveryStatus.PUBLISHED, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Target:
    """How one delivery of a post ended: its link, or why it has none."""

    platform: str
    handle: str
    status: DeliveryStatus
    link: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Settled:
    """A demo post whose every delivery has ended, for printing once."""

    text: str
    targets: list[Target]


class Outcomes:
    """Gathers the deliveries of the demo's posts as passes decide them, whatever pass each
    is in, and hands a post back once, when all of its deliveries have ended."""

    def __init__(self, seeded: Seeded) -> None:
        self._texts = seeded.texts
        self._targets = seeded.targets
        self._handles = seeded.handles
        self._ended: dict[str, list[Target]] = {}

    def add(self, decisions: Iterable[Decision]) -> list[Settled]:
        settled = []
        for decision in decisions:
            post_id, transition = decision.delivery.post_id, decision.transition
            if post_id not in self._texts or transition.status not in ENDED:
                continue
            ended = self._ended.setdefault(post_id, [])
            ended.append(
                Target(
                    platform=decision.delivery.platform,
                    handle=self._handles.get(decision.delivery.account_id, ""),
                    status=transition.status,
                    link=transition.platform_url,
                    detail=transition.detail,
                )
            )
            if len(ended) == self._targets[post_id]:
                targets = sorted(ended, key=lambda t: (t.platform, t.handle))
                settled.append(Settled(text=self._texts[post_id], targets=targets))
        return settled


async def _workspace(session: AsyncSession) -> Workspace:
    found = await demo_rows.workspace(session)
    if found is not None:
        return found
    created = await workspaces.create_workspace(session, name=demo_rows.WORKSPACE, key_name="demo")
    return created.workspace


async def connect_accounts(runtime: Runtime, *, sandbox_url: str) -> list[str]:
    """Connect the demo's accounts through the connect service, as a person would: the
    sandbox's consent page approves at once (its setting, restored after), the callback's code
    is exchanged and each account checked live. Connecting again updates the same accounts."""
    base = sandbox_url.rstrip("/")
    async with runtime.db.transaction() as session:
        workspace = await _workspace(session)
    service = ConnectService(runtime)
    sandbox = SandboxClient(base)
    before = sandbox.configure()
    connected: list[str] = []
    try:
        for platform, subject in LOGINS:
            sandbox.configure(connect_consent="approve", connect_subject=subject)
            inputs = {"instance": f"{base}/mastodon"} if platform == "mastodon" else {}
            started = await service.start(
                workspace_id=workspace.id, platform=platform, inputs=inputs, actor="demo"
            )
            consent = await runtime.http.get(started.authorize_url)
            back = flows.read_pasted(consent.headers.get("location", ""))
            connected += _connected(
                await service.callback(state=back.state, code=back.code, error=back.error)
            )
        direct = await service.connect_direct(
            workspace_id=workspace.id,
            platform="bluesky",
            inputs={**BLUESKY_LOGIN, "service": f"{base}/bluesky"},
            actor="demo",
        )
        connected += _connected(direct)
    finally:
        sandbox.configure(
            connect_consent=before["connect_consent"], connect_subject=before["connect_subject"]
        )
        sandbox.close()
    async with runtime.db.transaction() as session:
        for account in await session.scalars(select(Account).where(Account.id.in_(connected))):
            account.options = {**account.options, demo_rows.ACCOUNT_FLAG: True}
    return connected


def _connected(finished: Finished) -> list[str]:
    if finished.status != "done":
        raise DemoConnectFailed(finished.message or "the sandbox did not connect a demo account")
    return finished.account_ids


class DemoConnectFailed(PostpilotError):
    """A demo account could not be connected through the sandbox."""


async def _accounts(
    session: AsyncSession, workspace: Workspace, cipher: CredentialCipher, sandbox_url: str
) -> list[Account]:
    existing = await demo_rows.accounts(session, workspace_id=workspace.id)
    if existing:  # connected through the flows (connect_accounts), or written before
        return sorted(existing, key=lambda a: (a.platform, a.handle))
    made = [
        Account(
            workspace_id=workspace.id,
            platform=platform,
            handle=handle,
            base_url=f"{sandbox_url.rstrip('/')}/{platform}",
            options={demo_rows.ACCOUNT_FLAG: True},
            credentials=cipher.encrypt(credentials),
        )
        for platform, handle, credentials in ACCOUNTS
    ]
    session.add_all(made)
    await session.flush()
    return sorted(made, key=lambda a: (a.platform, a.handle))


def post_text(index: int, batch: str) -> str:
    """Varied texts, unique per seeding (`batch`): X refuses a repeated text for a day, so a
    second seeding must not repeat the first one's."""
    base = TEXTS[index % len(TEXTS)]
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
    texts: dict[str, str] = {}
    targets_of: dict[str, int] = {}
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
                source=demo_rows.SOURCE,
                now=now,
            )
            ids.append(post.id)
            texts[post.id] = text
            targets_of[post.id] = len(targets)
            deliveries += len(targets)
        return Seeded(
            workspace_id=workspace.id,
            account_ids=[a.id for a in accounts],
            platforms=sorted({a.platform for a in accounts}),
            post_ids=ids,
            deliveries=deliveries,
            first_due=start,
            last_due=start + step * (count - 1),
            texts=texts,
            targets=targets_of,
            handles={a.id: a.handle for a in accounts},
        )


async def new_api_key(db: Database, *, workspace_id: str) -> str:
    """A fresh key to the demo workspace, for trying the API on the demo's posts."""
    async with db.transaction() as session:
        return await workspaces.create_api_key(session, workspace_id=workspace_id, name="demo")


DEMO_OWNER = "demo@example.com"


async def demo_owner(db: Database, *, workspace_id: str, now: datetime) -> str:
    """The demo workspace's owner, `demo@example.com`, with a new random password (returned,
    to print): someone trying the demo signs in to the web app and sees the demo's posts."""
    password = passwords.new_password()
    hashed = passwords.hash_password(password)
    async with db.transaction() as session:
        user = await users.user_by_email(session, DEMO_OWNER)
        if user is None:
            user = await users.create_user(session, email=DEMO_OWNER, password_hash=hashed, now=now)
        else:
            user.password_hash = hashed  # a new demo run, a new password
        await users.add_membership(
            session, user=user, workspace_id=workspace_id, role=Role.OWNER, actor="demo", now=now
        )
    return password


async def clean(db: Database) -> Cleaned:
    """Remove the demo's rows and nothing else, in one transaction."""
    async with db.transaction() as session:
        return await demo_rows.remove(session)
