"""the media library: uploaded media, their variants and alt text

Revision ID: 0009_media
Revises: 0008_webhooks
Create Date: 2026-12-01 01:10:00
"""

from collections.abc import Sequence

revision: str = "0009_media"
down_revision: str | None = "0008_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
