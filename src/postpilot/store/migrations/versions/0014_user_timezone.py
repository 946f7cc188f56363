"""(reserved: filled in by the change that needs it)

Revision ID: 0014_user_timezone
Revises: 0013_list_indexes
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

revision: str = "0014_user_timezone"
down_revision: str | None = "0013_list_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
