"""an index that counts a workspace's seats without reading member rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_members_seats", "members", ["workspace_id", "active", "deleted_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_members_seats", table_name="members")
