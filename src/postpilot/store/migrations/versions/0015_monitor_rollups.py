"""(reserved: filled in by the change that needs it)

Revision ID: 0015_monitor_rollups
Revises: 0014_user_timezone
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

revision: str = "0015_monitor_rollups"
down_revision: str | None = "0014_user_timezone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
