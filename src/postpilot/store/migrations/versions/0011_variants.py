"""per-account variants of a post, and bulk imports

Revision ID: 0011_variants
Revises: 0010_queues
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

revision: str = "0011_variants"
down_revision: str | None = "0010_queues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
