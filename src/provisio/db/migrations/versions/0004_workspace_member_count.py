"""workspace member count, and an index of live members for offset pages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("member_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_workspace_id")
        batch_op.create_index("ix_members_live", ["workspace_id", "deleted_at", "id"], unique=False)
    op.execute(
        "UPDATE workspaces SET member_count = (SELECT count(*) FROM members "
        "WHERE members.workspace_id = workspaces.id AND members.deleted_at IS NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_live")
        batch_op.create_index("ix_members_workspace_id", ["workspace_id", "id"], unique=False)
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("member_count")
