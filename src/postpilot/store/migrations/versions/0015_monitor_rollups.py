"""monitor_rollups: each scheduler's passes added up per 15-minute and hourly bucket (what the
dashboard's long windows read), filled from the stored passes

Revision ID: 0015_monitor_rollups
Revises: 0014_user_timezone
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from alembic import op

# The backfill adds passes up as the monitor does when it records one: the same code, so the
# rows it writes are the ones new passes add to.
from postpilot.monitor.figures import PassFigures
from postpilot.monitor.rollups import SIZES, Rollup

revision: str = "0015_monitor_rollups"
down_revision: str | None = "0014_user_timezone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2_000  # passes read at a time


def upgrade() -> None:
    rollups = op.create_table(
        "monitor_rollups",
        sa.Column("bucket_seconds", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduler", sa.String(length=16), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("published", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("retried", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("released", sa.Integer(), nullable=False),
        sa.Column("lost_lease", sa.Integer(), nullable=False),
        sa.Column("db_statements", sa.BigInteger(), nullable=False),
        sa.Column("cache_hits", sa.BigInteger(), nullable=False),
        sa.Column("cache_misses", sa.BigInteger(), nullable=False),
        sa.Column("cold_start_hits", sa.BigInteger(), nullable=False),
        sa.Column("cold_start_misses", sa.BigInteger(), nullable=False),
        sa.Column("steady_state_hits", sa.BigInteger(), nullable=False),
        sa.Column("steady_state_misses", sa.BigInteger(), nullable=False),
        sa.Column("duration_total_ms", sa.Double(), nullable=False),
        sa.Column("duration_max_ms", sa.Double(), nullable=False),
        sa.Column("duration_histogram", sa.JSON(), nullable=False),
        sa.Column("processing_count", sa.Integer(), nullable=False),
        sa.Column("processing_total_ms", sa.Double(), nullable=False),
        sa.Column("processing_max_ms", sa.Double(), nullable=False),
        sa.Column("processing_histogram", sa.JSON(), nullable=False),
        sa.Column("lateness_count", sa.Integer(), nullable=False),
        sa.Column("lateness_total_ms", sa.Double(), nullable=False),
        sa.Column("lateness_max_ms", sa.Double(), nullable=False),
        sa.Column("lateness_histogram", sa.JSON(), nullable=False),
        sa.Column("peak_ratio", sa.Double(), nullable=False),
        sa.Column("peak_db_connections", sa.Integer(), nullable=False),
        sa.Column("max_db_connections", sa.Integer(), nullable=False),
        sa.Column("first_pass_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_pass_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket_seconds", "bucket_start", "scheduler", name=op.f("pk_monitor_rollups")
        ),
    )
    _backfill(rollups)


def _backfill(rollups: sa.Table) -> None:
    """Add up the passes already stored, a chunk at a time (oldest first, by key)."""
    bind = op.get_bind()
    types: dict[str, Any] = {
        "started_at": sa.DateTime(timezone=True),
        "processing_samples": sa.JSON(),
        "lateness_samples": sa.JSON(),
    }
    passes = sa.table(
        "pass_metrics", *(sa.column(f.name, types.get(f.name)) for f in fields(PassFigures))
    )
    merged: dict[tuple[int, object, str], Rollup] = {}
    after: tuple[object, str] | None = None
    while True:
        query = sa.select(passes)
        if after is not None:
            query = query.where(sa.tuple_(passes.c.started_at, passes.c.pass_id) > after)
        rows = bind.execute(
            query.order_by(passes.c.started_at, passes.c.pass_id).limit(_CHUNK)
        ).mappings()
        chunk = [dict(row) for row in rows]
        if not chunk:
            break
        after = (chunk[-1]["started_at"], chunk[-1]["pass_id"])
        for row in chunk:
            figures = PassFigures.from_row(row)
            for size in SIZES:
                part = Rollup.of_pass(figures, size)
                key = (part.bucket_seconds, part.bucket_start, part.scheduler)
                merged[key] = merged[key].merge(part) if key in merged else part
    if merged:
        bind.execute(rollups.insert(), [r.row() for r in merged.values()])


def downgrade() -> None:
    op.drop_table("monitor_rollups")
