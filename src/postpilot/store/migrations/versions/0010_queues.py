"""queue slots, recurring and evergreen posts

Revision ID: 0010_queues
Revises: 0009_media
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_queues"
down_revision: str | None = "0009_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("slots", sa.JSON(), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("queues"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
    )
    op.create_index(op.f("ix_queues_workspace_id"), "queues", ["workspace_id"])
    op.create_table(
        "queue_entries",
        sa.Column("post_id", sa.String(length=36), nullable=False),
        sa.Column("queue_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("evergreen_gap_seconds", sa.Integer(), nullable=True),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("requeued", sa.Boolean(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_queue_entries_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_entries_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_queue_entries")),
    )
    op.create_index(op.f("ix_queue_entries_queue_id"), "queue_entries", ["queue_id"])
    op.create_table(
        "recurrences",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("rrule", sa.Text(), nullable=False),
        sa.Column("starts_local", sa.String(length=19), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("media_urls", sa.JSON(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("recurrences"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recurrences")),
    )
    op.create_index(op.f("ix_recurrences_workspace_id"), "recurrences", ["workspace_id"])
    op.create_table(
        "recurrence_occurrences",
        sa.Column("recurrence_id", sa.String(length=36), nullable=False),
        sa.Column("occurrence_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("post_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["recurrence_id"],
            ["recurrences.id"],
            name=op.f("fk_recurrence_occurrences_recurrence_id_recurrences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_recurrence_occurrences_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "recurrence_id", "occurrence_at", name=op.f("pk_recurrence_occurrences")
        ),
        sa.UniqueConstraint("post_id", name=op.f("uq_recurrence_occurrences_post_id")),
    )


def downgrade() -> None:
    op.drop_table("recurrence_occurrences")
    op.drop_index(op.f("ix_recurrences_workspace_id"), table_name="recurrences")
    op.drop_table("recurrences")
    op.drop_index(op.f("ix_queue_entries_queue_id"), table_name="queue_entries")
    op.drop_table("queue_entries")
    op.drop_index(op.f("ix_queues_workspace_id"), table_name="queues")
    op.drop_table("queues")
