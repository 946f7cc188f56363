"""per-account variants of a post, and bulk imports

Revision ID: 0011_variants
Revises: 0010_queues
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_variants"
down_revision: str | None = "0010_queues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        # Existing posts have no per-account variant; a server default keeps SQLite from
        # rebuilding the table (deliveries hang off it).
        batch.add_column(
            sa.Column("account_overrides", sa.JSON(), nullable=False, server_default="{}")
        )
        batch.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch.create_index(
            batch.f("ix_posts_workspace_id_external_id"),
            ["workspace_id", "external_id"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_index(batch.f("ix_posts_workspace_id_external_id"))
        batch.drop_column("external_id")
        batch.drop_column("account_overrides")
