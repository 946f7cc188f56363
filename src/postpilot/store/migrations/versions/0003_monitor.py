"""monitor: per-pass metrics and alert states

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pass_metrics",
        sa.Column("pass_id", sa.String(length=36), nullable=False),
        sa.Column("scheduler", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("batch_limit", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("published", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("retried", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("released", sa.Integer(), nullable=False),
        sa.Column("lost_lease", sa.Integer(), nullable=False),
        sa.Column("processing_count", sa.Integer(), nullable=False),
        sa.Column("processing_total_ms", sa.Double(), nullable=False),
        sa.Column("processing_p50_ms", sa.Double(), nullable=True),
        sa.Column("processing_p95_ms", sa.Double(), nullable=True),
        sa.Column("processing_p99_ms", sa.Double(), nullable=True),
        sa.Column("processing_samples", sa.JSON(), nullable=False),
        sa.Column("db_statements", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("cache_misses", sa.Integer(), nullable=False),
        sa.Column("peak_db_connections", sa.Integer(), nullable=False),
        sa.Column("max_db_connections", sa.Integer(), nullable=False),
        sa.Column("lateness_count", sa.Integer(), nullable=False),
        sa.Column("lateness_p50_ms", sa.Double(), nullable=True),
        sa.Column("lateness_p99_ms", sa.Double(), nullable=True),
        sa.Column("lateness_samples", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("pass_id", name=op.f("pk_pass_metrics")),
    )
    op.create_index(op.f("ix_pass_metrics_started_at"), "pass_metrics", ["started_at"])
    op.create_index(
        op.f("ix_pass_metrics_scheduler_started_at"), "pass_metrics", ["scheduler", "started_at"]
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alerts")),
    )
    op.create_index(op.f("ix_monitor_alerts_fired_at"), "monitor_alerts", ["fired_at"])
    op.create_index(
        "uq_monitor_alerts_firing",
        "monitor_alerts",
        ["rule", "subject"],
        unique=True,
        postgresql_where=sa.text("status = 'firing'"),
        sqlite_where=sa.text("status = 'firing'"),
    )


def downgrade() -> None:
    op.drop_index("uq_monitor_alerts_firing", table_name="monitor_alerts")
    op.drop_index(op.f("ix_monitor_alerts_fired_at"), table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_index(op.f("ix_pass_metrics_scheduler_started_at"), table_name="pass_metrics")
    op.drop_index(op.f("ix_pass_metrics_started_at"), table_name="pass_metrics")
    op.drop_table("pass_metrics")
