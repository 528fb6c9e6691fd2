"""SCIM off in every workspace without a verified domain

SCIM can be on only once a workspace has verified a domain. Workspaces created before that rule started
with SCIM on, answered GET and refused every create; they are turned off here, so what the settings page
shows is what the API does.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE workspaces SET scim_enabled = false WHERE scim_enabled AND NOT EXISTS ("
        "SELECT 1 FROM workspace_domains d"
        " WHERE d.workspace_id = workspaces.id AND d.verified_at IS NOT NULL)"
    )


def downgrade() -> None:
    pass  # which workspaces had SCIM on is not kept; they stay off
