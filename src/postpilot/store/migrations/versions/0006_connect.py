"""connect flows: accounts.platform_id, connect_flows (state hash, PKCE verifier, choice step),
connect_apps (apps registered per server, e.g. a Mastodon instance)

Revision ID: 0006_connect
Revises: 0005_cache_phase
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_connect"
down_revision: str | None = "0005_cache_phase"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connect_apps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("server", sa.String(length=500), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connect_apps")),
        sa.UniqueConstraint("platform", "server", name=op.f("uq_connect_apps_platform_server")),
    )
    op.create_table(
        "connect_flows",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=True),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("code_verifier", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("success_url", sa.String(length=1000), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pending_targets", sa.Text(), nullable=True),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_connect_flows_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connect_flows")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_connect_flows_state_hash")),
    )
    op.create_index(
        op.f("ix_connect_flows_workspace_id"), "connect_flows", ["workspace_id"], unique=False
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_id", sa.String(length=255), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_accounts_workspace_id_platform_platform_id"),
            ["workspace_id", "platform", "platform_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_workspace_id_platform_platform_id"))
        batch_op.drop_column("platform_id")
    op.drop_index(op.f("ix_connect_flows_workspace_id"), table_name="connect_flows")
    op.drop_table("connect_flows")
    op.drop_table("connect_apps")
