"""add preference changes, admin flag and admin views

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "preference_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("old", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("new", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_preference_changes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference_changes")),
    )
    op.create_index("ix_preference_changes_user_id_id", "preference_changes", ["user_id", "id"])
    op.create_index(op.f("ix_preference_changes_created_at"), "preference_changes", ["created_at"])
    op.create_table(
        "admin_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=True),
        sa.Column("admin_email", sa.String(length=254), nullable=False),
        sa.Column("viewed_user_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["users.id"],
            name=op.f("fk_admin_views_admin_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["viewed_user_id"],
            ["users.id"],
            name=op.f("fk_admin_views_viewed_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_views")),
    )
    op.create_index(op.f("ix_admin_views_admin_id"), "admin_views", ["admin_id"])
    op.create_index(op.f("ix_admin_views_viewed_user_id"), "admin_views", ["viewed_user_id"])


def downgrade():
    op.drop_index(op.f("ix_admin_views_viewed_user_id"), table_name="admin_views")
    op.drop_index(op.f("ix_admin_views_admin_id"), table_name="admin_views")
    op.drop_table("admin_views")
    op.drop_index(op.f("ix_preference_changes_created_at"), table_name="preference_changes")
    op.drop_index("ix_preference_changes_user_id_id", table_name="preference_changes")
    op.drop_table("preference_changes")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("is_admin")
