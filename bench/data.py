"""Benchmark data: a migrated database (a PostgreSQL database copied from a template, or a SQLite
file copied from a migrated one), M accounts over K platforms, and N due deliveries inserted with
bulk SQL (generate_series on PostgreSQL, executemany on SQLite), never through the API."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert

from bench import common
from postpilot.crypto import CredentialCipher
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.schema import upgrade
from postpilot.store.tables import Account, Delivery, Post, Workspace, table_of

accounts_table = table_of(Account)
posts_table = table_of(Post)
deliveries_table = table_of(Delivery)
workspaces_table = table_of(Workspace)

MEDIA_VARIANTS = 5  # distinct images among the posts that carry one


@dataclass(frozen=True)
class Load:
    """What to generate: N deliveries (one post each) over M accounts on K platforms, due from
    `start`, one every `step`; every `media_every`-th post carries one of a few images."""

    deliveries: int
    accounts: int
    platforms: tuple[str, ...]
    start: datetime
    step: timedelta
    media_every: int = 0
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def text(self, index: int) -> str:
        return f"bench {self.tag} #{index}"


def due_load(
    deliveries: int,
    accounts: int,
    platforms: tuple[str, ...],
    *,
    media_every: int = 0,
    spread: timedelta = timedelta(hours=1),
) -> Load:
    """N deliveries all due already, spread over the past `spread` (distinct seconds: Bluesky's
    record keys derive from the scheduled second)."""
    now = datetime.now(UTC)
    return Load(
        deliveries=deliveries,
        accounts=accounts,
        platforms=platforms,
        start=now - spread,
        step=spread / max(1, deliveries),
        media_every=media_every,
    )


def did_for(index: int, tag: str) -> str:
    return "did:plc:" + hashlib.sha256(f"bench-{tag}-{index}".encode()).hexdigest()[:24]


def account_rows(
    load: Load, *, workspace_id: str, sandbox: SandboxClient, now: datetime
) -> list[dict[str, Any]]:
    """M accounts, round-robin over the platforms, with tokens the sandbox accepts (issued by it
    for X and Bluesky, so each account has its own subject, rate window and repository)."""
    cipher = CredentialCipher(common.SECRET_KEY)
    rows = []
    for index in range(load.accounts):
        platform = load.platforms[index % len(load.platforms)]
        expires: datetime | None = None
        handle = f"bench{index}"
        if platform == "mastodon":
            credentials: dict[str, Any] = {"access_token": f"bench-{load.tag}-{index}"}
        elif platform == "bluesky":
            did = did_for(index, load.tag)
            issued = sandbox.issue_token("bluesky", did, expires_in=86_400)
            credentials = {
                "did": did,
                "access_jwt": issued["access_token"],
                "refresh_jwt": issued["refresh_token"],
            }
            expires = now + timedelta(seconds=86_400)
            handle = f"bench{index}.bsky.social"
        else:
            issued = sandbox.issue_token(platform, f"{handle}-{load.tag}", expires_in=86_400)
            credentials = {
                "access_token": issued["access_token"],
                "refresh_token": issued.get("refresh_token"),
            }
            expires = now + timedelta(seconds=86_400)
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "workspace_id": workspace_id,
                "platform": platform,
                "handle": handle,
                "base_url": sandbox.platform_url(platform),
                "options": {},
                "credentials": cipher.encrypt(credentials),
                "credentials_version": 1,
                "token_expires_at": expires,
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def media_url(load: Load, index: int, sandbox_url: str) -> list[str]:
    if load.media_every and index % load.media_every == 1:
        return [f"{sandbox_url}/_sandbox/media/bench-{index % MEDIA_VARIANTS}.png"]
    return []


# --- databases ---------------------------------------------------------------------------------


class Template:
    """A migrated database to copy for each run: PostgreSQL TEMPLATE, or a SQLite file copy."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.name = common.scratch_name("pp_bench_tpl") if kind == "postgresql" else ""
        self.path = workdir / "template.db"
        self._made: list[str] = []

    async def build(self) -> None:
        if self.kind == "postgresql":
            await common.pg_admin(f'CREATE DATABASE "{self.name}"')
            db = Database(common.pg_url(self.name))
        else:
            self.workdir.mkdir(parents=True, exist_ok=True)
            db = Database(f"sqlite+aiosqlite:///{self.path}")
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    async def copy(self) -> str:
        """A fresh migrated database; returns its URL."""
        if self.kind == "postgresql":
            name = common.scratch_name()
            await common.pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
            self._made.append(name)
            return common.pg_url(name)
        path = self.workdir / f"run-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(self.path, path)
        self._made.append(str(path))
        return f"sqlite+aiosqlite:///{path}"

    async def drop(self, url: str) -> None:
        if self.kind == "postgresql":
            name = url.rsplit("/", 1)[1]
            await common.pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite+aiosqlite:///") + suffix).unlink(missing_ok=True)

    async def close(self) -> None:
        if self.kind == "postgresql":
            for name in self._made:
                await common.pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await common.pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.workdir, ignore_errors=True)


async def populate(url: str, load: Load, sandbox: SandboxClient) -> str:
    """Insert a workspace, the accounts and the deliveries; returns the workspace id."""
    now = datetime.now(UTC)
    workspace_id = str(uuid.uuid4())
    accounts = account_rows(load, workspace_id=workspace_id, sandbox=sandbox, now=now)
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(workspaces_table), [{"id": workspace_id, "name": "bench", "created_at": now}]
            )
            await conn.execute(insert(accounts_table), accounts)
    finally:
        await db.dispose()
    if url.startswith("postgresql"):
        await _populate_pg(url, load, workspace_id, accounts, sandbox.url, now)
    else:
        await _populate_sqlite(url, load, workspace_id, accounts, sandbox.url, now)
    return workspace_id


async def _populate_sqlite(
    url: str,
    load: Load,
    workspace_id: str,
    accounts: list[dict[str, Any]],
    sandbox_url: str,
    now: datetime,
) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            chunk = 20_000
            for first in range(0, load.deliveries, chunk):
                posts, deliveries = [], []
                for index in range(first, min(load.deliveries, first + chunk)):
                    post_id, at = str(uuid.uuid4()), load.start + load.step * index
                    account = accounts[index % len(accounts)]
                    posts.append(
                        {
                            "id": post_id,
                            "workspace_id": workspace_id,
                            "text": load.text(index),
                            "media_urls": media_url(load, index, sandbox_url),
                            "overrides": {},
                            "scheduled_at": at,
                            "timezone": "UTC",
                            "source": "bench",
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                    deliveries.append(
                        {
                            "id": str(uuid.uuid4()),
                            "workspace_id": workspace_id,
                            "post_id": post_id,
                            "account_id": account["id"],
                            "platform": account["platform"],
                            "status": "scheduled",
                            "scheduled_at": at,
                            "due_at": at,
                            "attempts": 0,
                            "idempotency_key": str(uuid.uuid4()),
                            "recovered": False,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                await conn.execute(insert(posts_table), posts)
                await conn.execute(insert(deliveries_table), deliveries)
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()


_PG_POSTS = """
INSERT INTO posts (id, workspace_id, text, media_urls, overrides, scheduled_at, timezone, source,
                   version, created_at, updated_at)
SELECT g.post_id, $1::text, 'bench ' || $2::text || ' #' || g.i,
       CASE WHEN $3::int > 0 AND g.i % $3::int = 1
            THEN json_build_array($4::text || '/_sandbox/media/bench-' || (g.i % $5::int) || '.png')
            ELSE '[]'::json END,
       '{}'::json, $6::timestamptz + g.i * $7::interval, 'UTC', 'bench', 1,
       $8::timestamptz, $8::timestamptz
FROM bench_gen g
"""
_PG_DELIVERIES = """
INSERT INTO deliveries (id, workspace_id, post_id, account_id, platform, status, scheduled_at,
                        due_at, attempts, idempotency_key, recovered, created_at, updated_at)
SELECT g.delivery_id, $1::text, g.post_id, a.id, a.platform, 'scheduled',
       $2::timestamptz + g.i * $3::interval, $2::timestamptz + g.i * $3::interval, 0,
       gen_random_uuid()::text, false, $4::timestamptz, $4::timestamptz
FROM bench_gen g JOIN bench_accounts a ON a.idx = g.i % $5::int
"""


async def _populate_pg(
    url: str,
    load: Load,
    workspace_id: str,
    accounts: list[dict[str, Any]],
    sandbox_url: str,
    now: datetime,
) -> None:
    conn = await asyncpg.connect(common.pg_dsn(url.rsplit("/", 1)[1]))
    try:
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE bench_gen AS SELECT i, gen_random_uuid()::text AS post_id, "
                "gen_random_uuid()::text AS delivery_id FROM generate_series(0, $1::int - 1) i",
                load.deliveries,
            )
            await conn.execute("CREATE TEMP TABLE bench_accounts (idx int, id text, platform text)")
            await conn.executemany(
                "INSERT INTO bench_accounts VALUES ($1, $2, $3)",
                [(i, a["id"], a["platform"]) for i, a in enumerate(accounts)],
            )
            await conn.execute(
                _PG_POSTS,
                workspace_id,
                load.tag,
                load.media_every,
                sandbox_url,
                MEDIA_VARIANTS,
                load.start,
                load.step,
                now,
            )
            await conn.execute(
                _PG_DELIVERIES, workspace_id, load.start, load.step, now, len(accounts)
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# --- reading back ------------------------------------------------------------------------------


async def status_counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT status, count(*) FROM deliveries GROUP BY status"
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        await db.dispose()


async def published_texts(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT p.text FROM deliveries d JOIN posts p ON p.id = d.post_id "
                "WHERE d.status = 'published'"
            )
            return [str(row[0]) for row in rows]
    finally:
        await db.dispose()


async def lateness_ms(url: str) -> list[float]:
    """published_at - scheduled_at of every published delivery, in milliseconds."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT scheduled_at, published_at FROM deliveries WHERE status = 'published'"
            )
            return [_ms(published, scheduled) for scheduled, published in rows]
    finally:
        await db.dispose()


def _ms(later: Any, earlier: Any) -> float:
    def aware(value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return (aware(later) - aware(earlier)).total_seconds() * 1000


def run(coro: Any) -> Any:
    return asyncio.run(coro)
