"""users' own time zone and name, and the first-run page's guard (one row: one first owner)

Revision ID: 0014_user_timezone
Revises: 0013_list_indexes
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_user_timezone"
down_revision: str | None = "0013_list_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    op.create_table(
        "first_run",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_first_run")),
    )
    # A database set up before this guard existed has had its first run.
    op.execute(
        "INSERT INTO first_run (id, done_at) SELECT 1, MIN(created_at) FROM users "
        "HAVING COUNT(*) > 0"
    )


def downgrade() -> None:
    op.drop_table("first_run")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("timezone")
        batch.drop_column("name")
