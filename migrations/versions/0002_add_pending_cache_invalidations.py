"""add pending cache invalidations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pending_cache_invalidations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_pending_cache_invalidations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_cache_invalidations")),
    )
    op.create_index(
        op.f("ix_pending_cache_invalidations_user_id"),
        "pending_cache_invalidations",
        ["user_id"],
    )


def downgrade():
    op.drop_index(
        op.f("ix_pending_cache_invalidations_user_id"), table_name="pending_cache_invalidations"
    )
    op.drop_table("pending_cache_invalidations")
