"""add the written version to pending cache invalidations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # Rows from before this revision carry no version; the cache drops their entries whole.
    with op.batch_alter_table("pending_cache_invalidations") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("pending_cache_invalidations") as batch_op:
        batch_op.drop_column("version")
