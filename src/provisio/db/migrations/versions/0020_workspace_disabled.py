"""workspaces.disabled_at, and SCIM off by default for a row written without the ORM

A workspace the host application disables keeps its rows and settings and refuses provisioning until it
is enabled again; ``disabled_at`` says since when. ``scim_enabled`` had kept the schema's original server
default (on) while every workspace is created with SCIM off: a row inserted by plain SQL now starts off
too. SQLite changes a column's default only by copying the table (batch mode; migrations run with its
foreign keys off, so the copy deletes nothing that refers to a workspace).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_at", provisio.db.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column(
            "scim_enabled",
            existing_type=sa.Boolean(),
            existing_nullable=False,
            server_default=sa.text("false"),
        )


def downgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.alter_column(
            "scim_enabled",
            existing_type=sa.Boolean(),
            existing_nullable=False,
            server_default=sa.text("true"),
        )
        batch_op.drop_column("disabled_at")
