"""queue slots, recurring and evergreen posts

Revision ID: 0010_queues
Revises: 0009_media
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

revision: str = "0010_queues"
down_revision: str | None = "0009_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
