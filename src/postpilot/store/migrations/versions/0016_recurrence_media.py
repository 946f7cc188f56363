"""recurrences take library media (which media each recurrence uses); idempotency keys record
their fingerprint's version; occurrences made late record by how much

Revision ID: 0016_recurrence_media
Revises: 0015_monitor_rollups
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_recurrence_media"
down_revision: str | None = "0015_monitor_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recurrence_media",
        sa.Column("recurrence_id", sa.String(length=36), nullable=False),
        sa.Column("media_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recurrence_id"],
            ["recurrences.id"],
            name=op.f("fk_recurrence_media_recurrence_id_recurrences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_recurrence_media_media_id_media")
        ),
        sa.PrimaryKeyConstraint("recurrence_id", "media_id", name=op.f("pk_recurrence_media")),
    )
    op.create_index(op.f("ix_recurrence_media_media_id"), "recurrence_media", ["media_id"])
    # Keys stored until now were fingerprinted by version 1.
    op.add_column(
        "idempotency_keys",
        sa.Column("fingerprint_version", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column("recurrence_occurrences", sa.Column("late_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recurrence_occurrences") as batch:
        batch.drop_column("late_seconds")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("fingerprint_version")
    op.drop_index(op.f("ix_recurrence_media_media_id"), table_name="recurrence_media")
    op.drop_table("recurrence_media")
