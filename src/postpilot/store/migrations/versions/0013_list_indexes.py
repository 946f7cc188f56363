"""indexes for the v1 lists' keyset pages: a workspace's posts and deliveries by (created_at,
id), its activity by id (replacing the index on workspace_id alone, which it covers)

Revision ID: 0013_list_indexes
Revises: 0012_thread_parts
Create Date: 2026-12-01 02:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_list_indexes"
down_revision: str | None = "0012_thread_parts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("posts", ("workspace_id", "created_at", "id")),
    ("deliveries", ("workspace_id", "created_at", "id")),
    ("activity", ("workspace_id", "id")),
)


def _name(table: str, columns: Sequence[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for table, columns in INDEXES:
        op.create_index(op.f(_name(table, columns)), table, list(columns))
    op.drop_index(op.f("ix_activity_workspace_id"), table_name="activity")


def downgrade() -> None:
    op.create_index(op.f("ix_activity_workspace_id"), "activity", ["workspace_id"])
    for table, columns in reversed(INDEXES):
        op.drop_index(op.f(_name(table, columns)), table_name=table)
