"""the last successful SCIM request of each workspace

Reads are not in the provisioning log, yet an IdP that only reads (Entra's periodic sync with nothing to
change, Okta's imports) is connected: one row per workspace remembers the newest successful request of
any kind, written at most about once a minute.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_last_requests",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("at", provisio.db.models.UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.Column("credential", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id"),
    )


def downgrade() -> None:
    op.drop_table("scim_last_requests")
