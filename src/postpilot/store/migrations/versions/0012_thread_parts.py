"""threads and first comments: the parts of a delivery, each sent once

Revision ID: 0012_thread_parts
Revises: 0011_variants
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_thread_parts"
down_revision: str | None = "0011_variants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain nullable columns: SQLite adds them without rebuilding the table.
    op.add_column("posts", sa.Column("thread", sa.JSON(), nullable=True))
    op.add_column("posts", sa.Column("first_comment", sa.Text(), nullable=True))
    op.create_table(
        "delivery_parts",
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("platform_post_id", sa.String(length=500), nullable=False),
        sa.Column("platform_ref", sa.String(length=500), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_parts_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", "index", name=op.f("pk_delivery_parts")),
    )


def downgrade() -> None:
    op.drop_table("delivery_parts")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("first_comment")
        batch.drop_column("thread")
