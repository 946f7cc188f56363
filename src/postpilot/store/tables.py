"""SQLAlchemy 2 tables. Every id is a UUID string so rows move between SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from postpilot.core.knobs import DEFAULT_SCHEDULER
from postpilot.core.states import AccountStatus, AlertStatus, DeliveryStatus, WorkerState

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Partial-index conditions, in the words the migrations wrote them.
_PENDING_WHERE = f"status IN ('{DeliveryStatus.SCHEDULED.value}', '{DeliveryStatus.CLAIMED.value}')"
_FIRING_WHERE = f"status = '{AlertStatus.FIRING.value}'"

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a model, typed as a `Table` (`Model.__table__` is typed as a
    `FromClause`), for queries written in SQLAlchemy Core."""
    return Base.metadata.tables[model.__tablename__]


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Written at most once a minute per key: a write per request would cost every request.
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` on `POST /api/posts`: the primary key makes a concurrent
    duplicate fail at insert, and the stored answer is replayed to a retry."""

    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical body
    # How request_hash was made (store/idempotency.py): keys stored before version 2 are 1.
    fingerprint_version: Mapped[int] = mapped_column(Integer, server_default="1")
    post_id: Mapped[str | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(200))
    # Instance / server / API base for platforms that have one (Mastodon, Bluesky, Matrix).
    base_url: Mapped[str | None] = mapped_column(String(500))
    # Non-secret per-platform settings (chat id, page id, channel...).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    credentials: Mapped[str] = mapped_column(Text)  # Fernet token of a JSON object
    # Bumped on every credentials change: caches key on it so an edit is never served stale.
    credentials_version: Mapped[int] = mapped_column(Integer, default=1)
    token_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(32), default=AccountStatus.ACTIVE.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The platform's stable id for what the account posts as (user, Page, channel, room), set
    # when it was connected through a flow: connecting it again updates this account.
    platform_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index(None, "workspace_id", "platform", "platform_id"),)


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    media_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    # platform -> text that replaces `text` for that platform.
    overrides: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    scheduled_at: Mapped[datetime] = mapped_column(Timestamp)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Free-form label; `demo` marks rows that `postpilot demo clean` may remove.
    source: Mapped[str] = mapped_column(String(32), default="api")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # account id -> {"text", "media_ids"?}: replaces `overrides` for that account
    # (core/variants.py decides which text and media a delivery publishes).
    account_overrides: Mapped[dict[str, dict[str, Any]]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    # The importer's id for a post from a CSV row: importing the row again finds this post.
    external_id: Mapped[str | None] = mapped_column(String(255))
    # Replies that follow the post on platforms with threads: [{"text", "media_urls"}], and
    # the comment put under it on platforms with comments (see store/parts.py).
    thread: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    first_comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(None, "workspace_id", "scheduled_at"),
        Index(None, "workspace_id", "external_id", unique=True),
        Index(None, "workspace_id", "created_at", "id"),  # the v1 list's keyset pages
    )


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # No index of its own: the unique (post_id, account_id) below serves lookups by post.
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.SCHEDULED.value)
    scheduled_at: Mapped[datetime] = mapped_column(Timestamp)  # the user's time, for lateness
    due_at: Mapped[datetime] = mapped_column(Timestamp)  # next attempt
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Reused by every attempt, so platforms with idempotency never double-post on a retry.
    idempotency_key: Mapped[str] = mapped_column(String(64), default=new_id)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    # Set by the claim when it took over an expired lease: the last attempt may be in flight.
    recovered: Mapped[bool] = mapped_column(Boolean, default=False)
    # The pass whose lease ran out, so recovery can ask its in-flight journal what it sent.
    previous_claimer: Mapped[str | None] = mapped_column(String(64))
    platform_post_id: Mapped[str | None] = mapped_column(String(500))
    platform_url: Mapped[str | None] = mapped_column(String(1000))
    last_error: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (
        UniqueConstraint("post_id", "account_id"),
        # The claim is one range scan of this index whatever the table size: due_at is the next
        # moment a pending row needs attention (its due time, or its lease end once claimed).
        Index(
            "ix_deliveries_pending_due",
            "due_at",
            "id",
            postgresql_where=text(_PENDING_WHERE),
            sqlite_where=text(_PENDING_WHERE),
        ),
        Index(None, "workspace_id", "status"),
        Index(None, "workspace_id", "created_at", "id"),  # the v1 list's keyset pages
    )


class Activity(Base):
    __tablename__ = "activity"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Indexed with id below: a workspace's activity, newest first, in keyset pages.
    workspace_id: Mapped[str] = mapped_column(String(36))
    post_id: Mapped[str | None] = mapped_column(String(36))
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="system")  # api, reference, optimized
    pass_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index(None, "post_id", "id"), Index(None, "workspace_id", "id"))


class SchedulerSettings(Base):
    """The one row saying which scheduler runs and with which knobs; workers re-read it every
    pass, so `postpilot scheduler use/tune` takes effect without a restart."""

    __tablename__ = "scheduler_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    active_scheduler: Mapped[str] = mapped_column(String(16), default=DEFAULT_SCHEDULER.value)
    concurrency: Mapped[int | None] = mapped_column(Integer)  # None: SCHEDULER_CONCURRENCY
    batch_size: Mapped[int | None] = mapped_column(Integer)  # None: SCHEDULER_BATCH_SIZE
    interval_seconds: Mapped[float | None] = mapped_column()  # None: wake when work is due
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="system")


class SchedulerChange(Base):
    """Audit trail of every switch and tune: who, when, from, to."""

    __tablename__ = "scheduler_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    setting: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str | None] = mapped_column(String(64))


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_beat_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=WorkerState.RUNNING.value)


class PassMetric(Base):
    """One row per scheduler pass that claimed something (ENABLE_PERFORMANCE_MONITORING), written
    by the monitor after the pass. Samples are kept so windowed percentiles are exact."""

    __tablename__ = "pass_metrics"

    pass_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    scheduler: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    duration_ms: Mapped[float] = mapped_column()
    batch_limit: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[int] = mapped_column(Integer, default=0)
    released: Mapped[int] = mapped_column(Integer, default=0)
    lost_lease: Mapped[int] = mapped_column(Integer, default=0)
    processing_count: Mapped[int] = mapped_column(Integer, default=0)
    processing_total_ms: Mapped[float] = mapped_column(default=0.0)
    processing_p50_ms: Mapped[float | None] = mapped_column()
    processing_p95_ms: Mapped[float | None] = mapped_column()
    processing_p99_ms: Mapped[float | None] = mapped_column()
    processing_samples: Mapped[list[float]] = mapped_column(JSON, default=list)
    db_statements: Mapped[int] = mapped_column(Integer, default=0)
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)
    cache_misses: Mapped[int] = mapped_column(Integer, default=0)
    cache_phase: Mapped[str | None] = mapped_column(String(16))  # core.figures.cache_phase
    peak_db_connections: Mapped[int] = mapped_column(Integer, default=0)
    max_db_connections: Mapped[int] = mapped_column(Integer, default=0)
    lateness_count: Mapped[int] = mapped_column(Integer, default=0)
    lateness_p50_ms: Mapped[float | None] = mapped_column()
    lateness_p99_ms: Mapped[float | None] = mapped_column()
    lateness_samples: Mapped[list[float]] = mapped_column(JSON, default=list)

    __table_args__ = (Index(None, "started_at"), Index(None, "scheduler", "started_at"))


class MonitorRollup(Base):
    """One scheduler's passes that started in one bucket (15 minutes or an hour), added up as
    each pass is recorded (monitor/rollups.py): what the dashboard's 24 h and 7 d windows read,
    kept longer than the passes themselves (METRICS_ROLLUP_RETENTION_DAYS)."""

    __tablename__ = "monitor_rollups"

    # Size first: a window reads one size's buckets from a start on, every scheduler's.
    bucket_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    scheduler: Mapped[str] = mapped_column(String(16), primary_key=True)
    passes: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer)
    published: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    retried: Mapped[int] = mapped_column(Integer)
    rate_limited: Mapped[int] = mapped_column(Integer)
    unknown: Mapped[int] = mapped_column(Integer)
    released: Mapped[int] = mapped_column(Integer)
    lost_lease: Mapped[int] = mapped_column(Integer)
    db_statements: Mapped[int] = mapped_column(BigInteger)
    cache_hits: Mapped[int] = mapped_column(BigInteger)
    cache_misses: Mapped[int] = mapped_column(BigInteger)
    cold_start_hits: Mapped[int] = mapped_column(BigInteger)
    cold_start_misses: Mapped[int] = mapped_column(BigInteger)
    steady_state_hits: Mapped[int] = mapped_column(BigInteger)
    steady_state_misses: Mapped[int] = mapped_column(BigInteger)
    duration_total_ms: Mapped[float] = mapped_column()
    duration_max_ms: Mapped[float] = mapped_column()
    duration_histogram: Mapped[dict[str, int]] = mapped_column(JSON)
    processing_count: Mapped[int] = mapped_column(Integer)
    processing_total_ms: Mapped[float] = mapped_column()
    processing_max_ms: Mapped[float] = mapped_column()
    processing_histogram: Mapped[dict[str, int]] = mapped_column(JSON)
    lateness_count: Mapped[int] = mapped_column(Integer)
    lateness_total_ms: Mapped[float] = mapped_column()
    lateness_max_ms: Mapped[float] = mapped_column()
    lateness_histogram: Mapped[dict[str, int]] = mapped_column(JSON)
    peak_ratio: Mapped[float] = mapped_column()
    peak_db_connections: Mapped[int] = mapped_column(Integer)
    max_db_connections: Mapped[int] = mapped_column(Integer)
    first_pass_at: Mapped[datetime] = mapped_column(Timestamp)
    last_pass_at: Mapped[datetime] = mapped_column(Timestamp)


class MonitorAlert(Base):
    """One row per time an alert rule fired for a subject (a scheduler, an account, or '');
    at most one firing row per (rule, subject), so two processes never notify twice."""

    __tablename__ = "monitor_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.FIRING.value)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    value: Mapped[float | None] = mapped_column()
    threshold: Mapped[float | None] = mapped_column()
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fired_at: Mapped[datetime] = mapped_column(Timestamp)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp)
    resolved_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        Index(
            "uq_monitor_alerts_firing",
            "rule",
            "subject",
            unique=True,
            postgresql_where=text(_FIRING_WHERE),
            sqlite_where=text(_FIRING_WHERE),
        ),
        Index(None, "fired_at"),
    )


class ConnectFlow(Base):
    """One person connecting an account: started, then ended by the platform's callback (or a
    direct sign-in), possibly through a choice among several targets. Only a hash of the state
    is kept: the state in the callback is the credential."""

    __tablename__ = "connect_flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    state_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # non-secret ones only
    code_verifier: Mapped[str | None] = mapped_column(Text)  # encrypted
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    account_id: Mapped[str | None] = mapped_column(String(36))  # a reconnect's account
    success_url: Mapped[str | None] = mapped_column(String(1000))
    actor: Mapped[str] = mapped_column(String(64), default="api")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    pending_targets: Mapped[str | None] = mapped_column(Text)  # encrypted, for the choice step
    account_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # what it connected
    error: Mapped[str | None] = mapped_column(Text)


class ConnectApp(Base):
    """Our app registered at one server of a platform that registers apps per server (a
    Mastodon instance), kept so each instance is registered once."""

    __tablename__ = "connect_apps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform: Mapped[str] = mapped_column(String(32))
    server: Mapped[str] = mapped_column(String(500))
    credentials: Mapped[str] = mapped_column(Text)  # encrypted {"client_id", "client_secret"}
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (UniqueConstraint("platform", "server"),)


class User(Base):
    """A person who signs in to the web app. Only an argon2 hash of the password is kept."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    name: Mapped[str | None] = mapped_column(String(200))
    # The IANA zone pages show times in; None: the browser's (its pp_tz cookie), else UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))


class FirstRun(Base):
    """The first-run page's guard: its one row (id 1) is inserted by the submission that makes
    the first owner, so a second submission at the same instant fails on the primary key."""

    __tablename__ = "first_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    done_at: Mapped[datetime] = mapped_column(Timestamp)


class Membership(Base):
    """A user's role in a workspace (core/roles.py says what each role may do)."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random secret, only its hash is kept. A session
    acts in one workspace."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)


class Invitation(Base):
    """A link that signs up (or adds the membership of) one email with one role, once."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)


class LoginFailure(Base):
    """A failed sign-in, counted per email and per address to rate-limit guessing across
    every process of the service."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index(None, "email", "at"), Index(None, "ip", "at"))


_OUTBOX_PENDING_WHERE = "status = 'pending'"


class WebhookSubscription(Base):
    """A workspace's receiver of events: a URL, the event names it wants ("*" for all), a secret
    it verifies signatures with (encrypted like credentials), and a switch."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(Text)  # Fernet token of the signing secret
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class WebhookOutbox(Base):
    """One event for one subscription, written when the event happened and sent from here by
    whichever process claims it: the row is the durable queue and the delivery log at once."""

    __tablename__ = "webhook_outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    workspace_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(200))  # X-Postpilot-Id, stable per event
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The next moment the row needs a sender: its next try, or its lease end while claimed.
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        # The same event is written once per subscription, however often it is announced.
        UniqueConstraint("subscription_id", "event_id"),
        Index(
            "ix_webhook_outbox_pending_due",
            "next_attempt_at",
            "id",
            postgresql_where=text(_OUTBOX_PENDING_WHERE),
            sqlite_where=text(_OUTBOX_PENDING_WHERE),
        ),
        # The delivery log of a subscription, newest first.
        Index(None, "subscription_id", "created_at", "id"),
    )


class MediaItem(Base):
    """An image in a workspace's media library. The bytes are in the media storage under
    "<id>/original", "<id>/variant" (what is published) and "<id>/thumbnail"."""

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))  # of the original
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    variant_content_type: Mapped[str] = mapped_column(String(64))
    variant_size_bytes: Mapped[int] = mapped_column(BigInteger)
    variant_width: Mapped[int] = mapped_column(Integer)
    variant_height: Mapped[int] = mapped_column(Integer)
    alt_text: Mapped[str | None] = mapped_column(Text)
    platforms: Mapped[list[str]] = mapped_column(JSON, default=list)  # checked against at upload
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # The last time a post was created or edited with it: retention counts from here.
    last_used_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index(None, "workspace_id", "created_at", "id"),)


class PostMedia(Base):
    """Which library media a post uses, in order (the post's media_urls hold "media:<id>")."""

    __tablename__ = "post_media"

    post_id: Mapped[str] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryPart(Base):
    """One part of a delivery that was sent (index 0 is the post, then replies or the first
    comment): recorded as soon as the platform answered, so a retry never sends it again."""

    __tablename__ = "delivery_parts"

    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_post_id: Mapped[str] = mapped_column(String(500))
    platform_ref: Mapped[str | None] = mapped_column(String(500))  # Bluesky's cid
    url: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="sent")
    sent_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Queue(Base):
    """Weekly posting slots for some accounts: the posts added to it, in order, take its next
    free slots (see store/queues.py for the rule)."""

    __tablename__ = "queues"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    slots: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"day": 0-6, "time": "HH:MM"}]
    account_ids: Mapped[list[str]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class QueueEntry(Base):
    """A post in a queue; a post is in one queue at most. Evergreen entries come back to the
    end of the queue once published, at least `evergreen_gap_seconds` later."""

    __tablename__ = "queue_entries"

    post_id: Mapped[str] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    evergreen_gap_seconds: Mapped[int | None] = mapped_column(Integer)
    # Texts cycled through by each comeback of an evergreen post (empty: the same text).
    variants: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Set once an evergreen post has come back as another entry: it comes back once.
    requeued: Mapped[bool] = mapped_column(Boolean, default=False)
    # A comeback takes no slot before its gap has passed.
    not_before: Mapped[datetime | None] = mapped_column(Timestamp)


class Recurrence(Base):
    """An RRULE whose occurrences become posts a window ahead (store/recurrence.py)."""

    __tablename__ = "recurrences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    rrule: Mapped[str] = mapped_column(Text)
    # Wall-clock time in `timezone` ("2027-03-01T09:00:00"): the rule counts in local time.
    starts_local: Mapped[str] = mapped_column(String(19))
    timezone: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    media_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    overrides: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    account_ids: Mapped[list[str]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class RecurrenceMedia(Base):
    """Which library media a recurrence uses, in order (its media_urls hold "media:<id>"): a
    live recurrence keeps them from deletion and retention, as a scheduled post does."""

    __tablename__ = "recurrence_media"

    recurrence_id: Mapped[str] = mapped_column(
        ForeignKey("recurrences.id", ondelete="CASCADE"), primary_key=True
    )
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Occurrence(Base):
    """One occurrence made into a post. The primary key is its exactly-once identity: two
    workers (or a retry) materialising it make one row, hence one post."""

    __tablename__ = "recurrence_occurrences"

    recurrence_id: Mapped[str] = mapped_column(
        ForeignKey("recurrences.id", ondelete="CASCADE"), primary_key=True
    )
    occurrence_at: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), unique=True)
    # Made after its time (no worker ran then): how late, in seconds; None when made ahead.
    late_seconds: Mapped[int | None] = mapped_column(Integer)
