"""the media library: uploaded media, their variants and alt text

Revision ID: 0009_media
Revises: 0008_webhooks
Create Date: 2026-12-01 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_media"
down_revision: str | None = "0008_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("variant_content_type", sa.String(length=64), nullable=False),
        sa.Column("variant_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("variant_width", sa.Integer(), nullable=False),
        sa.Column("variant_height", sa.Integer(), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=True),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_media_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
    )
    op.create_index(
        op.f("ix_media_workspace_id_created_at_id"),
        "media",
        ["workspace_id", "created_at", "id"],
    )
    op.create_table(
        "post_media",
        sa.Column("post_id", sa.String(length=36), nullable=False),
        sa.Column("media_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_media_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_post_media_media_id_media")
        ),
        sa.PrimaryKeyConstraint("post_id", "media_id", name=op.f("pk_post_media")),
    )
    op.create_index(op.f("ix_post_media_media_id"), "post_media", ["media_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_post_media_media_id"), table_name="post_media")
    op.drop_table("post_media")
    op.drop_index(op.f("ix_media_workspace_id_created_at_id"), table_name="media")
    op.drop_table("media")
