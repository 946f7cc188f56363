"""people and access: users, workspace memberships with roles, sessions, invitations

Revision ID: 0007_people
Revises: 0006_connect
Create Date: 2026-12-01 01:10:00
"""

from collections.abc import Sequence

revision: str = "0007_people"
down_revision: str | None = "0006_connect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
