"""the provisioning log by member

The Members page shows who last changed each member of a page: the newest event of each, read through
(workspace_id, member_id, id) instead of every event of the workspace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provisioning_events", schema=None) as batch_op:
        batch_op.create_index("ix_events_workspace_member", ["workspace_id", "member_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("provisioning_events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_workspace_member")
