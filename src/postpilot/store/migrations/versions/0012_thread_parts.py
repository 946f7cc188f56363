"""threads and first comments: the parts of a delivery, each sent once

Revision ID: 0012_thread_parts
Revises: 0011_variants
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

revision: str = "0012_thread_parts"
down_revision: str | None = "0011_variants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
