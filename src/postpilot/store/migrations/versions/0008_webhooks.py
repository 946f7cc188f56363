"""webhook subscriptions per workspace and their durable outbox

Revision ID: 0008_webhooks
Revises: 0007_people
Create Date: 2026-12-01 01:10:00
"""

from collections.abc import Sequence

revision: str = "0008_webhooks"
down_revision: str | None = "0007_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
