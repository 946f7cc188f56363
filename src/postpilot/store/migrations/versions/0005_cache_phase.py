"""pass_metrics.cache_phase: whether a pass's cache figures are cold-start or steady-state

Revision ID: 0005_cache_phase
Revises: 0004_operations
Create Date: 2026-11-30 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_cache_phase"
down_revision: str | None = "0004_operations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pass_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cache_phase", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pass_metrics", schema=None) as batch_op:
        batch_op.drop_column("cache_phase")
