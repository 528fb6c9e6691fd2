"""the provisioning log in detail

Each event keeps what the console's Provisioning log shows of its request (request id, the IdP
credential and method, user agent, scimType, duration, the redacted body) and repeated refusals are
counted on one row (``repeats``, ``last_at``, ``aggregate_key``). Indexes serve the log's filters read
newest first in pages of ids; on PostgreSQL userNames compare by code point so that a prefix is a range.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provisioning_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("credential", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("scim_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("duration_ms", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("request_body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("repeats", sa.Integer(), server_default=sa.text("1"), nullable=False))
        batch_op.add_column(
            sa.Column("last_at", provisio.db.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("aggregate_key", sa.String(length=255), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # userNames compared by code point, so that a prefix is a range of the index below.
        op.execute('ALTER TABLE provisioning_events ALTER COLUMN user_name TYPE VARCHAR(512) COLLATE "C"')
    op.create_index("ix_events_workspace_id", "provisioning_events", ["workspace_id", "id"], unique=False)
    op.create_index(
        "ix_events_workspace_outcome", "provisioning_events", ["workspace_id", "outcome", "id"], unique=False
    )
    op.create_index(
        "ix_events_workspace_user_name",
        "provisioning_events",
        ["workspace_id", "user_name", "id"],
        unique=False,
    )
    op.create_index(
        "ix_events_workspace_credential",
        "provisioning_events",
        ["workspace_id", "credential", "id"],
        unique=False,
    )
    op.create_index(
        "uq_events_workspace_aggregate",
        "provisioning_events",
        ["workspace_id", "aggregate_key"],
        unique=True,
        sqlite_where=sa.text("aggregate_key IS NOT NULL"),
        postgresql_where=sa.text("aggregate_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_events_workspace_aggregate", table_name="provisioning_events")
    op.drop_index("ix_events_workspace_credential", table_name="provisioning_events")
    op.drop_index("ix_events_workspace_user_name", table_name="provisioning_events")
    op.drop_index("ix_events_workspace_outcome", table_name="provisioning_events")
    op.drop_index("ix_events_workspace_id", table_name="provisioning_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE provisioning_events ALTER COLUMN user_name TYPE VARCHAR(512) "
            'COLLATE pg_catalog."default"'
        )
    with op.batch_alter_table("provisioning_events", schema=None) as batch_op:
        batch_op.drop_column("aggregate_key")
        batch_op.drop_column("last_at")
        batch_op.drop_column("repeats")
        batch_op.drop_column("request_body")
        batch_op.drop_column("duration_ms")
        batch_op.drop_column("scim_type")
        batch_op.drop_column("user_agent")
        batch_op.drop_column("credential")
        batch_op.drop_column("request_id")
