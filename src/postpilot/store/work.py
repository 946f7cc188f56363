"""The scheduler's queries: claim due deliveries under a lease, load what they need, write
outcomes back in bulk. A pass costs the same few statements whatever its batch size."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Text, column, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core.events import EVENT_TYPES, Message
from postpilot.core.states import AccountStatus, DeliveryStatus
from postpilot.core.timezones import as_utc
from postpilot.core.transitions import DeliverySnapshot, Transition
from postpilot.store import activity, bulk, webhooks
from postpilot.store.tables import Account, Delivery, Post, table_of

deliveries = table_of(Delivery)
posts = table_of(Post)
accounts = table_of(Account)

PENDING = (DeliveryStatus.SCHEDULED.value, DeliveryStatus.CLAIMED.value)


@dataclass(frozen=True, slots=True)
class Overdue:
    count: int
    oldest_due_at: datetime | None


async def overdue_deliveries(conn: AsyncConnection, *, due_before: datetime) -> Overdue:
    """Deliveries still waiting (scheduled, or claimed under a lease that ran out) whose due
    time passed before `due_before`: one range scan of the pending-due index."""
    row = (
        await conn.execute(
            select(func.count(), func.min(deliveries.c.due_at)).where(
                deliveries.c.status.in_(PENDING), deliveries.c.due_at < due_before
            )
        )
    ).one()
    count, oldest = int(row[0] or 0), row[1]
    return Overdue(count, as_utc(oldest) if oldest is not None else None)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: str
    workspace_id: str
    post_id: str
    account_id: str
    platform: str
    attempts: int
    scheduled_at: datetime
    due_at: datetime
    idempotency_key: str
    recovered: bool  # its previous holder's lease ran out: an attempt may be in flight
    previous_claimer: str | None = None  # that holder's pass id, when recovered

    @property
    def snapshot(self) -> DeliverySnapshot:
        return DeliverySnapshot(
            status=DeliveryStatus.CLAIMED, attempts=self.attempts, due_at=self.due_at
        )


@dataclass(frozen=True, slots=True)
class PostContent:
    id: str
    text: str
    media_urls: tuple[str, ...]
    overrides: dict[str, str]
    version: int
    account_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A thread's replies ([{"text", "media_urls"}]) or a first comment (scheduler/parts.py).
    thread: tuple[dict[str, Any], ...] = ()
    first_comment: str | None = None


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: str
    workspace_id: str
    platform: str
    handle: str
    base_url: str | None
    options: dict[str, Any]
    credentials: str  # encrypted
    credentials_version: int
    token_expires_at: datetime | None
    status: str
    status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    delivery: ClaimedDelivery
    post: PostContent
    account: AccountRecord


@dataclass(frozen=True, slots=True)
class Decision:
    """A transition decided for a claimed delivery, ready to be written."""

    delivery: ClaimedDelivery
    transition: Transition


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What a pass learned about an account, written with the outcomes."""

    account_id: str
    credentials: str | None = None  # encrypted, after a successful refresh
    token_expires_at: datetime | None = None
    needs_reconnect: str | None = None  # the reason, after a failed refresh
    # The credentials version the change was decided on: written only while it is still the
    # stored one, so a change never undoes another worker's newer credentials.
    credentials_version: int | None = None


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    """An account's credentials as stored now (re-read to renew a token across workers)."""

    credentials: str  # encrypted
    credentials_version: int
    token_expires_at: datetime | None
    status: str
    status_reason: str | None


CLAIM_COLUMNS = (
    deliveries.c.id,
    deliveries.c.workspace_id,
    deliveries.c.post_id,
    deliveries.c.account_id,
    deliveries.c.platform,
    deliveries.c.attempts,
    deliveries.c.scheduled_at,
    deliveries.c.due_at,
    deliveries.c.idempotency_key,
    deliveries.c.recovered,
    deliveries.c.previous_claimer,
)


def _claim_statement(*, now: datetime, limit: int, claimer: str, lease: timedelta) -> Any:
    """Take up to `limit` due rows: scheduled ones whose time has come, and claimed ones whose
    lease ran out. PostgreSQL skips rows another worker is taking; SQLite has one writer."""
    due = (
        select(deliveries.c.id)
        .where(deliveries.c.status.in_(PENDING), deliveries.c.due_at <= now)
        .order_by(deliveries.c.due_at, deliveries.c.id)  # a total order: same for every pass
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(due.scalar_subquery()))
        .values(
            # SET sees the old row: a row that was already claimed is a recovered lease.
            recovered=deliveries.c.status == DeliveryStatus.CLAIMED.value,
            previous_claimer=deliveries.c.claimed_by,
            status=DeliveryStatus.CLAIMED.value,
            claimed_by=claimer,
            claimed_until=now + lease,
            due_at=now + lease,
            updated_at=now,
        )
        .returning(*CLAIM_COLUMNS)
    )


_POST_COLUMNS = (
    posts.c.id.label("post_id"),
    posts.c.text,
    posts.c.media_urls,
    posts.c.overrides,
    posts.c.version,
    posts.c.account_overrides,
    posts.c.thread,
    posts.c.first_comment,
)
_ACCOUNT_COLUMNS = (
    accounts.c.id.label("account_id"),
    accounts.c.workspace_id.label("account_workspace_id"),
    accounts.c.platform.label("account_platform"),
    accounts.c.handle,
    accounts.c.base_url,
    accounts.c.options,
    accounts.c.credentials,
    accounts.c.credentials_version,
    accounts.c.token_expires_at,
    accounts.c.status.label("account_status"),
    accounts.c.status_reason.label("account_status_reason"),
)


def content_columns() -> tuple[Any, ...]:
    return (*_POST_COLUMNS, *_ACCOUNT_COLUMNS)


def _load_statement(ids: Sequence[str]) -> Any:
    return (
        select(deliveries.c.id.label("delivery_id"), *content_columns())
        .select_from(
            deliveries.join(posts, posts.c.id == deliveries.c.post_id).join(
                accounts, accounts.c.id == deliveries.c.account_id
            )
        )
        .where(deliveries.c.id.in_(ids))
    )


async def claim(
    conn: AsyncConnection, *, now: datetime, limit: int, claimer: str, lease: timedelta
) -> list[WorkItem]:
    """Claim and load a batch: one statement on PostgreSQL (UPDATE in a CTE), two on SQLite.

    The caller commits right after, so other workers see the lease at once."""
    claim_stmt = _claim_statement(now=now, limit=limit, claimer=claimer, lease=lease)
    if conn.dialect.name == "postgresql":
        claimed_cte = claim_stmt.cte("claimed")
        joined = claimed_cte.join(posts, posts.c.id == claimed_cte.c.post_id).join(
            accounts, accounts.c.id == claimed_cte.c.account_id
        )
        rows = (
            await conn.execute(
                # The CTE already carries post_id and account_id: take the rest of the content.
                select(
                    claimed_cte,
                    *[c for c in content_columns() if c.name not in ("post_id", "account_id")],
                ).select_from(joined)
            )
        ).all()
        return [work_item(row, row) for row in rows]
    claimed = await claim_rows(conn, now=now, limit=limit, claimer=claimer, lease=lease)
    if not claimed:
        return []
    by_id = {row.delivery_id: row for row in await _load(conn, [row.id for row in claimed])}
    return [work_item(row, by_id[row.id]) for row in claimed if row.id in by_id]


async def claim_rows(
    conn: AsyncConnection, *, now: datetime, limit: int, claimer: str, lease: timedelta
) -> Sequence[Row[Any]]:
    """Only the claim, without loading posts and accounts (the reference scheduler's way)."""
    stmt = _claim_statement(now=now, limit=limit, claimer=claimer, lease=lease)
    return (await conn.execute(stmt)).all()


async def _load(conn: AsyncConnection, ids: Sequence[str]) -> Sequence[Row[Any]]:
    return (await conn.execute(_load_statement(ids))).all()


async def load_separately(conn: AsyncConnection, claimed: Row[Any]) -> WorkItem | None:
    """Load one claimed delivery's post, then its account: the natural per-row queries."""
    post = (
        await conn.execute(select(*_POST_COLUMNS).where(posts.c.id == claimed.post_id))
    ).one_or_none()
    account = (
        await conn.execute(select(*_ACCOUNT_COLUMNS).where(accounts.c.id == claimed.account_id))
    ).one_or_none()
    if post is None or account is None:
        return None
    return WorkItem(delivery=_claimed(claimed), post=_post(post), account=_account(account))


def work_item(claimed: Any, loaded: Any) -> WorkItem:
    return WorkItem(delivery=_claimed(claimed), post=_post(loaded), account=_account(loaded))


def _claimed(claimed: Any) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=claimed.id,
        workspace_id=claimed.workspace_id,
        post_id=claimed.post_id,
        account_id=claimed.account_id,
        platform=claimed.platform,
        attempts=claimed.attempts,
        scheduled_at=as_utc(claimed.scheduled_at),
        due_at=as_utc(claimed.due_at),
        idempotency_key=claimed.idempotency_key,
        recovered=bool(claimed.recovered),
        previous_claimer=claimed.previous_claimer if claimed.recovered else None,
    )


def _post(loaded: Any) -> PostContent:
    return PostContent(
        id=loaded.post_id,
        text=loaded.text,
        media_urls=tuple(loaded.media_urls or ()),
        overrides=dict(loaded.overrides or {}),
        version=loaded.version,
        account_overrides=dict(loaded.account_overrides or {}),
        thread=tuple(loaded.thread or ()),
        first_comment=loaded.first_comment,
    )


def _account(loaded: Any) -> AccountRecord:
    return AccountRecord(
        id=loaded.account_id,
        workspace_id=loaded.account_workspace_id,
        platform=loaded.account_platform,
        handle=loaded.handle,
        base_url=loaded.base_url,
        options=dict(loaded.options or {}),
        credentials=loaded.credentials,
        credentials_version=loaded.credentials_version,
        token_expires_at=as_utc(loaded.token_expires_at) if loaded.token_expires_at else None,
        status=loaded.account_status,
        status_reason=loaded.account_status_reason,
    )


_OUTCOME_COLUMNS: tuple[tuple[str, bulk.ColumnType], ...] = (
    ("id", "text"),
    ("status", "text"),
    ("attempts", "int"),
    ("due_at", "timestamptz"),
    ("last_error", "text"),
    ("platform_post_id", "text"),
    ("platform_url", "text"),
    ("published_at", "timestamptz"),
)


async def apply_decisions(
    conn: AsyncConnection,
    decisions: Sequence[Decision],
    *,
    claimer: str,
    now: datetime,
    entries: Sequence[activity.Entry] = (),
    events: Mapping[str, Message] | None = None,
) -> set[str]:
    """Write every decision, only where the lease is still `claimer`'s own, append the
    activity `entries` of the deliveries written and put their `events` (by delivery id) in the
    webhook outbox: one statement on PostgreSQL (the append is a data-modifying CTE), two on
    SQLite, and one more for the outbox only when a written delivery's workspace has an enabled
    subscription that wants its event. The statement that writes the outcomes returns those
    subscriptions (no lookup of its own, nothing cached), so an event is in the outcome's
    transaction: both are committed or neither.

    Returns the ids written; a delivery someone else took over in the meantime is left alone,
    and so are its entries and events."""
    if not decisions:
        return set()
    dialect = conn.dialect.name
    rows = bulk.json_rows(dialect, _OUTCOME_COLUMNS)
    v = rows.columns
    d = "deliveries"
    listening = f", {_listeners_sql(dialect)} AS listeners" if events else ""
    update_sql = f"""
        UPDATE deliveries SET
            status = {v["status"]}, attempts = {v["attempts"]}, due_at = {v["due_at"]},
            last_error = {v["last_error"]}, platform_post_id = {v["platform_post_id"]},
            platform_url = {v["platform_url"]}, published_at = {v["published_at"]},
            claimed_by = NULL, claimed_until = NULL, recovered = false, updated_at = :now
        FROM {rows.from_clause}
        WHERE {d}.id = {v["id"]} AND {d}.claimed_by = :claimer
            AND {d}.status = '{DeliveryStatus.CLAIMED.value}'
        RETURNING {d}.id{listening}
    """
    payload = bulk.encode(
        dialect,
        (
            {
                "id": dec.delivery.id,
                "status": dec.transition.status.value,
                "attempts": dec.transition.attempts,
                "due_at": dec.transition.due_at,
                "last_error": dec.transition.error,
                "platform_post_id": dec.transition.platform_post_id,
                "platform_url": dec.transition.platform_url,
                "published_at": dec.transition.published_at,
            }
            for dec in decisions
        ),
    )
    params: dict[str, Any] = {"payload": payload, "claimer": claimer, "now": now}
    if entries and dialect == "postgresql":
        logged = bulk.json_rows(dialect, (*activity.COLUMNS, ("n", "int")), "a", "entries")
        names = ", ".join(name for name, _ in activity.COLUMNS)
        values = ", ".join(logged.columns[name] for name, _ in activity.COLUMNS)
        sql = f"""
            WITH applied AS ({update_sql}),
            logged AS (
                INSERT INTO activity ({names})
                SELECT {values} FROM {logged.from_clause}
                JOIN applied ON applied.id = {logged.columns["delivery_id"]}
                ORDER BY {logged.columns["n"]}
            )
            SELECT id{", listeners" if events else ""} FROM applied
        """
        params["entries"] = _entry_rows(dialect, entries)
    else:
        sql = update_sql
    returned = [deliveries.c.id, column("listeners", Text)] if events else [deliveries.c.id]
    result = (await conn.execute(text(sql).bindparams(**params).columns(*returned))).all()
    applied = {row[0] for row in result}
    if entries and dialect != "postgresql":
        await activity.append(conn, [e for e in entries if e.delivery_id in applied])
    if events:
        listening_rows = [(row[0], row[1]) for row in result]
        await webhooks.enqueue(conn, _outbox_entries(listening_rows, events), now=now)
    return applied


# An applied delivery's workspace's enabled subscriptions, as JSON [[id, events], ...], only for
# a delivery whose new status is an event's (SET has run: RETURNING sees the new row).
_EVENT_STATUSES = ", ".join(f"'{status.value}'" for status in EVENT_TYPES)
_SUBSCRIBED = (
    "FROM webhook_subscriptions s WHERE s.workspace_id = deliveries.workspace_id AND s.enabled"
)


def _listeners_sql(dialect: str) -> str:
    if dialect == "postgresql":
        found = f"SELECT CAST(json_agg(json_build_array(s.id, s.events)) AS text) {_SUBSCRIBED}"
    else:
        found = f"SELECT json_group_array(json_array(s.id, json(s.events))) {_SUBSCRIBED}"
    return f"CASE WHEN deliveries.status IN ({_EVENT_STATUSES}) THEN ({found}) END"


def _outbox_entries(
    returned: Sequence[tuple[str, str | None]], events: Mapping[str, Message]
) -> list[webhooks.Entry]:
    """The outbox rows of the written deliveries' events, for the subscriptions the outcome
    statement returned with them. Pure."""
    messages, found = [], {}
    for delivery_id, listeners in returned:
        if not listeners:
            continue  # before the event: its payload is built only when it is read
        message = events.get(delivery_id)
        if message is None:
            continue
        messages.append(message)
        for subscription_id, wanted in json.loads(listeners):
            listener = webhooks.Listener(subscription_id, message.workspace_id, list(wanted or []))
            found[subscription_id] = listener
    return webhooks.entries(messages, list(found.values()))


def _entry_rows(dialect: str, entries: Sequence[activity.Entry]) -> str:
    """Activity entries as JSON rows, numbered so that they are appended in their order."""
    return bulk.encode(
        dialect,
        (
            {**{name: getattr(entry, name) for name, _ in activity.COLUMNS}, "n": n}
            for n, entry in enumerate(entries)
        ),
    )


async def release(conn: AsyncConnection, ids: Sequence[str], *, claimer: str, now: datetime) -> int:
    """Give claimed deliveries back untouched (a worker stopping before it sent them)."""
    if not ids:
        return 0
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id.in_(ids),
            deliveries.c.claimed_by == claimer,
            deliveries.c.status == DeliveryStatus.CLAIMED.value,
        )
        .values(
            status=DeliveryStatus.SCHEDULED.value,
            claimed_by=None,
            claimed_until=None,
            recovered=False,
            due_at=now,
            updated_at=now,
        )
    )
    return int(result.rowcount)


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    """When the next pending delivery needs attention (due time or lease end)."""
    value = (
        await conn.execute(
            select(func.min(deliveries.c.due_at)).where(deliveries.c.status.in_(PENDING))
        )
    ).scalar_one_or_none()
    return as_utc(value) if value is not None else None


async def extend_lease(conn: AsyncConnection, *, claimer: str, until: datetime) -> int:
    """Keep a long pass's unfinished deliveries from being taken over while it still works."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.claimed_by == claimer,
            deliveries.c.status == DeliveryStatus.CLAIMED.value,
        )
        .values(claimed_until=until, due_at=until)
    )
    return int(result.rowcount)


async def apply_account_changes(
    conn: AsyncConnection, changes: Sequence[AccountChange], *, now: datetime
) -> None:
    """Rare (a refresh, a dead token): one statement per change is fine here. A change that
    names a credentials version applies only while that version is still the stored one."""
    for change in changes:
        where = [accounts.c.id == change.account_id]
        if change.credentials_version is not None:
            where.append(accounts.c.credentials_version == change.credentials_version)
        if change.credentials is not None:
            await conn.execute(
                update(accounts)
                .where(*where)
                .values(
                    credentials=change.credentials,
                    credentials_version=accounts.c.credentials_version + 1,
                    token_expires_at=change.token_expires_at,
                    status=AccountStatus.ACTIVE.value,
                    status_reason=None,
                    updated_at=now,
                )
            )
        elif change.needs_reconnect is not None:
            await conn.execute(
                update(accounts)
                .where(*where, accounts.c.status == AccountStatus.ACTIVE.value)
                .values(
                    status=AccountStatus.NEEDS_RECONNECT.value,
                    status_reason=change.needs_reconnect,
                    updated_at=now,
                )
            )


async def read_credentials(
    conn: AsyncConnection, account_id: str, *, lock: bool = False
) -> StoredCredentials | None:
    """The account's stored credentials. With `lock` (PostgreSQL), the row stays locked until
    the transaction ends: other workers renewing the same token wait here, then see the new
    version. NO KEY UPDATE, so inserting deliveries for the account (a foreign key) still goes on.
    """
    query = select(
        accounts.c.credentials,
        accounts.c.credentials_version,
        accounts.c.token_expires_at,
        accounts.c.status,
        accounts.c.status_reason,
    ).where(accounts.c.id == account_id, accounts.c.deleted_at.is_(None))
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    return StoredCredentials(
        credentials=row.credentials,
        credentials_version=row.credentials_version,
        token_expires_at=as_utc(row.token_expires_at) if row.token_expires_at else None,
        status=row.status,
        status_reason=row.status_reason,
    )


async def swap_credentials(
    conn: AsyncConnection,
    account_id: str,
    *,
    expected_version: int,
    credentials: str,
    token_expires_at: datetime | None,
    now: datetime,
) -> bool:
    """Store renewed credentials only if `expected_version` is still the stored one (compare and
    swap): False when another worker (or a person) changed them first."""
    result = await conn.execute(
        update(accounts)
        .where(
            accounts.c.id == account_id,
            accounts.c.credentials_version == expected_version,
            accounts.c.deleted_at.is_(None),
        )
        .values(
            credentials=credentials,
            credentials_version=expected_version + 1,
            token_expires_at=token_expires_at,
            status=AccountStatus.ACTIVE.value,
            status_reason=None,
            updated_at=now,
        )
    )
    return int(result.rowcount) == 1
